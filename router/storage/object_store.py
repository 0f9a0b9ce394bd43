"""Object stores: every path the CLI reads or writes may be a URI (docs/specification.md §11).

A location is a local :class:`~pathlib.Path` or a :class:`Uri` (``s3://bucket/key``); both
answer the path arithmetic the engine does (``name``, ``stem``, ``suffix``, ``parent``,
``with_name``, ``/``), and the functions here answer the I/O for either.

- **Reads** of ``s3://`` objects are ranged GETs made with boto3, every one pinned to the
  version seen when the input was opened (:func:`pin`; ``If-Match`` with its ETag, and its
  ``VersionId`` on a versioned bucket): an object replaced mid-read fails the run naming it
  (exit 3), never a mix of two versions (``docs/remote-storage.md``). Parquet is read as a
  random-access file row group by row group, CSV as a stream a window at a time — never a
  whole-object download first. Metadata and listings, and every read of other schemes, go
  through ``pyarrow.fs`` (``S3FileSystem``; ``FileSystem.from_uri`` or, failing that, an
  installed fsspec implementation).
- **Writes** to ``s3://`` are multipart uploads made with boto3 (the ``s3`` extra):
  :class:`RemoteOutput` uploads parts as they fill, the last one in
  :meth:`~RemoteOutput.prepare`, and completes the upload only in
  :meth:`~RemoteOutput.publish` — the run's one commit step
  (:class:`~modelrouter.storage.commit.RunOutputs`) calls them for every output of the
  run; :meth:`~RemoteOutput.abort` (failure, SIGINT/SIGTERM) aborts it. Until the
  completion, S3 shows no object and an existing one is untouched. A small output (below
  one part) is sent in one PUT at the commit. Other schemes (through pyarrow or fsspec)
  have no abortable upload: their outputs are staged in an anonymous local temporary file,
  copied to a temporary object beside the destination at the commit's prepare step and
  moved over the destination at its publish step (:class:`_StagedUpload`). Object stores
  hold no local temporary files, so the stale-temp sweep never lists them. pyarrow's S3
  output stream is not used for outputs: it cannot abort, and it *completes* the upload
  when it is closed or collected, which would publish a partial object after a failure.
- **Credentials, region, endpoint** come from the standard AWS environment and files
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``,
  ``~/.aws``), which boto3 reads; pyarrow reads them too except the endpoint variables,
  which are passed to it explicitly. Nothing is added to our config.
- **Errors** become the role's error (input: :class:`DataError`, exit 3; model:
  :class:`ModelLoadError`, exit 4; output: :class:`OutputError`, exit 5) with one line naming
  the URI and the reason (no credentials, no such bucket, access denied, unreachable…),
  after the clients' own retries (standard mode, 3 attempts).

What ``kill -9`` (or a power cut) can leave: an *incomplete multipart upload* — invisible
parts that are billed until a bucket lifecycle rule (``AbortIncompleteMultipartUpload``)
or an explicit abort removes them. Never a partial or replaced object.
"""

from __future__ import annotations

import functools
import io
import os
import posixpath
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeAlias

import pyarrow as pa
import pyarrow.fs as pafs
from modelrouter import remote
from modelrouter.errors import DataError, ModelLoadError, ModelRouterError, OutputError
from modelrouter.locations import is_uri
from modelrouter.storage import inflight
from modelrouter.storage.formats import FileFormat
from modelrouter.storage.writers import RowWriter, WriteStyle, open_writer

__all__ = [
    "Location",
    "Pinned",
    "RemoteOutput",
    "RemoteText",
    "Role",
    "Uri",
    "as_location",
    "check_output",
    "exists",
    "fetch_model",
    "info",
    "is_uri",
    "list_files",
    "model_location_arg",
    "object_version",
    "open_binary",
    "open_random",
    "open_stream",
    "pin",
    "remove",
    "write_bytes",
]

Role = Literal["input", "model", "output"]

