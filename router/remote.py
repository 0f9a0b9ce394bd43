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
- :func:`reason` (:mod:`modelrouter.store_errors`): one short line for a pyarrow or botocore error.

**Version pinning** (``docs/remote-storage.md``). An S3 object read with more than one
request is read as the one version seen when it was opened: :func:`pin_object` asks for its
ETag (and version id, on a versioned bucket) once, and every ranged GET of
:class:`PinnedObject` carries ``If-Match`` (and ``VersionId``). An object replaced while it is
read — an unversioned bucket — fails the read with :class:`ObjectChanged` naming the object,
never a mix of two versions; on a versioned bucket the pinned version is read to the end. A
model is fetched in one GET, which S3 answers from one version.

**Retries.** pyarrow's S3 client (metadata, listings) and boto3 (reads, uploads) retry each
request 3 times with exponential backoff on throttling (``SlowDown``, HTTP 503), 5xx answers
and network errors, including a connection dropped before the answer's headers. A pinned
read cut *after* its body started is resumed from where it stopped (the pin makes that
safe), up to 3 times per read; then it fails with an error naming the object.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from modelrouter.errors import DataError, ModelLoadError, ModelRouterError
from modelrouter.store_errors import client_code, is_cut, reason

__all__ = [
    "S3_SCHEMES",
    "ObjectVersion",
    "PinnedObject",
    "checked_filesystem",
    "fetch_model",
    "filesystem",
    "pin_object",
    "reason",
    "require_credentials",
    "s3_client",
]

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

    On S3, one GET: the answer is one version of the object, whatever is written to the key
    meanwhile (a ranged read in several requests could mix two versions of a model).
    Raises :class:`ModelLoadError` naming the URI: not found, a prefix rather than an
    object, no such bucket, access denied, no credentials, unreachable store, a read cut
    short — after the client's retries.
    """
    scheme, _, rest = uri.partition("://")
    path = rest.strip("/")
    filesystem_ = checked_filesystem(scheme, ModelLoadError, uri)
    if scheme.lower() in S3_SCHEMES and "/" in path:
        return _fetch_s3_model(uri, filesystem_, path)
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


def _fetch_s3_model(uri: str, filesystem_: pafs.FileSystem, path: str) -> bytes:
    bucket, _, key = path.partition("/")
    client = s3_client(ModelLoadError)
    try:
        answer = client.get_object(Bucket=bucket, Key=key)
        expected = int(answer.get("ContentLength", -1))
        data: bytes = answer["Body"].read()
    except Exception as exc:
        code = client_code(exc)
        if code in ("NoSuchKey", "404"):
            # Not an object: a prefix, a missing key or a missing bucket (said apart here).
            found = filesystem_.get_file_info(path)
            if found.type == pafs.FileType.Directory:
                raise ModelLoadError(f"{uri}: is a prefix (directory), not a model file") from None
            raise ModelLoadError(f"{uri}: model file not found") from None
        if code == "NoSuchBucket":
            raise ModelLoadError(f"{uri}: bucket {bucket!r} does not exist") from None
        raise ModelLoadError(f"{uri}: {reason(exc)}") from None
    if expected >= 0 and len(data) != expected:
        raise ModelLoadError(f"{uri}: read {len(data)} of {expected} bytes (connection dropped)")
    return data


# -- pinned reads -----------------------------------------------------------------------------


@functools.cache
def _cached_s3_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=32,
    )
    return boto3.session.Session().client("s3", config=config)


def s3_client(error: type[ModelRouterError]) -> Any:
    """The process's boto3 S3 client (thread-safe); ``error`` (the caller's role) when boto3
    is not installed."""
    try:
        return _cached_s3_client()
    except ImportError:
        raise error("reading or writing s3:// needs boto3: pip install 'modelrouter[s3]'") from None


def _changed(version: ObjectVersion) -> ModelRouterError:
    return version.error(
        f"{version.uri}: the object changed while it was read (replaced or deleted after it "
        f"was opened at ETag {version.etag}); rerun to read the new version"
    )


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an S3 object, as seen when it was opened: every read of it is pinned
    to it (``If-Match: etag``; ``VersionId`` on a versioned bucket).

    ``str()`` is the object's URI, so it names the input wherever a path would.
    """

    uri: str
    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int
    error: type[ModelRouterError]

    def __str__(self) -> str:
        return self.uri

    def open(self, window: int = 0) -> PinnedObject:
        """A new reader over this version (see :class:`PinnedObject` for ``window``)."""
        return PinnedObject(self, window)


