"""What a reader hands the engine: an :class:`InputFile`, and the request it was opened for.

Every format's reader (:mod:`.csv_reader`, :mod:`.parquet_reader`, :mod:`.jsonl_reader`) is
a function ``open_…(source, request) -> InputFile`` registered with its format
(:data:`modelrouter.storage.formats.FORMATS`); :func:`modelrouter.batch.dataio.open_input`
finds the reader and re-chunks its batches (:func:`rechunk`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from modelrouter.batch.csv_header import DialectGuess
from modelrouter.errors import DataError
from modelrouter.storage import object_store as storage
from modelrouter.storage.location import DataLocation

__all__ = [
    "MAX_CHUNK_BYTES",
    "InputFile",
    "ReadRequest",
    "ReadSource",
    "chunk_rows",
    "first_line",
    "rechunk",
    "reject_duplicates",
]


@dataclass(frozen=True)
class ReadRequest:
    """How the engine asks for an input's rows (see :func:`~modelrouter.batch.dataio.open_input`):
    ``name`` is what messages call it; the reader honours what its format has of the rest."""

    name: str
    chunk_size: int
    columns: Sequence[str] | None = None
    keep_text: bool = False
    delimiter: str = ","
    keep: Sequence[str] = ()
    decimal: str = "."


@dataclass(frozen=True)
class ReadSource:
    """Where a reader gets its bytes: the input's location, whether it is a pipe or device
    read once front to back (``stream``), and for an object the version pinned for the run."""

    location: DataLocation
    stream: bool = False
    pinned: storage.Pinned | None = None

    @property
    def from_stdin(self) -> bool:
        return self.location.is_stream

    @property
    def bytes_from(self) -> str | Path | storage.Pinned:
        """What the byte helpers open (:mod:`.byte_sources`): the pinned object, the local
        path, or ``-`` (stdin, which they never open)."""
        if self.pinned is not None:
            return self.pinned
        return self.location.path if self.location.is_local else self.location.text


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
    #: CSV read with ``keep_text``: every cell is the text as read, and the caller turns the
    #: null spellings of feature columns into nulls (:func:`~modelrouter.batch.nulls.feature_nulls`).
    text_nulls: bool = False
    #: The index of a Parquet file written by pandas, exposed as columns (never features).
    index_columns: tuple[str, ...] = ()
    #: CSV: the delimiter the file was read with.
    delimiter: str | None = None
    #: CSV columns without a name in the header, named ``Unnamed: <i>`` (never features).
    unnamed_columns: tuple[str, ...] = ()
    #: CSV: how the header and first rows read better than with the options given (another
    #: delimiter, a decimal comma), with the exact flags to say so; ``None`` when they read well.
    dialect: DialectGuess | None = None
    #: CSV from a file or an object: its stored size (compressed, if it is), and how many of
    #: those bytes were read so far — what progress shows as % and ETA.
    size: int | None = None
    bytes_read: Callable[[], int] | None = None


def reject_duplicates(names: Sequence[str], source: str) -> None:
    seen: set[str] = set()
    for column in names:
        if column in seen:
            raise DataError(f"{source}: duplicate column name {column!r}", column=column)
        seen.add(column)


#: The most input (Arrow bytes) one chunk holds: ``--chunk-size`` rows of a wide file can be
#: hundreds of MiB (20,000 rows × 2,000 CSV columns: 436 MB of text, and a 3.4 GiB peak when
#: the whole file was one chunk). A chunk this large takes 16 MiB of text or ~4M float32
#: cells: 32,768 rows of up to ~100 numeric columns are never capped.
MAX_CHUNK_BYTES = 16 << 20


def chunk_rows(size: int, bytes_per_row: float, max_bytes: int = MAX_CHUNK_BYTES) -> int:
    """Rows per chunk: ``size``, fewer when that many rows would pass ``max_bytes``."""
    if bytes_per_row <= 0:
        return size
    return max(1, min(size, int(max_bytes // bytes_per_row)))


def rechunk(
    batches: Iterator[pa.RecordBatch], size: int, schema: pa.Schema, max_bytes: int = MAX_CHUNK_BYTES
) -> Iterator[pa.RecordBatch]:
    """Re-slice a stream of batches into batches of ``size`` rows (the last may be short),
    fewer rows per batch when ``size`` rows would hold more than ``max_bytes`` (measured on
    the first batch)."""
    pending: list[pa.RecordBatch] = []
    buffered = 0
    limit = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if not limit:
            # From the first rows: their width is the file's (its buffers' sizes are summed
            # once: that takes milliseconds per batch of a file with thousands of columns).
            limit = chunk_rows(size, batch.get_total_buffer_size() / batch.num_rows, max_bytes)
        pending.append(batch)
        buffered += batch.num_rows
        if buffered < limit:
            continue
        merged = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
        start = 0
        while buffered - start >= limit:
            yield merged.slice(start, limit)
            start += limit
        rest = merged.slice(start)
        pending = [rest] if rest.num_rows else []
        buffered = rest.num_rows
    if buffered:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