#: Bytes per uploaded part. S3 requires at least 5 MiB for every part but the last;
#: ``MODELROUTER_S3_PART_SIZE`` changes it (stores with a lower minimum, tests).
_DEFAULT_PART_SIZE = 8 << 20
_READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class Uri:
    """``scheme://bucket/key`` with the path arithmetic of :class:`~pathlib.PurePosixPath`."""

    scheme: str
    path: str  # "bucket/key/…", no leading or trailing slash

    @classmethod
    def parse(cls, text: str) -> Uri:
        scheme, _, rest = text.partition("://")
        return cls(scheme.lower(), rest.strip("/"))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}"

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.path.partition("/")[2]

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> Uri:
        return Uri(self.scheme, posixpath.dirname(self.path))

    def with_name(self, name: str) -> Uri:
        return Uri(self.scheme, str(PurePosixPath(self.path).with_name(name)))

    def with_suffix(self, suffix: str) -> Uri:
        return Uri(self.scheme, str(PurePosixPath(self.path).with_suffix(suffix)))

    def __truediv__(self, other: str | PurePosixPath | Path) -> Uri:
        return Uri(self.scheme, posixpath.join(self.path, str(other)).strip("/"))

    def relative_to(self, other: Uri) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)

    def is_relative_to(self, other: Uri) -> bool:
        return self.scheme == other.scheme and PurePosixPath(self.path).is_relative_to(other.path)


#: Where the engine reads or writes: a local path or an object-store URI.
Location: TypeAlias = Path | Uri


def as_location(text: str | os.PathLike[str]) -> Location:
    """A :class:`Uri` for ``scheme://…``, else a :class:`~pathlib.Path`."""
    return Uri.parse(text) if isinstance(text, str) and is_uri(text) else Path(text)


def model_location_arg(text: str) -> Path | str:
    """``-m``'s value for the router: a URI stays a string, a local path becomes a Path."""
    return text if is_uri(text) else Path(text)


# -- clients ---------------------------------------------------------------------------------


@functools.cache
def _s3_client() -> Any:
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


def _fs_path(uri: Uri, role: Role = "input") -> tuple[pafs.FileSystem, str]:
    return remote.checked_filesystem(uri.scheme, _ROLE_ERRORS[role], uri), uri.path


def _client(uri: Uri) -> Any:
    remote.require_credentials(OutputError, uri)
    return _s3_client()


def _is_s3(uri: Uri) -> bool:
    return uri.scheme in remote.S3_SCHEMES


# -- errors -----------------------------------------------------------------------------------

_ROLE_ERRORS: dict[Role, type[ModelRouterError]] = {
    "input": DataError,
    "model": ModelLoadError,
    "output": OutputError,
}

#: One short line saying why a store operation failed (shared with the library's model fetch).
reason = remote.reason


def _fail(role: Role, location: object, exc: BaseException, doing: str = "") -> ModelRouterError:
    what = f"cannot {doing}: " if doing else ""
    return _ROLE_ERRORS[role](f"{location}: {what}{reason(exc)}")


# -- reading ----------------------------------------------------------------------------------

Kind = Literal["file", "directory", "missing"]


def info(location: Location, role: Role = "input") -> Kind:
    """What is at ``location``: an object/file, a prefix/directory, or nothing.

    Raises the role's error when the store cannot answer, or when the bucket itself does
    not exist (a more useful message than "not found").
    """
    if isinstance(location, Path):
        return "file" if location.is_file() else "directory" if location.is_dir() else "missing"
    filesystem, path = _fs_path(location, role)
    try:
        found = filesystem.get_file_info(path)
        if found.type == pafs.FileType.NotFound and location.key:
            bucket = filesystem.get_file_info(location.bucket)
            if bucket.type == pafs.FileType.NotFound:
                raise _ROLE_ERRORS[role](f"{location}: bucket {location.bucket!r} does not exist")
    except (OSError, pa.ArrowException) as exc:
        raise _fail(role, location, exc) from None
    if found.type == pafs.FileType.File:
        return "file"
    if found.type == pafs.FileType.Directory:
        return "directory"
    return "missing"


def exists(location: Location) -> bool:
    """True when a file/object is at ``location`` (``--resume`` asks this of outputs)."""
    return info(location, "output") == "file"


