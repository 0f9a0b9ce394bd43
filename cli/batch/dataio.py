"""Streaming readers (CSV, Parquet) and atomic writers, all on pyarrow.

Readers never load the whole file: Parquet is read row group by row group with
``pre_buffer=False`` (which keeps memory flat, FIELD-NOTES), CSV through pyarrow's streaming
reader with every column pinned to text, so no column can change type between blocks; the
model backend casts feature columns to its input types with errors that point at the row.
Both re-chunk to exactly ``chunk_size`` rows.

Writers write to a hidden temporary file in the destination folder and ``os.replace`` it
over the destination on :meth:`AtomicOutput.commit` only; :meth:`AtomicOutput.abort`
removes it, so a failed or interrupted run never leaves a partial file nor touches an
existing one.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from modelrouter.cli.batch import storage
from modelrouter.errors import DataError, OutputError

__all__ = [
    "LIVE_TEMP_FILES",
    "AtomicOutput",
    "FileFormat",
    "InputFile",
    "detect_format",
    "open_input",
    "open_output",
    "rechunk",
    "write_text_atomically",
]

FileFormat = Literal["csv", "parquet"]

_SUFFIX_FORMATS: dict[str, FileFormat] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_CSV_BLOCK_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"


def detect_format(path: str | Path, override: FileFormat | None, *, role: str) -> FileFormat:
    """The format named by ``override``, else by the suffix; :class:`DataError` if unknown."""
    if override is not None:
        return override
    if str(path) == "-":
        return "csv"
    suffix = Path(path).suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    known = ", ".join(sorted(_SUFFIX_FORMATS))
    message = f"{path}: unknown {role} format {suffix or '(no suffix)'!r} (known: {known})"
    if role == "output":
        raise OutputError(message + "; pass --output-format")
    raise DataError(message + "; pass --input-format")


@dataclass
class InputFile:
    """An opened input: its Arrow schema (as it will be read), row count if known, batches."""

    name: str
    schema: pa.Schema
    total_rows: int | None
    batches: Iterator[pa.RecordBatch]
    close: Callable[[], None]
    #: Every column of the file, also those not read (for error messages that show them).
    all_columns: tuple[str, ...] = ()


def open_input(
    path: str | Path,
    fmt: FileFormat,
    *,
    chunk_size: int,
    columns: Sequence[str] | None = None,
) -> InputFile:
    """Open ``path`` (``-``: CSV on stdin) for streaming in chunks of ``chunk_size`` rows.

    ``columns`` restricts reading to those columns (all when ``None``). Raises
    :class:`DataError` for a missing, empty, corrupt or undecodable file.
    """
    name = "<stdin>" if str(path) == "-" else str(path)
    location = storage.as_location(path)
    if str(path) != "-" and (kind := storage.info(location)) != "file":
        what = "is a directory, not a file" if kind == "directory" else "file not found"
        raise DataError(f"{name}: {what}")
    if fmt == "parquet":
        # An object-store file is read by ranged requests, row group by row group.
        source = location if isinstance(location, Path) else storage.open_random(location)
        return _open_parquet(source, name, chunk_size, columns)
    return _open_csv(path, name, chunk_size, columns)


def _open_parquet(
    path: Path | pa.NativeFile, name: str, chunk_size: int, columns: Sequence[str] | None
) -> InputFile:
    try:
        handle = pq.ParquetFile(path, pre_buffer=False, memory_map=False)
    except (pa.ArrowInvalid, OSError) as exc:
        if not isinstance(path, Path):
            path.close()
        raise DataError(f"{name}: not a readable Parquet file ({_first_line(exc)})") from None
    remote = None if isinstance(path, Path) else path

    def close() -> None:
        handle.close()
        if remote is not None:  # ParquetFile closes only files it opened itself
            remote.close()

    schema = handle.schema_arrow
    _reject_duplicates(schema.names, name)
    wanted = list(schema.names) if columns is None else [c for c in schema.names if c in set(columns)]
    schema = pa.schema([schema.field(c) for c in wanted])

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for group in range(handle.num_row_groups):
                yield from handle.iter_batches(
                    batch_size=chunk_size, row_groups=[group], columns=wanted, use_threads=True
                )
        except (pa.ArrowInvalid, OSError) as exc:
            if remote is not None and not isinstance(exc, pa.ArrowInvalid):
                raise DataError(f"{name}: read failed ({storage.reason(exc)})") from None
            raise DataError(f"{name}: corrupt Parquet data ({_first_line(exc)})") from None
        finally:
            close()

    return InputFile(
        name,
        schema,
        handle.metadata.num_rows,
        rechunk(batches(), chunk_size, schema),
        close,
        tuple(handle.schema_arrow.names),
    )


def _open_csv(path: str | Path, name: str, chunk_size: int, columns: Sequence[str] | None) -> InputFile:
    from_stdin = str(path) == "-"
    stream: BinaryIO = sys.stdin.buffer if from_stdin else _open_binary(path)
    replay: _Replay | None = None
    try:
        header_bytes, header = _read_header(stream, name)
        _reject_duplicates(header, name)
        wanted = header if columns is None else [c for c in header if c in set(columns)]
        source: str | pa.NativeFile | _Replay
        if from_stdin or not header_bytes.endswith((b"\n", b"\r")):
            # stdin cannot be reopened (and its buffer already holds what follows the header);
            # a header-only file without a final newline needs one added. Arrow then calls
            # back into Python for the bytes.
            ending = b"" if header_bytes.endswith((b"\n", b"\r")) else b"\n"
            replay = source = _Replay(header_bytes.removeprefix(_BOM) + ending, stream)
        else:
            # A regular file is read by Arrow itself, natively, from the start (it skips a BOM):
            # no Python callbacks from Arrow's I/O threads, which must not outlive the interpreter.
            stream.close()
            source = _native_source(path)
        reader = pacsv.open_csv(
            source,
            # Single-threaded parsing is what lets pyarrow report the row of a malformed record.
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=True,
                include_columns=wanted,
            ),
        )
    except BaseException as exc:
        if replay is not None:
            replay.close()
        elif not from_stdin:
            stream.close()
        if isinstance(exc, pa.ArrowInvalid | UnicodeDecodeError):
            raise DataError(_csv_error(name, exc, 0)) from None
        raise
    schema = reader.schema

    def close() -> None:
        reader.close()  # stop Arrow's read-ahead before the file goes away
        if replay is not None:
            replay.close()

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            for batch in reader:
                rows += batch.num_rows
                yield batch
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise DataError(_csv_error(name, exc, rows)) from None
        except OSError as exc:  # an object store failing mid-read (local reads do not)
            raise DataError(f"{name}: read failed after data row {rows} ({storage.reason(exc)})") from None
        finally:
            close()

    return InputFile(name, schema, None, rechunk(batches(), chunk_size, schema), close, tuple(header))


def _open_binary(path: str | Path) -> BinaryIO:
    """The file or object for a Python-side read (the header scan)."""
    location = storage.as_location(path)
    if isinstance(location, Path):
        return open(location, "rb")
    # pyarrow's files have no readline(): buffer the (seekable, ranged-read) object in Python.
    return io.BufferedReader(storage.open_random(location), buffer_size=1 << 16)


def _native_source(path: str | Path) -> str | pa.NativeFile:
    """What Arrow's CSV reader reads natively: a local path, or a pyarrow stream over the object."""
    location = storage.as_location(path)
    return str(location) if isinstance(location, Path) else storage.open_stream(location)


