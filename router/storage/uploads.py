"""Uploads that publish nothing until they are completed (docs/specification.md §11).

:class:`MultipartUpload`: one S3 object as a multipart upload, parts sent as they fill,
completed only by :meth:`~MultipartUpload.complete`. :class:`StagedUpload`: one object on a
store with no abortable upload, staged locally and moved into place at the commit. Both are
write-only raw streams whose ``close`` publishes nothing, and both register with
:mod:`modelrouter.storage.inflight` so the signal watchdog can abort them.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import tempfile
import threading
import uuid
from typing import Any

from modelrouter import remote
from modelrouter.errors import OutputError
from modelrouter.storage import inflight
from modelrouter.storage.store_clients import READ_BUFFER, write_client
from modelrouter.storage.uris import Uri

__all__ = ["MultipartUpload", "StagedUpload"]

#: Bytes per uploaded part. S3 requires at least 5 MiB for every part but the last;
#: ``MODELROUTER_S3_PART_SIZE`` changes it (stores with a lower minimum, tests).
_DEFAULT_PART_SIZE = 8 << 20


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


class MultipartUpload(io.RawIOBase):
    """A write-only stream that uploads fixed-size parts of one S3 object.

    Nothing is visible until :meth:`complete`; :meth:`abort` discards the parts. ``close``
    (which pyarrow's writers call when they finish) completes nothing: publishing is
    explicit, so a writer dropped on an error path can never publish a partial object.
    """

    def __init__(self, uri: Uri) -> None:
        self.uri = uri
        self._client = write_client(uri)
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


class StagedUpload(io.RawIOBase):
    """One object on a store other than S3 (``gs://``, ``az://``, ``memory://``… through
    pyarrow or fsspec), which offers no upload that can be aborted.

    The bytes are staged in an anonymous local temporary file during the run (gone with the
    process, even after ``kill -9``); :meth:`flush_parts` (the commit's prepare step) copies
    them to a temporary object beside the destination, ``.<name>.modelrouter-<random>.part``;
    :meth:`complete` moves that over the destination (the store's rename: atomic on local
    and in-memory filesystems, HDFS and hierarchical-namespace Azure; copy-then-delete on
    flat object stores such as GCS, where the copy makes the destination appear whole);
    :meth:`abort_upload` deletes the temporary object. Same interface as
    :class:`MultipartUpload`, and ``close`` publishes nothing either.
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
                shutil.copyfileobj(self._staged, out, READ_BUFFER)

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