def object_version(uri: Uri) -> dict[str, str]:
    """What tells this object's content from another's: its size and ETag on S3, its size
    and modification time (ns) on other stores. Raises :class:`DataError`."""
    if _is_s3(uri):
        remote.require_credentials(DataError, uri)
        try:
            head = _s3_client().head_object(Bucket=uri.bucket, Key=uri.key)
        except Exception as exc:
            raise _fail("input", uri, exc) from None
        return {"size": str(head["ContentLength"]), "etag": str(head["ETag"])}
    filesystem, path = _fs_path(uri)
    try:
        found = filesystem.get_file_info(path)
    except (OSError, pa.ArrowException) as exc:
        raise _fail("input", uri, exc) from None
    if found.type != pafs.FileType.File:
        raise DataError(f"{uri}: no such object")
    return {"size": str(found.size), "mtime_ns": str(found.mtime_ns)}


#: An input object as opened: on S3 the version seen at open (every read is pinned to it),
#: on other stores the URI (read as it is at each request).
Pinned: TypeAlias = remote.ObjectVersion | Uri


def pin(uri: Uri, role: Role = "input") -> Pinned:
    """The object at ``uri`` as it is now: on S3 its version (one HEAD request), whose reads
    fail naming the object when it is replaced meanwhile (``docs/remote-storage.md``); the
    URI itself on stores that have no conditional reads here."""
    if _is_s3(uri):
        return remote.pin_object(str(uri), _ROLE_ERRORS[role])
    return uri


def open_random(source: Pinned) -> Any:
    """A random-access pyarrow file over the object (Parquet reads ranges of it), pinned to
    one version on S3 (a bare S3 :class:`Uri` is pinned now)."""
    if isinstance(source, Uri) and _is_s3(source):
        source = pin(source)
    if isinstance(source, remote.ObjectVersion):
        return pa.PythonFile(source.open(), mode="r")
    filesystem, path = _fs_path(source)
    try:
        return filesystem.open_input_file(path)
    except (OSError, pa.ArrowException) as exc:
        raise _fail("input", source, exc) from None


def open_binary(source: Pinned, *, sequential: bool = False) -> io.BufferedIOBase:
    """A buffered Python file over the object (the sniff and header scan read lines);
    ``sequential``: read front to back a window per GET (:func:`remote.read_window`)."""
    if isinstance(source, Uri) and _is_s3(source):
        source = pin(source)
    if isinstance(source, remote.ObjectVersion):
        return io.BufferedReader(source.open(remote.read_window() if sequential else 0), buffer_size=1 << 16)
    # pyarrow's files have no readline(): buffer the (seekable, ranged-read) object in Python.
    return io.BufferedReader(open_random(source), buffer_size=1 << 16)


def open_stream(source: Pinned) -> Any:
    """A sequential pyarrow stream over the object's bytes (CSV), as stored: never
    decompressed by a guess from the name (the reader decompresses what the bytes say).
    On S3 pinned to one version, read a window at a time (:func:`remote.read_window`)."""
    if isinstance(source, Uri) and _is_s3(source):
        source = pin(source)
    if isinstance(source, remote.ObjectVersion):
        return pa.PythonFile(source.open(remote.read_window()), mode="r")
    filesystem, path = _fs_path(source)
    try:
        return filesystem.open_input_stream(path, compression=None, buffer_size=_READ_BUFFER)
    except (OSError, pa.ArrowException) as exc:
        raise _fail("input", source, exc) from None


def fetch_model(uri: str) -> bytes:
    """The bytes of the model object at ``uri`` (:func:`modelrouter.remote.fetch_model`)."""
    return remote.fetch_model(uri)


def list_files(prefix: Uri) -> list[Uri]:
    """Every object under ``prefix`` (recursively)."""
    filesystem, path = _fs_path(prefix)
    try:
        found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except (OSError, pa.ArrowException) as exc:
        raise _fail("input", prefix, exc) from None
    return [Uri(prefix.scheme, f.path.strip("/")) for f in found if f.type == pafs.FileType.File]