def _csv_error(name: str, exc: BaseException, rows_before: int) -> str:
    """pyarrow's CSV error with the 1-based data row when it names a record number."""
    text = _first_line(exc)
    found = re.search(r"Row #(\d+): ", text)
    if found:
        # pyarrow counts the header as record 1.
        detail = text.replace(found.group(0), "").replace("CSV parse error: ", "")
        return f"{name}: row {int(found.group(1)) - 1}: malformed CSV record ({detail})"
    if rows_before == 0:
        return f"{name}: not a readable CSV file ({text})"
    return f"{name}: unreadable CSV after data row {rows_before} ({text})"


def _read_header(stream: BinaryIO, name: str) -> tuple[bytes, list[str]]:
    """Read the header record (which may span lines inside quotes); return its bytes and names."""
    consumed = b""
    while True:
        line = stream.readline()
        if not line:
            break
        consumed += line
        try:
            text = consumed.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DataError(f"{name}: the CSV header is not valid UTF-8") from None
        if _complete(text):
            break
    records = list(csv.reader(io.StringIO(consumed.decode("utf-8-sig"))))
    if not records or not any(field.strip() for field in records[0]):
        raise DataError(f"{name}: empty file (no header row)")
    header = records[0]
    if any(not h for h in header):
        position = header.index("") + 1
        raise DataError(f"{name}: header column {position} has no name")
    return consumed, header


def _complete(text: str) -> bool:
    """True when ``text`` holds no unterminated quoted field."""
    return text.count('"') % 2 == 0


def _reject_duplicates(names: Sequence[str], source: str) -> None:
    seen: set[str] = set()
    for column in names:
        if column in seen:
            raise DataError(f"{source}: duplicate column name {column!r}", column=column)
        seen.add(column)


