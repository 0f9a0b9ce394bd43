"""Reaching an object store: clients, credentials, and the errors of each role.

boto3 (the ``s3`` extra) for S3 requests, ``pyarrow.fs`` (or an installed fsspec
implementation, :mod:`modelrouter.remote`) for metadata, listings and other schemes.
Credentials, region and endpoint come from the standard AWS environment and files, which
boto3 reads (docs/remote-storage.md). A failure becomes the role's error — input:
:class:`DataError`, model: :class:`ModelLoadError`, output: :class:`OutputError` — with one
line naming the URI and the reason.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import pyarrow.fs as pafs
from modelrouter import remote
from modelrouter.errors import DataError, ModelLoadError, ModelRouterError, OutputError
from modelrouter.storage.uris import Uri

__all__ = [
    "READ_BUFFER",
    "ROLE_ERRORS",
    "Role",
    "botocore_cause",
    "fs_path",
    "is_s3",
    "reason",
    "s3_client",
    "store_error",
    "write_client",
]

Role = Literal["input", "model", "output"]

#: Bytes per read of a store's input stream, and per copy of a staged upload.
READ_BUFFER = 1 << 20


@functools.cache
def s3_client() -> Any:
    """A boto3 S3 client (thread-safe), for uploads, deletes and small puts."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise OutputError("writing to s3:// needs boto3: pip install 'modelrouter[s3]'") from None
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.session.Session().client("s3", config=config)


def fs_path(uri: Uri, role: Role = "input") -> tuple[pafs.FileSystem, str]:
    return remote.checked_filesystem(uri.scheme, ROLE_ERRORS[role], uri), uri.path


def write_client(uri: Uri) -> Any:
    remote.require_credentials(OutputError, uri)
    return s3_client()


def is_s3(uri: Uri) -> bool:
    return uri.scheme in remote.S3_SCHEMES


# -- errors -----------------------------------------------------------------------------------

ROLE_ERRORS: dict[Role, type[ModelRouterError]] = {
    "input": DataError,
    "model": ModelLoadError,
    "output": OutputError,
}

#: One short line saying why a store operation failed (shared with the library's model fetch).
reason = remote.reason


def store_error(role: Role, location: object, exc: BaseException, doing: str = "") -> ModelRouterError:
    what = f"cannot {doing}: " if doing else ""
    return ROLE_ERRORS[role](f"{location}: {what}{reason(exc)}")


def botocore_cause(exc: BaseException) -> BaseException:
    """The botocore error behind an Arrow error raised from our Python sink, when there is one."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if getattr(seen, "response", None) is not None or type(seen).__module__.startswith("botocore"):
            return seen
    return exc
