"""The bytes of an input: opened, sniffed, decompressed and replayed, for every reader.

A local path or a pinned object is opened natively for Arrow or from Python (the header
scan); stdin, FIFOs and devices are read once, front to back, through :class:`Replay`,
which hands back what the sniff consumed. Compression is told by the first bytes, never by
the name (:func:`modelrouter.storage.formats.sniff_compression`).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol, TypeAlias, TypeVar, cast

import pyarrow as pa
from modelrouter.batch.input_file import first_line
from modelrouter.errors import DataError
from modelrouter.remote import ObjectVersion
from modelrouter.remote import read_window as remote_read_window
from modelrouter.storage import object_store as storage
from modelrouter.storage.formats import Compression

__all__ = [
    "BOM",
    "STREAM_READ_BYTES",
    "Replay",
    "Source",
    "Stream",
    "checked_read",
    "counted_source",
    "decompressed",
    "local_or_pinned",
    "open_binary",
    "python_side",
    "read_head",
    "skip_bytes",
    "stored_size",
]

#: The most a stream read (stdin, a FIFO) hands Arrow at once, unless a row is longer.
STREAM_READ_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"


class Stream(Protocol):
    """A readable byte stream: a Python binary file or a pyarrow input stream."""

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


def read_head(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` first bytes (fewer only at the end of the stream), for sniffing."""
    head = b""
    read = getattr(stream, "read1", stream.read)
    while len(head) < size:
        block = read(size - len(head))
        if not block:
            break
        head += block
    return head


#: Where CSV bytes come from: a local path, stdin (``-``) or an object as opened.
Source: TypeAlias = str | Path | storage.Pinned


def stored_size(path: Source) -> int | None:
    """The size of the file or object as stored, when known without a request."""
    location = local_or_pinned(path)
    if isinstance(location, ObjectVersion):
        return location.size
    if isinstance(location, Path):
        try:
            return location.stat().st_size
        except OSError:
            return None
    return None


def decompressed(stream: BinaryIO, compression: Compression | None) -> Stream:
    if compression is None:
        return stream
    decompressed: Stream = pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), compression)
    return decompressed


_HeaderT = TypeVar("_HeaderT")


def checked_read(name: str, compression: Compression | None, read: Callable[[], _HeaderT]) -> _HeaderT:
    """``read()``, with a decompression failure as the :class:`DataError` it is."""
    try:
        return read()
    except (OSError, pa.ArrowInvalid) as exc:
        if compression is None:
            raise
        raise DataError(f"{name}: corrupt {compression} data ({first_line(exc)})") from None


def local_or_pinned(path: Source) -> Path | storage.Pinned:
    return path if isinstance(path, (Path, storage.Uri, ObjectVersion)) else storage.as_location(path)


def open_binary(path: Source) -> BinaryIO:
    """The file or object for a Python-side read (the sniff and the header scan)."""
    location = local_or_pinned(path)
    if isinstance(location, Path):
        return open(location, "rb")
    return cast(BinaryIO, storage.open_binary(location))


def native_source(path: Source, compression: Compression | None) -> str | pa.NativeFile:
    """What Arrow's CSV reader reads natively: a plain local file by its path (Arrow then
    skips a BOM itself), a decompressing stream, or a pyarrow stream over the object."""
    return counted_source(path, compression)[0]


def counted_source(
    path: Source, compression: Compression | None
) -> tuple[pa.NativeFile, Callable[[], float] | None]:
    """:func:`native_source` as a stream (Arrow skips a BOM in a stream too), and the
    stored bytes per decompressed byte, for the progress of a CSV read in stored bytes:
    1 for a plain file; for a compressed local file, the ratio of its first MiB."""
    location = local_or_pinned(path)
    if isinstance(location, Path):
        raw = pa.OSFile(str(location))
    elif isinstance(location, ObjectVersion):
        raw = pa.PythonFile(location.open(remote_read_window()), mode="r")
    else:
        raw = storage.open_stream(location)
    if compression is None:
        return raw, (lambda: 1.0)
    # Never Arrow's guess of a compression from the name: what the bytes say.
    stream = pa.CompressedInputStream(raw, compression)
    if not isinstance(location, Path):
        return stream, None
    ratio = compression_ratio(location, compression)
    return stream, (lambda: ratio)


def compression_ratio(path: Path, compression: Compression) -> float:
    """Stored bytes per decompressed byte over the first MiB of a compressed file (0 when
    it cannot be read: the run's own read reports why)."""
    try:
        with pa.OSFile(str(path)) as raw, pa.CompressedInputStream(raw, compression) as stream:
            data = stream.read(1 << 20)
            return raw.tell() / len(data) if data else 0.0
    except (OSError, pa.ArrowInvalid):
        return 0.0


def python_side(path: Source, compression: Compression | None) -> Stream:
    """The file from its start, decompressed, for reads from Python (the header scan)."""
    if compression is None:
        return open_binary(path)
    native = native_source(path, compression)
    assert not isinstance(native, str)
    stream: Stream = native
    return stream


def skip_bytes(stream: Stream, size: int) -> None:
    while size > 0:
        block = stream.read(min(size, 1 << 20))
        if not block:
            return
        size -= len(block)


class Replay(io.RawIOBase):
    """A read-only stream that first replays ``prefix``, then continues with ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO | Stream) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream
        #: Whether the bytes handed over so far end inside a quoted field: the count of
        #: quote characters is odd (a doubled quote inside a field counts twice).
        self._quoted = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """What is there now, at most 1 MiB, extended to the next line break.

        Arrow reads up to 32 buffers ahead of the rows asked for, and needs each row inside
        two consecutive buffers. So a buffer is what the stream has now (a pipe that
        trickles must not wait for a whole block), at most :data:`STREAM_READ_BYTES` (a
        1 GB file on stdin was read ahead whole, 32 MiB at a time), and ends past a line
        break whenever the stream has one before the block size (a 10 MB field through a
        pipe, read 64 KiB at a time, straddled many buffers: a false "row too long")."""
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._quoted ^= bool(self._prefix[:n].tobytes().count(b'"') % 2)
            self._prefix = self._prefix[n:]
            return n
        read = getattr(self._stream, "read1", self._stream.read)
        data = bytearray(read(min(len(buffer), STREAM_READ_BYTES)))
        while data and not self._ends_a_row(data) and len(data) < len(buffer):
            more = read(min(len(buffer) - len(data), STREAM_READ_BYTES))
            if not more:
                break
            data += more
        buffer[: len(data)] = data
        self._quoted ^= bool(data.count(b'"') % 2)
        return len(data)

    def _ends_a_row(self, data: bytearray) -> bool:
        """Whether ``data`` holds a line break that ends a row: its last one, outside quotes.
        A line break inside a quoted field (a multi-line value) ends nothing: a buffer
        cut there left a 2 MiB multi-line field spread over more than two buffers, which
        Arrow refused as a row longer than 32 MiB on stdin while the file by path scored."""
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last < 0:
            return False
        return not (self._quoted ^ bool(data.count(b'"', 0, last) % 2))

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()
        super().close()

    def __del__(self) -> None:
        # This wrapper owns the file; IOBase.__del__ would only close the wrapper itself.
        self.close()