class _Replay(io.RawIOBase):
    """A read-only stream that first replays ``prefix``, then continues with ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()
        super().close()

    def __del__(self) -> None:
        # This wrapper owns the file; IOBase.__del__ would only close the wrapper itself.
        self.close()


def rechunk(batches: Iterator[pa.RecordBatch], size: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Re-slice a stream of batches into batches of exactly ``size`` rows (the last may be short)."""
    pending: list[pa.RecordBatch] = []
    buffered = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        buffered += batch.num_rows
        if buffered < size:
            continue
        merged = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
        start = 0
        while buffered - start >= size:
            yield merged.slice(start, size)
            start += size
        rest = merged.slice(start)
        pending = [rest] if rest.num_rows else []
        buffered = rest.num_rows
    if buffered:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class AtomicOutput:
    """Writes batches to a temporary file beside ``path``, renamed over it on commit.

    ``path`` ``None`` means CSV to stdout (no atomicity possible: rows stream out as
    they are scored). Raises :class:`OutputError` naming the path for every I/O failure.
    """

    def __init__(self, path: Path | None, fmt: FileFormat, schema: pa.Schema) -> None:
        self.path = path
        self.format = fmt
        self.schema = schema
        self._temp: Path | None = None
        self._finished = False
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self._open()

    def _open(self) -> None:
        if self.path is None:
            # stdout cannot be taken back: nothing, not even the header, goes out before the
            # first scored batch (or the commit of an empty result).
            return
        try:
            folder = self.path.parent
            if not folder.is_dir():
                raise OutputError(f"{self.path}: output folder {str(folder)!r} does not exist")
            self._temp = _temp_beside(self.path)
            self._writer = self._make_writer(str(self._temp))  # a path: pyarrow writes natively
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.path}: cannot write ({_os_reason(exc)})") from None

    def _make_writer(self, sink: str | BinaryIO) -> pq.ParquetWriter | pacsv.CSVWriter:
        if self.format == "parquet":
            return pq.ParquetWriter(sink, self.schema, compression="snappy")
        return pacsv.CSVWriter(sink, self.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))

    def _stdout_writer(self) -> None:
        if self.path is None and self._writer is None and not self._finished:
            self._writer = self._make_writer(sys.stdout.buffer)

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch (schema must equal :attr:`schema`)."""
        self._stdout_writer()
        assert self._writer is not None, "write after commit/abort"
        try:
            self._writer.write_batch(batch)
        except BrokenPipeError:
            raise  # stdout's reader left: not an output error (modelrouter.cli.exits stops quietly)
        except OSError as exc:
            raise OutputError(f"{self.path or '<stdout>'}: write failed ({_os_reason(exc)})") from None

    def commit(self) -> None:
        """Finish the file and move it into place (atomic within one filesystem)."""
        try:
            self._stdout_writer()  # an empty result still gets its header
            self._finished = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self.path is None:
                sys.stdout.buffer.flush()
            elif self._temp is not None:
                fd = os.open(self._temp, os.O_RDONLY)
                try:
                    os.fsync(fd)  # the data must be on disk before the name points at it
                finally:
                    os.close(fd)
                os.replace(self._temp, self.path)
                LIVE_TEMP_FILES.discard(self._temp)
                self._temp = None
        except OSError as exc:
            self.abort()
            raise OutputError(
                f"{self.path or '<stdout>'}: cannot finish writing ({_os_reason(exc)})"
            ) from None

    def abort(self) -> None:
        """Drop the temporary file; idempotent, never raises."""
        self._finished = True
        writer, self._writer = self._writer, None
        temp, self._temp = self._temp, None
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        if temp is not None:
            try:
                temp.unlink()
            except FileNotFoundError:
                pass
            LIVE_TEMP_FILES.discard(temp)


def open_output(path: str | None, fmt: FileFormat, schema: pa.Schema) -> storage.Output:
    """The atomic writer for ``path``: a local file (``None``: stdout) or an object-store URI."""
    location = None if path is None else storage.as_location(path)
    if isinstance(location, storage.Uri):
        return storage.RemoteOutput(location, fmt, schema)
    return AtomicOutput(location, fmt, schema)


#: Temporary files not yet committed or removed: the signal watchdog (modelrouter.cli.exits) removes them
#: when the main thread is stuck in native code and cannot clean up itself.
LIVE_TEMP_FILES: set[Path] = set()


def _temp_beside(path: Path) -> Path:
    """An empty hidden temporary file in ``path``'s folder, with the usual permissions."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600; the finished file should get what the umask gives new files.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    LIVE_TEMP_FILES.add(Path(temp))
    return Path(temp)


def write_text_atomically(path: storage.Location, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename; :class:`OutputError` on failure.

    An object-store URI is written in one PUT (it appears whole or not at all).
    """
    if isinstance(path, storage.Uri):
        storage.write_bytes(path, text.encode("utf-8"))
        return
    temp: Path | None = None
    try:
        if not path.parent.is_dir():
            raise OutputError(f"{path}: output folder {str(path.parent)!r} does not exist")
        temp = _temp_beside(path)
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
        LIVE_TEMP_FILES.discard(temp)
    except OSError as exc:
        if temp is not None:
            temp.unlink(missing_ok=True)
            LIVE_TEMP_FILES.discard(temp)
        raise OutputError(f"{path}: cannot write ({_os_reason(exc)})") from None


def _read_umask() -> int:
    # Reading the umask means setting it: done once, when this module is first imported,
    # never from the threads that write files concurrently (Dask tasks do).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return exc.strerror or str(exc)
