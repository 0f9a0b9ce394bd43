"""Streaming readers (CSV, Parquet) and atomic writers, all on pyarrow.

Readers never load the whole file: Parquet is read row group by row group with
``pre_buffer=False`` (which keeps memory flat, FIELD-NOTES), CSV through pyarrow's streaming
reader with every column pinned to text, so no column can change type between blocks; the
model backend casts feature columns to its input types with errors that point at the row.
Both re-chunk to exactly ``chunk_size`` rows.

The writers live in :mod:`modelrouter.cli.batch.outputs` (re-exported here): a hidden
temporary file renamed over the destination at the run's commit, or a stream for stdout,
devices and FIFOs.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from modelrouter.cli.batch.outputs import LIVE_TEMP_FILES, AtomicOutput, write_text_atomically
from modelrouter.cli.batch.paths import is_stream_source
from modelrouter.errors import DataError, OutputError

__all__ = [
    "LIVE_TEMP_FILES",
    "AtomicOutput",
    "FileFormat",
    "InputFile",
    "detect_format",
    "open_input",
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
    if is_stream_source(path) or str(path).startswith(("/dev/", "/proc/self/fd/")):
        # A pipe or device (/dev/stdin, /dev/null, a FIFO) is a stream, like '-': CSV.
        return "csv"
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
    stream = str(path) != "-" and is_stream_source(path)
    if str(path) != "-" and not stream and not Path(path).is_file():
        what = "is a directory, not a file" if Path(path).is_dir() else "file not found"
        raise DataError(f"{name}: {what}")
    if fmt == "parquet":
        if stream:
            raise DataError(
                f"{name}: a pipe or device is read as a stream, and Parquet needs a seekable file; "
                "pipes and stdin take CSV"
            )
        if str(path) == "-":  # stdin redirected from a regular file (checked by the shell)
            return _open_parquet(os.fdopen(os.dup(0), "rb"), name, chunk_size, columns)
        return _open_parquet(Path(path), name, chunk_size, columns)
    return _open_csv(path, name, chunk_size, columns)


def _open_parquet(
    path: Path | BinaryIO, name: str, chunk_size: int, columns: Sequence[str] | None
) -> InputFile:
    try:
        handle = pq.ParquetFile(path, pre_buffer=False, memory_map=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{name}: not a readable Parquet file ({_first_line(exc)})") from None
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
            raise DataError(f"{name}: corrupt Parquet data ({_first_line(exc)})") from None
        finally:
            handle.close()

    return InputFile(
        name,
        schema,
        handle.metadata.num_rows,
        rechunk(batches(), chunk_size, schema),
        handle.close,
        tuple(handle.schema_arrow.names),
    )


def _open_csv(path: str | Path, name: str, chunk_size: int, columns: Sequence[str] | None) -> InputFile:
    from_stdin = str(path) == "-"
    # A FIFO or device cannot be reopened either: it is read through Python like stdin.
    once = from_stdin or is_stream_source(path)
    stream: BinaryIO = sys.stdin.buffer if from_stdin else open(path, "rb")  # noqa: SIM115
    replay: _Replay | None = None
    try:
        header_bytes, header = _read_header(stream, name)
        _reject_duplicates(header, name)
        wanted = header if columns is None else [c for c in header if c in set(columns)]
        source: str | _Replay
        if once or not header_bytes.endswith((b"\n", b"\r")):
            # stdin cannot be reopened (and its buffer already holds what follows the header);
            # a header-only file without a final newline needs one added. Arrow then calls
            # back into Python for the bytes.
            ending = b"" if header_bytes.endswith((b"\n", b"\r")) else b"\n"
            replay = source = _Replay(header_bytes.removeprefix(_BOM) + ending, stream)
        else:
            # A regular file is read by Arrow itself, natively, from the start (it skips a BOM):
            # no Python callbacks from Arrow's I/O threads, which must not outlive the interpreter.
            stream.close()
            source = str(path)
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
        finally:
            close()

    return InputFile(name, schema, None, rechunk(batches(), chunk_size, schema), close, tuple(header))


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
