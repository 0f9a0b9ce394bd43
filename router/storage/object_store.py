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

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from modelrouter.errors import ModelRouterError, OutputError
from modelrouter.locations import is_uri
from modelrouter.storage.formats import FileFormat
from modelrouter.storage.store_clients import (
    Role,
    botocore_cause,
    fs_path,
    is_s3,
    reason,
    store_error,
    write_client,
)
from modelrouter.storage.store_reading import (
    Kind,
    Pinned,
    exists,
    fetch_model,
    glob,
    info,
    list_files,
    object_version,
    open_binary,
    open_random,
    open_stream,
    pin,
)
from modelrouter.storage.uploads import MultipartUpload, StagedUpload
from modelrouter.storage.uris import Location, Uri, as_location, model_location_arg
from modelrouter.storage.writers import RowWriter, WriteStyle, open_writer

if TYPE_CHECKING:
    from modelrouter.storage.location import DataLocation

# The locations (uris), clients (store_clients), reads (store_reading) and uploads live beside
# this module; the engine imports them from here (``object_store as storage``).
__all__ = [
    "Kind",
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
    "glob",
    "info",
    "is_uri",
    "list_files",
    "model_location_arg",
    "object_version",
    "open_binary",
    "open_random",
    "open_stream",
    "pin",
    "reason",
    "remove",
    "write_bytes",
]


def remove(location: Location) -> None:
    """Delete the file/object if it exists (a stale ``_SUCCESS``)."""
    if isinstance(location, Path):
        location.unlink(missing_ok=True)
        return
    if location.scheme in ("s3", "s3a"):
        try:
            write_client(location).delete_object(Bucket=location.bucket, Key=location.key)
        except Exception as exc:
            raise store_error("output", location, exc, "delete") from None
        return
    filesystem, path = fs_path(location, "output")
    try:
        filesystem.delete_file(path)
    except FileNotFoundError:
        pass
    except (OSError, pa.ArrowException) as exc:
        raise store_error("output", location, exc, "delete") from None


def write_bytes(location: Uri, data: bytes) -> None:
    """Put a small object in one request (atomic: it appears whole or not at all); on other
    stores, as a temporary object moved over the destination (:class:`StagedUpload`)."""
    if location.scheme in ("s3", "s3a"):
        try:
            write_client(location).put_object(Bucket=location.bucket, Key=location.key, Body=data)
        except OutputError:
            raise
        except Exception as exc:
            raise store_error("output", location, exc, "write") from None
        return
    upload = StagedUpload(location)  # a temporary object moved over the destination
    try:
        upload.write(data)
        upload.complete()
    except (OSError, pa.ArrowException) as exc:
        upload.abort_upload()
        raise store_error("output", location, exc, "write") from None


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
        self._upload: MultipartUpload | StagedUpload
        if is_s3(uri):
            _check_bucket(uri)
            self._upload = MultipartUpload(uri)
        else:
            self._upload = StagedUpload(uri)
        self._writer: RowWriter | None
        #: CSV: the (maybe compressing) stream over the upload; closing it closes the upload,
        #: which publishes nothing (see MultipartUpload).
        self._sink: pa.NativeFile | None = None
        try:
            self._writer, self._sink = open_writer(self._upload, fmt, schema, style or WriteStyle())
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise store_error("output", uri, exc, "write") from None

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch; full parts are uploaded as they fill."""
        assert self._writer is not None, "write after commit/abort"
        try:
            self._writer.write_batch(batch)
        except ModelRouterError:
            raise
        except Exception as exc:
            raise store_error("output", self.path, botocore_cause(exc), "write") from None

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
            raise store_error("output", self.path, botocore_cause(exc), "finish writing") from None

    def publish(self) -> bool:
        """Complete the upload (or put a small object): the object appears now, whole."""
        try:
            self._upload.complete()
        except ModelRouterError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise store_error("output", self.path, botocore_cause(exc), "finish writing") from None
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


def check_output(location: str | DataLocation) -> None:
    """For an object-store output (a :class:`~modelrouter.storage.location.DataLocation`, or
    its text): fail now (before models load) when its bucket is missing or the store
    unreachable; nothing for local paths (their writer checks its folder)."""
    from modelrouter.storage.location import DataLocation

    place = DataLocation.of(location)
    if place.is_object and place.uri is not None and place.uri.scheme in ("s3", "s3a"):
        _check_bucket(place.uri)


_buckets_seen: set[str] = set()


def _check_bucket(uri: Uri) -> None:
    """Fail before any scoring when the bucket is missing or the store unreachable.

    Only "no such bucket" and transport errors fail here: a writer may lack the
    ``s3:ListBucket`` permission that HeadBucket needs and still be allowed to put objects.
    """
    if uri.bucket in _buckets_seen:
        return
    try:
        write_client(uri).head_bucket(Bucket=uri.bucket)
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
        raise store_error("output", uri, exc, "write") from None