def glob(pattern: Uri) -> tuple[Uri, list[Uri]]:
    """The fixed prefix of ``pattern`` and the objects under it whose key matches it.

    Patterns follow :mod:`glob`: ``*`` and ``?`` stay within one path segment, ``**`` spans
    segments, ``[…]`` is a character class.
    """
    magic = re.search(r"[*?[]", pattern.path)
    fixed = pattern.path[: magic.start()] if magic else pattern.path
    root = Uri(pattern.scheme, fixed.rstrip("/") if fixed.endswith("/") else posixpath.dirname(fixed))
    matcher = re.compile(_glob_regex(pattern.path))
    return root, [u for u in list_files(root) if matcher.fullmatch(u.path)]


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


# -- writing ----------------------------------------------------------------------------------


def remove(location: Location) -> None:
    """Delete the file/object if it exists (a stale ``_SUCCESS``)."""
    if isinstance(location, Path):
        location.unlink(missing_ok=True)
        return
    if location.scheme in ("s3", "s3a"):
        try:
            _client(location).delete_object(Bucket=location.bucket, Key=location.key)
        except Exception as exc:
            raise _fail("output", location, exc, "delete") from None
        return
    filesystem, path = _fs_path(location, "output")
    try:
        filesystem.delete_file(path)
    except FileNotFoundError:
        pass
    except (OSError, pa.ArrowException) as exc:
        raise _fail("output", location, exc, "delete") from None


def write_bytes(location: Uri, data: bytes) -> None:
    """Put a small object in one request (atomic: it appears whole or not at all); on other
    stores, as a temporary object moved over the destination (:class:`_StagedUpload`)."""
    if location.scheme in ("s3", "s3a"):
        try:
            _client(location).put_object(Bucket=location.bucket, Key=location.key, Body=data)
        except OutputError:
            raise
        except Exception as exc:
            raise _fail("output", location, exc, "write") from None
        return
    upload = _StagedUpload(location)  # a temporary object moved over the destination
    try:
        upload.write(data)
        upload.complete()
    except (OSError, pa.ArrowException) as exc:
        upload.abort_upload()
        raise _fail("output", location, exc, "write") from None


def _part_size() -> int:
    raw = os.environ.get("MODELROUTER_S3_PART_SIZE")
    if raw is None:
        return _DEFAULT_PART_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise OutputError(f"MODELROUTER_S3_PART_SIZE must be a positive number of bytes (got {raw!r})")
    return size