def pin_object(uri: str, error: type[ModelRouterError]) -> ObjectVersion:
    """The version of the S3 object at ``uri`` now (one HEAD request).

    Raises ``error`` naming the URI when the store cannot answer or the object is missing.
    """
    require_credentials(error, uri)
    client = s3_client(error)
    _, _, rest = uri.partition("://")
    bucket, _, key = rest.strip("/").partition("/")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise error(f"{uri}: {reason(exc)}") from None
    return ObjectVersion(
        uri,
        bucket,
        key,
        str(head["ETag"]),
        head.get("VersionId") or None,
        int(head["ContentLength"]),
        error,
    )


#: Sequential reads (CSV) fetch this many bytes per GET: a connection is held for one window,
#: not the whole run (a slow consumer of a long file would otherwise hold one GET open for
#: hours), and every window is checked against the pin. ``MODELROUTER_S3_READ_BYTES`` changes it.
_DEFAULT_READ_WINDOW = 8 << 20
_RESUMES = 3


def read_window() -> int:
    """Bytes per GET of a sequential pinned read."""
    raw = os.environ.get("MODELROUTER_S3_READ_BYTES", "")
    try:
        size = int(raw) if raw else _DEFAULT_READ_WINDOW
    except ValueError:
        size = 0
    if size < 1:
        raise DataError(f"MODELROUTER_S3_READ_BYTES must be a positive number of bytes (got {raw!r})")
    return size


class PinnedObject(io.RawIOBase):
    """A seekable, read-only file over one :class:`ObjectVersion` of an S3 object.

    Each read is a ranged GET pinned to the version (``If-Match``, ``VersionId``): exactly
    the bytes asked for (random access: Parquet), or, with ``window`` > 0, up to ``window``
    bytes consumed as they are asked for (sequential: CSV). A GET answered "precondition
    failed" (412) raises the version's error naming the object (:func:`_changed`); a body cut
    mid-transfer is resumed from where it stopped, up to 3 times per read. Thread-safe
    (pyarrow calls it from its I/O threads, under its own lock too).
    """

    def __init__(self, version: ObjectVersion, window: int = 0) -> None:
        super().__init__()
        self.version = version
        self._window = window
        self._client = s3_client(version.error)
        self._position = 0
        self._body: Any = None
        self._body_position = 0
        self._body_end = 0
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with self._lock:
            base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.version.size}[whence]
            self._position = max(0, base + offset)
            return self._position

    def size(self) -> int:
        return self.version.size

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with self._lock:
            end = min(self.version.size, self._position + len(view))
            filled = 0
            failures = 0
            while self._position < end:
                try:
                    if self._body is None or self._body_position != self._position:
                        self._open_body(end)
                    chunk = self._body.read(min(end - self._position, self._body_end - self._position))
                except ModelRouterError:
                    raise
                except Exception as exc:
                    self._drop_body()
                    failures += 1
                    if failures > _RESUMES or not is_cut(exc):
                        raise self._error(exc) from None
                    continue
                if not chunk:  # the body ended early: resume from here
                    self._drop_body()
                    failures += 1
                    if failures > _RESUMES:
                        raise self.version.error(
                            f"{self.version.uri}: connection dropped mid-transfer, even after retries"
                        )
                    continue
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
                self._position += len(chunk)
                self._body_position += len(chunk)
                if self._body_position >= self._body_end:
                    self._drop_body()
            return filled

    def _open_body(self, end: int) -> None:
        self._drop_body()
        stop = min(self.version.size, max(end, self._position + self._window))
        request: dict[str, Any] = {
            "Bucket": self.version.bucket,
            "Key": self.version.key,
            "Range": f"bytes={self._position}-{stop - 1}",
            "IfMatch": self.version.etag,
        }
        if self.version.version_id is not None:
            request["VersionId"] = self.version.version_id
        try:
            answer = self._client.get_object(**request)
        except Exception as exc:
            if client_code(exc) in ("PreconditionFailed", "412", "NoSuchVersion"):
                raise _changed(self.version) from None
            if client_code(exc) in ("NoSuchKey", "404"):  # deleted while it was read
                raise _changed(self.version) from None
            raise
        self._body = answer["Body"]
        self._body_position = self._position
        self._body_end = stop

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:
                pass

    def _error(self, exc: BaseException) -> ModelRouterError:
        if is_cut(exc):
            return self.version.error(
                f"{self.version.uri}: connection dropped mid-transfer, even after retries"
            )
        return self.version.error(f"{self.version.uri}: read failed ({reason(exc)})")

    def close(self) -> None:
        with self._lock:
            self._drop_body()
        super().close()
