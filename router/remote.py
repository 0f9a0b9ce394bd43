"""Reading a model from an object store: ``s3://bucket/key`` and other URIs (docs/specification.md §11).

The one place the library touches the network, imported only when a model location is a URI
(:func:`modelrouter.backends.base.read_model_bytes`), so ``import modelrouter`` stays light and
pyarrow's filesystem layer and boto3 stay optional. :func:`fetch_model` reads the object's
bytes once; the pool then checks the ``sha256`` pin on exactly those bytes before anything is
unpickled. Every command that loads a model — ``predict``, ``models``, ``inspect``,
``compare``, ``convert``, ``serve`` — goes through it.

The client half is shared with the CLI's storage layer
(:mod:`modelrouter.storage.object_store`, which adds inputs, outputs and uploads):

- :func:`filesystem`: pyarrow's ``S3FileSystem`` for ``s3://`` (endpoint, timeouts and
  retries set here), ``FileSystem.from_uri`` for the schemes pyarrow knows, else an installed
  fsspec implementation;
- :func:`require_credentials`: one clear line when the AWS chain finds no credentials;
- :func:`reason`: one short line for a pyarrow or botocore error.

**Retries.** pyarrow's S3 client retries each request (``AwsStandardS3RetryStrategy``, 3
attempts with exponential backoff) on throttling (``SlowDown``, HTTP 503), 5xx answers and
network errors, including a connection dropped before the answer's headers. A stream cut
*after* the body started is not retried by either client: the read fails with an error
naming the object.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from modelrouter.errors import ModelLoadError, ModelRouterError

__all__ = ["S3_SCHEMES", "checked_filesystem", "fetch_model", "filesystem", "reason", "require_credentials"]

_READ_BUFFER = 1 << 20
S3_SCHEMES = ("s3", "s3a")


class _NoFilesystem(Exception):
    """No filesystem implementation for a scheme (the message says what to install)."""


@functools.cache
def _cached_filesystem(scheme: str) -> pafs.FileSystem:
    if scheme in S3_SCHEMES:
        # Region and credentials come from the AWS environment and files, as for boto3;
        # pyarrow 26's S3FileSystem does not read the endpoint variables itself (measured: it
        # ignores AWS_ENDPOINT_URL), so they are passed on as the AWS SDKs define them (the
        # S3-specific one wins).
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        return pafs.S3FileSystem(
            endpoint_override=endpoint,
            connect_timeout=5,
            request_timeout=60,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        )
    try:
        found, _ = pafs.FileSystem.from_uri(f"{scheme}://")
        return found
    except (pa.ArrowInvalid, OSError, ValueError):
        pass
    try:
        import fsspec
    except ImportError:
        raise _NoFilesystem(
            f"{scheme}://: no filesystem for this scheme (install fsspec and its plugin)"
        ) from None
    try:
        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme)))
    except (ImportError, ValueError) as exc:
        raise _NoFilesystem(f"{scheme}://: no filesystem for this scheme ({exc})") from None


def filesystem(scheme: str, error: type[ModelRouterError]) -> pafs.FileSystem:
    """pyarrow's filesystem for ``scheme`` (one per process; they are thread-safe).

    Raises ``error`` (the caller's role: input, model or output) when no implementation of
    the scheme is installed.
    """
    try:
        return _cached_filesystem(scheme.lower())
    except _NoFilesystem as exc:
        raise error(str(exc)) from None


_checked_credentials = threading.Event()


def require_credentials(error: type[ModelRouterError], location: object) -> None:
    """Raise ``error`` with one clear line when the AWS chain finds no credentials at all.

    Without this, pyarrow would send unsigned requests and report "access denied" far from
    the cause. Checked once per process, through boto3's chain (the same sources:
    environment, ``~/.aws`` files, SSO, instance roles); skipped when boto3 is absent.
    """
    if _checked_credentials.is_set():
        return
    try:
        import boto3
    except ImportError:
        return
    if boto3.session.Session().get_credentials() is None:
        raise error(
            f"{location}: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or configure a profile in ~/.aws)"
        )
    _checked_credentials.set()


def checked_filesystem(scheme: str, error: type[ModelRouterError], location: object) -> pafs.FileSystem:
    """The filesystem for ``scheme``, after the credentials check on S3."""
    if scheme.lower() in S3_SCHEMES:
        require_credentials(error, location)
    return filesystem(scheme, error)


def fetch_model(uri: str) -> bytes:
    """The bytes of the model object at ``uri``, read once into memory.

    Raises :class:`ModelLoadError` naming the URI: not found, a prefix rather than an
    object, no such bucket, access denied, no credentials, unreachable store, a read cut
    short — after the client's retries.
    """
    scheme, _, rest = uri.partition("://")
    path = rest.strip("/")
    filesystem_ = checked_filesystem(scheme, ModelLoadError, uri)
    try:
        found = filesystem_.get_file_info(path)
        if found.type == pafs.FileType.NotFound:
            bucket = path.split("/", 1)[0]
            if (
                scheme.lower() in S3_SCHEMES
                and "/" in path
                and filesystem_.get_file_info(bucket).type == pafs.FileType.NotFound
            ):
                raise ModelLoadError(f"{uri}: bucket {bucket!r} does not exist")
            raise ModelLoadError(f"{uri}: model file not found")
        if found.type == pafs.FileType.Directory:
            raise ModelLoadError(f"{uri}: is a prefix (directory), not a model file")
        with filesystem_.open_input_stream(path, compression=None, buffer_size=_READ_BUFFER) as stream:
            data = bytes(stream.read())
    except ModelRouterError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise ModelLoadError(f"{uri}: {reason(exc)}") from None
    if found.size is not None and found.size >= 0 and len(data) != found.size:
        # A stream cut short that the client did not notice: never load part of a model.
        raise ModelLoadError(f"{uri}: read {len(data)} of {found.size} bytes (connection dropped)")
    return data


# -- errors -----------------------------------------------------------------------------------

# pyarrow's AWS errors: "AWS Error ACCESS_DENIED during GetObject operation: …".
_AWS_ERROR = re.compile(r"AWS Error (\w+)(?: \(HTTP status code: (\d+)\))?")
_REASONS = {
    "ACCESS_DENIED": "access denied",
    "INVALID_ACCESS_KEY_ID": "access denied (unknown access key id)",
    "SIGNATURE_DOES_NOT_MATCH": "access denied (the secret key does not match)",
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "NO_SUCH_KEY": "not found",
    "RESOURCE_NOT_FOUND": "not found",
    "NETWORK_CONNECTION": "cannot reach the store (connection failed)",
    "REQUEST_TIMEOUT": "cannot reach the store (timed out)",
    "SLOW_DOWN": "the store is throttling requests (SlowDown), even after retries",
    "THROTTLING": "the store is throttling requests, even after retries",
}
_CLIENT_CODES = {
    "AccessDenied": "access denied",
    "InvalidAccessKeyId": "access denied (unknown access key id)",
    "SignatureDoesNotMatch": "access denied (the secret key does not match)",
    "AllAccessDisabled": "access denied",
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "not found",
    "404": "not found",
    "403": "access denied",
    "SlowDown": "the store is throttling requests (SlowDown), even after retries",
}


def reason(exc: BaseException) -> str:
    """One short line saying why a store operation failed (pyarrow or botocore errors)."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        return _CLIENT_CODES.get(code, f"{code}: {error.get('Message', '')}".strip(": "))
    kind = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if kind == "NoCredentialsError":
        return "no AWS credentials found"
    if kind in (
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
    ):
        return f"cannot reach the store ({_first_line(exc)})"
    text = _first_line(exc)
    found = _AWS_ERROR.search(text)
    if found:
        code = found.group(1)
        if code == "NETWORK_CONNECTION" and "partial file" in text:  # curl 18: the body was cut
            return "connection dropped mid-transfer, even after retries"
        if code in _REASONS:
            return _REASONS[code]
        if found.group(2) == "403":
            return "access denied"
        if found.group(2) == "404":
            return "not found"
        detail = text.split("operation:", 1)[-1].strip()
        return f"{code.lower().replace('_', ' ')} ({detail})" if detail else code.lower()
    if "Bucket" in text and ("does not exist" in text or "not found" in text):
        return "the bucket does not exist"
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