class _MultipartUpload(io.RawIOBase):
    """A write-only stream that uploads fixed-size parts of one S3 object.

    Nothing is visible until :meth:`complete`; :meth:`abort` discards the parts. ``close``
    (which pyarrow's writers call when they finish) completes nothing: publishing is
    explicit, so a writer dropped on an error path can never publish a partial object.
    """

    def __init__(self, uri: Uri) -> None:
        self.uri = uri
        self._client = _client(uri)
        self._part_size = _part_size()
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # the signal watchdog may abort from its own thread

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._upload_part(part)
        return len(view)

    def _upload_part(self, data: bytes) -> None:
        with self._lock:
            if self._upload_id is None:
                created = self._client.create_multipart_upload(Bucket=self.uri.bucket, Key=self.uri.key)
                self._upload_id = created["UploadId"]
                inflight.current().uploads.add(self)
            number = len(self._parts) + 1
            answer = self._client.upload_part(
                Bucket=self.uri.bucket,
                Key=self.uri.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
            self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def flush_parts(self) -> None:
        """Upload what is buffered as the last part (when an upload was started): after this,
        :meth:`complete` is one request. A small object stays buffered for its single PUT."""
        if self._upload_id is not None and self._buffer:
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()

    def complete(self) -> None:
        """Publish the object (one PUT when it never filled a part)."""
        if self._upload_id is None:
            self._client.put_object(Bucket=self.uri.bucket, Key=self.uri.key, Body=bytes(self._buffer))
            self._buffer.clear()
            return
        self.flush_parts()
        with self._lock:
            self._client.complete_multipart_upload(
                Bucket=self.uri.bucket,
                Key=self.uri.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
        inflight.current().uploads.discard(self)

    def abort_upload(self) -> None:
        """Discard the parts; idempotent, never raises (best effort: lifecycle rules remain)."""
        self._buffer.clear()
        with self._lock:
            upload_id, self._upload_id = self._upload_id, None
        inflight.current().uploads.discard(self)
        if upload_id is not None:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.uri.bucket, Key=self.uri.key, UploadId=upload_id
                )
            except Exception:
                pass


class _StagedUpload(io.RawIOBase):
    """One object on a store other than S3 (``gs://``, ``az://``, ``memory://``… through
    pyarrow or fsspec), which offers no upload that can be aborted.

    The bytes are staged in an anonymous local temporary file during the run (gone with the
    process, even after ``kill -9``); :meth:`flush_parts` (the commit's prepare step) copies
    them to a temporary object beside the destination, ``.<name>.modelrouter-<random>.part``;
    :meth:`complete` moves that over the destination (the store's rename: atomic on local
    and in-memory filesystems, HDFS and hierarchical-namespace Azure; copy-then-delete on
    flat object stores such as GCS, where the copy makes the destination appear whole);
    :meth:`abort_upload` deletes the temporary object. Same interface as
    :class:`_MultipartUpload`, and ``close`` publishes nothing either.
    """

    def __init__(self, uri: Uri) -> None:
        self.uri = uri
        self._filesystem = remote.checked_filesystem(uri.scheme, OutputError, uri)
        # Closed by complete/abort; anonymous, so even kill -9 leaves nothing on disk.
        self._staged: Any = tempfile.TemporaryFile(prefix="modelrouter-staged-")  # noqa: SIM115
        self._temp: str | None = None
        self._lock = threading.Lock()  # the signal watchdog may abort from its own thread

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._staged.write(view)
        return len(view)

    def flush_parts(self) -> None:
        """Copy the staged bytes to the temporary object (the slow half of the commit)."""
        with self._lock:
            if self._temp is not None or self._staged is None:
                return
            name = f".{self.uri.name}.modelrouter-{uuid.uuid4().hex[:12]}.part"
            self._temp = posixpath.join(posixpath.dirname(self.uri.path), name)
            inflight.current().uploads.add(self)
            self._staged.seek(0)
            with self._filesystem.open_output_stream(self._temp) as out:
                shutil.copyfileobj(self._staged, out, _READ_BUFFER)

    def complete(self) -> None:
        """Move the temporary object over the destination: the object appears now."""
        self.flush_parts()
        with self._lock:
            assert self._temp is not None
            self._filesystem.move(self._temp, self.uri.path)
            self._temp = None
            self._close_staged()
        inflight.current().uploads.discard(self)

    def abort_upload(self) -> None:
        """Delete the temporary object and the staged bytes; idempotent, never raises."""
        with self._lock:
            temp, self._temp = self._temp, None
            self._close_staged()
        inflight.current().uploads.discard(self)
        if temp is not None:
            try:
                self._filesystem.delete_file(temp)
            except Exception:
                pass

    def _close_staged(self) -> None:
        staged, self._staged = self._staged, None
        if staged is not None:
            staged.close()


#: Uploads started and neither completed nor aborted: the signal watchdog
#: (:mod:`modelrouter.cli.exits`) aborts them when the main thread cannot.


class RemoteOutput:
    """Writes batches as one object at ``uri``, published only by :meth:`commit`.

    The same contract as :class:`~modelrouter.storage.commit.AtomicOutput`: every failure
    is an :class:`OutputError` naming the URI; :meth:`abort` is idempotent and leaves no
    object (and no multipart upload) behind; an existing object is replaced only by commit.
    """

    def __init__(self, uri: Uri, fmt: FileFormat, schema: pa.Schema, style: WriteStyle | None = None) -> None:
        if not uri.key:
            raise OutputError(f"{uri}: names a bucket, not an object")
        self.path = uri
        self.format = fmt
        self.schema = schema
        self._upload: _MultipartUpload | _StagedUpload
        if _is_s3(uri):
            _check_bucket(uri)
            self._upload = _MultipartUpload(uri)
        else:
            self._upload = _StagedUpload(uri)
        self._writer: RowWriter | None
        #: CSV: the (maybe compressing) stream over the upload; closing it closes the upload,
        #: which publishes nothing (see _MultipartUpload).
        self._sink: pa.NativeFile | None = None
        try:
            self._writer, self._sink = open_writer(self._upload, fmt, schema, style or WriteStyle())
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise _fail("output", uri, exc, "write") from None

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch; full parts are uploaded as they fill."""
        assert self._writer is not None, "write after commit/abort"
        try:
            self._writer.write_batch(batch)
        except ModelRouterError:
            raise
        except Exception as exc:
            raise _fail("output", self.path, _cause(exc), "write") from None

    def prepare(self) -> None:
        """Finish the file and upload every part; the object is not visible yet.

        Called by the run's commit (:class:`~modelrouter.storage.commit.RunOutputs`)
        before any output is published, so an upload failing here leaves every destination
        of the run as it was.
        """
        try:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            sink, self._sink = self._sink, None
            if sink is not None:
                sink.close()  # a compressed stream writes its trailer now
            self._upload.flush_parts()
        except ModelRouterError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise _fail("output", self.path, _cause(exc), "finish writing") from None

    def publish(self) -> bool:
        """Complete the upload (or put a small object): the object appears now, whole."""
        try:
            self._upload.complete()
        except ModelRouterError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise _fail("output", self.path, _cause(exc), "finish writing") from None
        return True

    def abort(self) -> None:
        """Drop everything written; idempotent, never raises."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()  # flushes into the upload's buffer, which is discarded next
            except Exception:
                pass
        self._upload.abort_upload()


class RemoteText:
    """A small object (stats JSON, metrics, ``_SUCCESS``) put in one request at the commit.

    The bucket is checked when it is made (before scoring, like a local folder); one PUT
    is atomic: the object appears whole or not at all.
    """

    def __init__(self, uri: Uri, text: str | bytes) -> None:
        if not uri.key:
            raise OutputError(f"{uri}: names a bucket, not an object")
        if uri.scheme in ("s3", "s3a"):
            _check_bucket(uri)
        self.path = uri
        self._data: bytes | None = text.encode("utf-8") if isinstance(text, str) else text

    def prepare(self) -> None:
        """Nothing to finish: the bytes are in memory."""

    def publish(self) -> bool:
        data, self._data = self._data, None
        if data is None:
            return False
        write_bytes(self.path, data)
        return True

    def abort(self) -> None:
        self._data = None


def check_output(location: str) -> None:
    """For a URI output: fail now (before models load) when its bucket is missing or the
    store unreachable; nothing for local paths (their writer checks its folder)."""
    if is_uri(location):
        uri = Uri.parse(location)
        if uri.scheme in ("s3", "s3a"):
            _check_bucket(uri)


_buckets_seen: set[str] = set()


def _check_bucket(uri: Uri) -> None:
    """Fail before any scoring when the bucket is missing or the store unreachable.

    Only "no such bucket" and transport errors fail here: a writer may lack the
    ``s3:ListBucket`` permission that HeadBucket needs and still be allowed to put objects.
    """
    if uri.bucket in _buckets_seen:
        return
    try:
        _client(uri).head_bucket(Bucket=uri.bucket)
        _buckets_seen.add(uri.bucket)
    except OutputError:
        raise
    except Exception as exc:
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        if code in ("403", "AccessDenied"):
            return
        if code in ("404", "NoSuchBucket"):
            raise OutputError(f"{uri}: bucket {uri.bucket!r} does not exist") from None
        raise _fail("output", uri, exc, "write") from None


def _cause(exc: BaseException) -> BaseException:
    """The botocore error behind an Arrow error raised from our Python sink, when there is one."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if getattr(seen, "response", None) is not None or type(seen).__module__.startswith("botocore"):
            return seen
    return exc
