"""Streaming readers (CSV, Parquet) and atomic writers, all on pyarrow.

Readers never load the whole file: Parquet is read row group by row group with
``pre_buffer=False`` (which keeps memory flat, docs/performance.md) and page by page through a
small read buffer, CSV through pyarrow's streaming
reader with every column pinned to text, so no column can change type between blocks; the
model backend casts feature columns to its input types with errors that point at the row.
Both re-chunk to exactly ``chunk_size`` rows.

The writers live in :mod:`modelrouter.storage.commit` (re-exported here): a hidden
temporary file renamed over the destination at the run's commit, or a stream for stdout,
devices and FIFOs.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeAlias, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from modelrouter.batch.csv_header import (
    MAX_ROW_BYTES,
    DialectGuess,
    HeaderRecord,
    guess_dialect,
    mib,
    read_header,
    unnamed,
)
from modelrouter.errors import DataError, InvalidOptionError, OutputError
from modelrouter.remote import ObjectVersion
from modelrouter.remote import read_window as remote_read_window
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import AtomicOutput, write_text_atomically
from modelrouter.storage.formats import (
    DATA_SUFFIXES,
    FORMATS,
    SNIFF_BYTES,
    Compression,
    FileFormat,
    sniff_compression,
    split_name,
)
from modelrouter.storage.run_paths import is_stream_source
from modelrouter.storage.tables import DatabaseUrl

__all__ = [
    "MAX_ROW_BYTES",
    "AtomicOutput",
    "FileFormat",
    "InputFile",
    "UnknownOutputFormat",
    "detect_format",
    "open_input",
    "open_table",
    "rechunk",
    "write_text_atomically",
]


_SUFFIX_FORMATS: dict[str, FileFormat] = dict(DATA_SUFFIXES)
#: Arrow's CSV reader reads up to 32 blocks ahead of the rows asked for (its background
#: reader's queue), whatever the consumer does: 4 MiB blocks held 136 MiB of a 225 MB file
#: at once (peak 485 MiB); 1 MiB blocks peak 133 MiB lower at the same speed.
_CSV_BLOCK_BYTES = 1 << 20
#: The most a stream read (stdin, a FIFO) hands Arrow at once, unless a row is longer.
_STREAM_READ_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"


def detect_format(
    path: str | Path, override: FileFormat | None, *, role: str, option: str = "--output"
) -> FileFormat:
    """The format named by ``override``, else by the suffix.

    Unknown: :class:`DataError` for an input (what the file holds is the problem), and for an
    output a usage error (:class:`InvalidOptionError` of ``option``, exit 2) naming the
    supported suffixes — nothing is read or written first."""
    if override is not None:
        return override
    if str(path) == "-":
        return "csv"
    _, data, compression = split_name(path)
    suffix = (data + compression).lower()
    if data.lower() in _SUFFIX_FORMATS:
        if compression and not FORMATS[_SUFFIX_FORMATS[data.lower()]].text:
            message = f"{path}: a compressed Parquet file ({suffix!r}) is not read or written; "
            message += "Parquet compresses its own pages (see --compression)"
            raise OutputError(message) if role == "output" else DataError(message)
        return _SUFFIX_FORMATS[data.lower()]
    if is_stream_source(path) or str(path).startswith(("/dev/", "/proc/self/fd/")):
        # A pipe or device (/dev/stdin, /dev/null, a FIFO) is a stream, like '-': CSV.
        return "csv"
    plain = sorted(DATA_SUFFIXES)
    text = " and ".join(
        sorted({FORMATS[DATA_SUFFIXES[s]].name for s in plain if FORMATS[DATA_SUFFIXES[s]].text})
    )
    known = f"{', '.join(plain)}; {text} also compressed: .gz, .bz2, .zst"
    message = f"{path}: unknown {role} format {suffix or '(no suffix)'!r} (known: {known})"
    if role == "output":
        raise UnknownOutputFormat(
            option, message + ("; pass --output-format" if option == "--output" else "")
        )
    raise DataError(message + "; pass --input-format")


class UnknownOutputFormat(InvalidOptionError):
    """An output named with a suffix no writer has (``out.xlsx``): the command line's mistake,
    a usage error (exit 2) raised before anything is read; ``option`` names the option."""


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


def open_input(
    path: str | Path,
    fmt: FileFormat,
    *,
    chunk_size: int,
    columns: Sequence[str] | None = None,
    keep_text: bool = False,
    delimiter: str = ",",
    keep: Sequence[str] = (),
    decimal: str = ".",
) -> InputFile:
    """Open ``path`` (``-``: CSV on stdin) for streaming in chunks of ``chunk_size`` rows.

    ``columns`` restricts reading to those columns (all when ``None``); ``keep`` names the
    columns asked for by name (a pandas ``RangeIndex`` becomes a column only then). ``keep_text``: CSV
    cells stay exactly the text read (``NA``, ``null``, empty…), see :attr:`InputFile.text_nulls`;
    otherwise Arrow's null spellings are read as nulls. CSV fields are separated by
    ``delimiter``, numbers written with ``decimal`` (only compared with the first rows here,
    see :attr:`InputFile.dialect`); gzip, bzip2 and Zstandard streams are decompressed (recognised by their
    first bytes, see :mod:`~modelrouter.storage.formats`). Rows longer than
    :data:`MAX_ROW_BYTES` are refused. Raises :class:`DataError` for a missing, empty,
    corrupt or undecodable file.
    """
    if not storage.is_uri(str(path)):
        return _open_input(path, fmt, chunk_size, columns, keep_text, delimiter, keep, decimal)
    try:
        return _open_input(path, fmt, chunk_size, columns, keep_text, delimiter, keep, decimal)
    except OSError as exc:
        # The store failing while the file is opened (the format sniff, the header scan, the
        # reader's first block), after the client's retries: a read error of this input. Reads
        # after the open are mapped where they happen (InputFile.batches).
        raise DataError(f"{path}: read failed ({storage.reason(exc)})") from None


def _open_input(
    path: str | Path,
    fmt: FileFormat,
    chunk_size: int,
    columns: Sequence[str] | None,
    keep_text: bool,
    delimiter: str,
    keep: Sequence[str],
    decimal: str = ".",
) -> InputFile:
    name = "<stdin>" if str(path) == "-" else str(path)
    remote = storage.is_uri(str(path))
    stream = str(path) != "-" and not remote and is_stream_source(path)
    if str(path) != "-" and not stream:
        # One metadata request on an object store; a missing bucket is named as such.
        kind = storage.info(storage.as_location(path))
        if kind != "file":
            what = "is a directory, not a file" if kind == "directory" else "file not found"
            raise DataError(f"{name}: {what}")
    # An object is read as the version seen now, by every request of this run (the sniff, the
    # header, each block or row group): a replaced object fails, never mixes two versions.
    pinned = storage.pin(storage.Uri.parse(str(path))) if remote else None
    if fmt == "parquet":
        if stream:
            raise DataError(
                f"{name}: a pipe or device is read as a stream, and Parquet needs a seekable file; "
                "pipes and stdin take CSV"
            )
        if str(path) == "-":  # stdin redirected from a regular file (checked by the shell)
            return _open_parquet(os.fdopen(os.dup(0), "rb"), name, chunk_size, columns, keep)
        if pinned is not None:
            # An object is read by ranged requests, row group by row group: no download first.
            return _open_parquet(storage.open_random(pinned), name, chunk_size, columns, keep)
        return _open_parquet(Path(path), name, chunk_size, columns, keep)
    if fmt == "jsonl":
        return _open_jsonl(pinned or path, name, chunk_size, columns)
    return _open_csv(pinned or path, name, chunk_size, columns, keep_text, delimiter, decimal)


def open_table(
    url: DatabaseUrl,
    *,
    table: str | None,
    query: str | None,
    chunk_size: int,
    columns: Sequence[str] | None = None,
) -> InputFile:
    """A database table (only ``columns`` of it, when given) or the rows of ``query``,
    streamed in chunks of ``chunk_size`` rows like a file (docs/specification.md §12).

    Raises :class:`DataError` when the database cannot be reached, refuses the login, has no
    such table or refuses the query (its own first line of error).
    """
    from modelrouter.storage.tables import open_table_reader

    source = open_table_reader(
        url,
        table=table,
        query=query,
        batch_rows=chunk_size,
        columns=None if columns is None else list(columns),
    )
    return InputFile(
        source.name,
        source.schema,
        None,
        rechunk(source.batches, chunk_size, source.schema),
        source.close,
        source.all_columns,
    )


#: Parquet column chunks are read through a buffer of this many bytes, page by page. Without
#: one (pyarrow's default, 0) every column chunk of a row group is read whole before the first
#: page is decoded: a file written with pyarrow's default row groups (1M rows) held 180 MiB of
#: column chunks to stream 65,536-row batches; with 64 KiB it holds 60 MiB, at the same speed.
_PARQUET_BUFFER = 1 << 16
#: An object in a store is read by ranged requests (one per buffer fill): larger reads there.
_PARQUET_REMOTE_BUFFER = 1 << 20


def _open_parquet(
    path: Path | BinaryIO | pa.NativeFile,
    name: str,
    chunk_size: int,
    columns: Sequence[str] | None,
    keep: Sequence[str],
) -> InputFile:
    try:
        buffer = _PARQUET_REMOTE_BUFFER if isinstance(path, pa.NativeFile) else _PARQUET_BUFFER
        handle = pq.ParquetFile(path, pre_buffer=False, memory_map=False, buffer_size=buffer)
    except (pa.ArrowInvalid, OSError) as exc:
        if not isinstance(path, Path):
            path.close()
        if isinstance(path, pa.NativeFile) and not isinstance(exc, pa.ArrowInvalid):
            raise  # the store failed (open_input says so), not the file's format
        raise DataError(f"{name}: not a readable Parquet file ({_first_line(exc)})") from None
    remote = None if isinstance(path, Path) else path

    def close() -> None:
        handle.close()
        if remote is not None:  # ParquetFile closes only files it opened itself
            remote.close()

    physical = handle.schema_arrow
    index = _PandasIndex.of(physical, keep)
    exposed = [index.renames.get(c, c) for c in physical.names] + [r.name for r in index.ranges]
    _reject_duplicates(exposed, name)
    wanted = list(exposed) if columns is None else [c for c in exposed if c in set(columns)]
    ranges = {r.name: r for r in index.ranges}
    physical_of = {v: k for k, v in index.renames.items()}
    read = [physical_of.get(c, c) for c in wanted if c not in ranges]
    schema = pa.schema(
        [
            pa.field(c, pa.int64()) if c in ranges else physical.field(physical_of.get(c, c)).with_name(c)
            for c in wanted
        ]
    )

    # Decoded no larger than a chunk may be (MAX_CHUNK_BYTES), from the row groups' own
    # uncompressed sizes: a wide file is never decoded --chunk-size rows at a time.
    metadata = handle.metadata
    groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
    rows = sum(g.num_rows for g in groups)
    share = len(read) / max(1, len(physical.names))
    batch_rows = chunk_rows(chunk_size, sum(g.total_byte_size for g in groups) * share / rows if rows else 0)

    def batches() -> Iterator[pa.RecordBatch]:
        offset = 0
        try:
            for group in range(handle.num_row_groups):
                for batch in handle.iter_batches(
                    batch_size=batch_rows, row_groups=[group], columns=read, use_threads=True
                ):
                    yield index.expose(batch, schema, ranges, offset) if index else batch
                    offset += batch.num_rows
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
        tuple(exposed),
        index_columns=tuple(c for c in exposed if c in index.exposed),
    )


@dataclass(frozen=True)
class _RangeIndex:
    name: str
    start: int
    step: int


@dataclass(frozen=True)
class _PandasIndex:
    """The index pandas stored with a frame (``df.to_parquet()``), as columns ``-k`` can keep.

    pandas keeps a named index as a column of its name (read as it is), an unnamed one as
    ``__index_level_<i>__`` (exposed as ``index``, or ``level_<i>`` for a multi-index: the
    names ``DataFrame.reset_index`` gives them) and a ``RangeIndex`` only as start/stop/step
    in its metadata (a computed int64 column, when asked for by name: nearly every frame has a
    default one, and listing it everywhere would be noise). Index columns describe rows, they
    are not data: a model that knows no feature names never gets them as features.
    """

    renames: dict[str, str]
    ranges: tuple[_RangeIndex, ...]
    exposed: frozenset[str]

    @classmethod
    def of(cls, schema: pa.Schema, keep: Sequence[str] = ()) -> _PandasIndex:
        try:
            entries = (schema.pandas_metadata or {}).get("index_columns", [])
        except (ValueError, TypeError):  # metadata that is not pandas' JSON: no index
            entries = []
        names = set(schema.names)
        renames: dict[str, str] = {}
        ranges: list[_RangeIndex] = []
        exposed: set[str] = set()
        single = len(entries) == 1
        for level, entry in enumerate(entries if isinstance(entries, list) else []):
            default = "index" if single else f"level_{level}"
            if isinstance(entry, str) and entry in names:
                shown = entry
                if re.fullmatch(r"__index_level_\d+__", entry) and default not in names:
                    shown = renames[entry] = default
                exposed.add(shown)
            elif isinstance(entry, dict) and entry.get("kind") == "range":
                shown = entry.get("name") or default
                if isinstance(shown, str) and shown in keep and shown not in names and shown not in exposed:
                    try:
                        ranges.append(_RangeIndex(shown, int(entry["start"]), int(entry["step"])))
                    except (KeyError, TypeError, ValueError):
                        continue
                    exposed.add(shown)
        return cls(renames, tuple(ranges), frozenset(exposed))

    def __bool__(self) -> bool:
        return bool(self.renames or self.ranges)

    def expose(
        self, batch: pa.RecordBatch, schema: pa.Schema, ranges: dict[str, _RangeIndex], offset: int
    ) -> pa.RecordBatch:
        """``batch`` (physical columns) with the index columns renamed or computed."""
        by_name = {self.renames.get(c, c): batch.column(i) for i, c in enumerate(batch.schema.names)}
        columns = []
        for field in schema:
            found = ranges.get(field.name)
            if found is not None:
                rows = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
                columns.append(pa.array(found.start + found.step * rows, pa.int64()))
            else:
                columns.append(by_name[field.name])
        return pa.RecordBatch.from_arrays(columns, schema=schema)


class _Stream(Protocol):
    """A readable byte stream: a Python binary file or a pyarrow input stream."""

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


def _read_head(stream: BinaryIO, size: int) -> bytes:
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
_Source: TypeAlias = str | Path | storage.Pinned


def _open_csv(
    path: _Source,
    name: str,
    chunk_size: int,
    columns: Sequence[str] | None,
    keep_text: bool,
    delimiter: str,
    decimal: str = ".",
) -> InputFile:
    from_stdin = str(path) == "-"
    # A FIFO or device cannot be reopened either: it is read through Python like stdin.
    once = from_stdin or (isinstance(path, (str, Path)) and is_stream_source(path))
    raw: BinaryIO = sys.stdin.buffer if from_stdin else _open_binary(path)
    stream: _Stream | None = None
    try:
        head = _read_head(raw, SNIFF_BYTES)
        compression = sniff_compression(head)
        if once:
            # What the sniff consumed is replayed in front of the rest.
            stream = _decompressed(io.BufferedReader(_Replay(head, raw)), compression)
        elif compression is None:
            raw.seek(0)
            stream = raw
        else:
            raw.close()
            stream = _python_side(path, compression)
        header = _checked_read(name, compression, lambda: read_header(stream, name, delimiter=delimiter))
    except BaseException:
        if stream is not None and not once:
            stream.close()
        if not from_stdin:
            raw.close()
        raise
    if not once:
        stream.close()
    # The rows read past the header (up to 64 KiB) show a delimiter or decimal mark other
    # than the given ones: said with the exact flags wherever the file fails to read.
    dialect = guess_dialect(
        header.raw.removeprefix(_BOM).decode("utf-8", "replace").strip("\r\n"),
        header.rest.decode("utf-8", "replace"),
        delimiter,
        decimal,
    )
    # A column without a name (Excel's trailing empty columns) gets pandas' name for it; it
    # is not data: never a positional feature (InputFile.unnamed_columns).
    names = [c or unnamed(i) for i, c in enumerate(header.names)]
    nameless = tuple(n for n, c in zip(names, header.names, strict=True) if not c)
    _reject_duplicates(names, name)
    wanted = names if columns is None else [c for c in names if c in set(columns)]
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header.names},
        # Kept columns and rejects carry the text as read (docs/specification.md §2); the caller turns the
        # null spellings of feature columns into nulls (InputFile.text_nulls).
        strings_can_be_null=not keep_text,
        # Arrow knows the nameless columns as "" (all of them): they are read all, then
        # picked by position and named.
        include_columns=[] if nameless else wanted,
    )
    # Arrow needs a whole row inside one block: start with room for twice the header. A wide
    # file gets larger blocks (up to 4 MiB): each block costs Arrow time per column (17 ms
    # per 1 MiB block of a 2,000-column file), and holds only a few dozen of its rows.
    first_block = min(
        MAX_ROW_BYTES, max(_CSV_BLOCK_BYTES, min(4 << 20, 128 * len(header.raw)), 2 * len(header.raw))
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    opener = _CsvOpener(path, name, header, convert, stream if once else None, compression, parse)
    opener.dialect = dialect
    reader = opener.open(first_block, rows_before=0)
    schema = reader.schema
    positions = [names.index(c) for c in wanted]
    if nameless:
        schema = pa.schema([pa.field(c, pa.string()) for c in wanted])

    def close() -> None:
        opener.close()

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in opener.batches(reader):
                if not nameless:
                    yield batch
                else:
                    yield pa.RecordBatch.from_arrays([batch.column(i) for i in positions], schema=schema)
        finally:
            close()

    return InputFile(
        name,
        schema,
        None,
        rechunk(batches(), chunk_size, schema),
        close,
        tuple(names),
        text_nulls=keep_text,
        delimiter=delimiter,
        unnamed_columns=nameless,
        dialect=dialect,
        size=None if once else _stored_size(path),
        bytes_read=None if once else opener.stored_bytes,
    )


#: JSON Lines: the rows whose values decide the column types (a later value of another type
#: is a data error naming it), and the largest line (Arrow's block).
_JSONL_SAMPLE_ROWS = 1000
_JSONL_BLOCK_BYTES = 4 << 20


def _open_jsonl(path: _Source, name: str, chunk_size: int, columns: Sequence[str] | None) -> InputFile:
    """JSON Lines (one object per line), streamed by Arrow's JSON reader.

    The columns and their types come from the first :data:`_JSONL_SAMPLE_ROWS` lines, read
    here and replayed (so stdin works): numbers that are all integers are ``int64``, other
    numbers ``float64``, booleans ``bool``, text ``string``; a column that mixes kinds, or
    holds arrays or objects, is refused naming it. Keys that first appear later are ignored.
    """
    import pyarrow.json as pajson

    from_stdin = str(path) == "-"
    location = None if from_stdin else _location(path)
    raw: BinaryIO
    if location is None:
        raw = sys.stdin.buffer
    elif isinstance(location, Path):
        raw = open(location, "rb")  # noqa: SIM115  (closed by the reader's close())
    else:  # read front to back: a window per GET
        raw = cast(BinaryIO, storage.open_binary(location, sequential=True))
    head = _read_head(raw, SNIFF_BYTES)
    compression = sniff_compression(head)
    stream = _decompressed(io.BufferedReader(_Replay(head, raw)), compression)
    try:
        sample, pending = _jsonl_sample(stream, name, compression)
        kinds = _jsonl_kinds(sample, name)
    except BaseException:
        stream.close()
        raise
    arrow_types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "null": pa.string(),
    }
    wanted = list(kinds) if columns is None else [c for c in kinds if c in set(columns)]
    schema = pa.schema([pa.field(c, arrow_types[kinds[c]]) for c in wanted])
    replay = _Replay(b"\n".join(sample) + b"\n" + pending, stream)
    try:
        reader = pajson.open_json(
            pa.PythonFile(io.BufferedReader(replay, buffer_size=1 << 20), mode="r"),
            read_options=pajson.ReadOptions(block_size=_JSONL_BLOCK_BYTES, use_threads=False),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        replay.close()
        raise DataError(f"{name}: not readable JSON Lines ({_first_line(exc)})") from None

    def close() -> None:
        reader.close()
        replay.close()

    def batches() -> Iterator[pa.RecordBatch]:
        delivered = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (pa.ArrowInvalid, OSError) as exc:
                    raise DataError(
                        f"{name}: unreadable JSON Lines after data row {delivered} ({_first_line(exc)}); "
                        f"the column types come from the first {_JSONL_SAMPLE_ROWS:,} rows"
                    ) from None
                delivered += batch.num_rows
                yield batch.select(wanted) if batch.schema.names != wanted else batch
        finally:
            close()

    return InputFile(name, schema, None, rechunk(batches(), chunk_size, schema), close, tuple(kinds))


def _jsonl_sample(stream: _Stream, name: str, compression: Compression | None) -> tuple[list[bytes], bytes]:
    """The first complete lines of ``stream`` (up to :data:`_JSONL_SAMPLE_ROWS`), and the
    bytes read past them."""
    sample: list[bytes] = []
    pending = b""
    while len(sample) < _JSONL_SAMPLE_ROWS:
        block = _checked_read(name, compression, lambda: stream.read(1 << 16))
        if not block:
            if pending.strip():
                sample.append(pending)
            return sample, b""
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        sample.extend(lines)
        if len(pending) > _JSONL_BLOCK_BYTES:
            raise DataError(f"{name}: a JSON line is longer than {mib(_JSONL_BLOCK_BYTES)}")
    return sample, pending


def _jsonl_kinds(sample: Sequence[bytes], name: str) -> dict[str, str]:
    """Each key of the sampled objects and the kind of its values (``int`` and ``float``
    make ``float``; ``null`` takes any other kind)."""
    import json

    kinds: dict[str, str] = {}
    for row, line in enumerate(sample, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{name}: row {row}: not a JSON object ({exc})") from None
        if not isinstance(record, dict):
            raise DataError(f"{name}: row {row}: not a JSON object (a JSON Lines row is {{...}})")
        for key, value in record.items():
            kind = _json_kind(value)
            if kind in ("array", "object"):
                raise DataError(
                    f"{name}: row {row}: column {key!r} holds a JSON {kind}; values must be scalars"
                )
            seen = kinds.get(key)
            if seen is None or seen == "null" or kind in ("null", seen):
                kinds[key] = kind if seen in (None, "null") else seen
            elif {seen, kind} == {"int", "float"}:
                kinds[key] = "float"
            else:
                raise DataError(
                    f"{name}: row {row}: column {key!r} mixes {seen} and {kind} values", column=key
                )
    if not kinds:
        raise DataError(f"{name}: empty file (no JSON object)")
    return kinds


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "array" if isinstance(value, list) else "object"


def _stored_size(path: _Source) -> int | None:
    """The size of the file or object as stored, when known without a request."""
    location = _location(path)
    if isinstance(location, ObjectVersion):
        return location.size
    if isinstance(location, Path):
        try:
            return location.stat().st_size
        except OSError:
            return None
    return None


def _decompressed(stream: BinaryIO, compression: Compression | None) -> _Stream:
    if compression is None:
        return stream
    decompressed: _Stream = pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), compression)
    return decompressed


_HeaderT = TypeVar("_HeaderT")


def _checked_read(name: str, compression: Compression | None, read: Callable[[], _HeaderT]) -> _HeaderT:
    """``read()``, with a decompression failure as the :class:`DataError` it is."""
    try:
        return read()
    except (OSError, pa.ArrowInvalid) as exc:
        if compression is None:
            raise
        raise DataError(f"{name}: corrupt {compression} data ({_first_line(exc)})") from None


class _CsvOpener:
    """Opens Arrow's streaming CSV reader, again with larger blocks when a row does not fit.

    Arrow parses a block at a time and refuses a row longer than its block ("straddling
    object"). Rows are rarely long, so blocks start small (memory stays flat) and grow ×4 up
    to :data:`MAX_ROW_BYTES` on that error: a file is reopened (and decompressed again) and
    the rows already delivered are skipped; stdin cannot be reread, so it is read with the
    largest block from the start when it cannot be replayed (see :meth:`open`). Beyond the
    limit: :class:`DataError`.
    """

    def __init__(
        self,
        path: _Source,
        name: str,
        header: HeaderRecord,
        convert: pacsv.ConvertOptions,
        once: _Stream | None,
        compression: Compression | None = None,
        parse: pacsv.ParseOptions | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self.header = header
        self.convert = convert
        #: stdin, a FIFO or a device: read once, through Python, never reopened.
        self.once = once
        self.compression = compression
        self.parse = parse or pacsv.ParseOptions(newlines_in_values=True)
        self.block = 0
        self.reader: pacsv.CSVStreamingReader | None = None
        self.replay: _Replay | None = None
        #: What Arrow reads natively: a local path, or a stream (an object, a compressed file).
        self.native: str | pa.NativeFile | None = None
        #: What the first rows say about the delimiter and decimal mark (for the errors).
        self.dialect: DialectGuess | None = None
        #: Progress: the decompressed bytes Arrow has parsed (one block per batch), and the
        #: stored bytes per decompressed byte (1 for a plain file), when they can be told.
        self.parsed = 0
        self.ratio: Callable[[], float] | None = None

    def open(self, block: int, rows_before: int) -> pacsv.CSVStreamingReader:
        if self.once is not None:
            # stdin (or a FIFO) cannot be reopened: its rows get the largest block at once;
            # _Replay hands Arrow 1 MiB at a time (more only to finish a row), so Arrow's
            # 32-block read-ahead holds ~32 MiB, not 32 of these blocks.
            block = MAX_ROW_BYTES
        while True:
            self.close()
            self.block = block
            source: str | pa.NativeFile | _Replay
            raw = self.header.raw
            if self.once is not None or not raw.endswith((b"\n", b"\r")):
                # stdin/FIFO: replay what the header scan consumed; a header-only file without
                # a final line break needs one added. Arrow then calls back into Python.
                ending = b"" if raw.endswith((b"\n", b"\r")) else b"\n"
                if self.once is not None:
                    stream, rest = self.once, self.header.rest
                else:
                    stream, rest = self._reopen(), b""
                    _skip(stream, len(raw))
                self.replay = source = _Replay(raw.removeprefix(_BOM) + ending + rest, stream)
            else:
                # A regular file is read by Arrow itself, natively, from the start (it skips a
                # BOM): no Python callbacks from Arrow's I/O threads, which must not outlive the
                # interpreter. Compressed files are decompressed natively too, and an object
                # is reopened through its filesystem the same way.
                self.native, self.ratio = _counted_source(self.path, self.compression)
                source = self.native
            self.parsed = 0
            try:
                self.reader = pacsv.open_csv(
                    source,
                    # Single-threaded parsing lets pyarrow report the row of a malformed record.
                    read_options=pacsv.ReadOptions(block_size=block, use_threads=False),
                    parse_options=self.parse,
                    convert_options=self.convert,
                )
                return self.reader
            except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
                self.close()
                if _straddles(exc) and self._grow(rows_before):
                    block = self.block
                    continue
                raise DataError(self._error(exc, rows_before)) from None
            except BaseException:
                self.close()
                raise

    def stored_bytes(self) -> int:
        """The file's stored bytes the rows delivered so far came from (an estimate within
        one block; Arrow reads far ahead of the rows it delivers, so its offset would not do)."""
        ratio = self.ratio() if self.ratio is not None else 0.0
        return int(self.parsed * ratio)

    def _reopen(self) -> _Stream:
        """The file from its start, decompressed, for a Python-side read."""
        return _python_side(self.path, self.compression)

    def _grow(self, rows_before: int) -> bool:
        if self.once is not None or self.block >= MAX_ROW_BYTES:
            return False
        self.block = min(MAX_ROW_BYTES, self.block * 4)
        return True

    def _error(self, exc: BaseException, rows_before: int) -> str:
        if _straddles(exc):
            where = f"after data row {rows_before}" if rows_before else "in the first data rows"
            return (
                f"{self.name}: a row {where} is longer than {mib(MAX_ROW_BYTES)}, the CSV row "
                "size limit (or a quoted field never closes)"
            )
        if isinstance(exc, OSError) and self.compression is not None:
            where = f"after data row {rows_before}" if rows_before else "in the first data rows"
            return f"{self.name}: corrupt {self.compression} data {where} ({_first_line(exc)})"
        message = _csv_error(self.name, exc, rows_before, self.header.names)
        if self.dialect is not None and self.dialect.header_is_one_column and "malformed" in message:
            message += f"; {self.dialect.describe()}"
        return message

    def batches(self, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
        delivered = 0
        skip = 0
        while True:
            try:
                for parsed in reader:
                    self.parsed += self.block  # Arrow parses one block per batch
                    batch = parsed
                    if skip:  # a reopened file: these rows were delivered before
                        dropped = min(skip, batch.num_rows)
                        batch = batch.slice(dropped)
                        skip -= dropped
                    if batch.num_rows:
                        delivered += batch.num_rows
                        yield batch
                return
            except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
                if isinstance(exc, OSError) and storage.is_uri(str(self.path)):
                    # An object store failing mid-read, after the clients' retries.
                    raise DataError(
                        f"{self.name}: read failed after data row {delivered} ({storage.reason(exc)})"
                    ) from None
                if isinstance(exc, OSError) and self.compression is None:
                    raise  # a read error of a plain file: not the data's fault
                if not (_straddles(exc) and self._grow(delivered)):
                    raise DataError(self._error(exc, delivered)) from None
            reader = self.open(self.block, delivered)
            skip = delivered

    def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.close()  # stop Arrow's read-ahead before the file goes away
        replay, self.replay = self.replay, None
        if replay is not None:
            replay.close()
        native, self.native = self.native, None
        if isinstance(native, pa.NativeFile):
            native.close()  # Arrow's reader does not own a file it was given


def _location(path: _Source) -> Path | storage.Pinned:
    return path if isinstance(path, (Path, storage.Uri, ObjectVersion)) else storage.as_location(path)


def _open_binary(path: _Source) -> BinaryIO:
    """The file or object for a Python-side read (the sniff and the header scan)."""
    location = _location(path)
    if isinstance(location, Path):
        return open(location, "rb")
    return cast(BinaryIO, storage.open_binary(location))


def _native_source(path: _Source, compression: Compression | None) -> str | pa.NativeFile:
    """What Arrow's CSV reader reads natively: a plain local file by its path (Arrow then
    skips a BOM itself), a decompressing stream, or a pyarrow stream over the object."""
    return _counted_source(path, compression)[0]


def _counted_source(
    path: _Source, compression: Compression | None
) -> tuple[pa.NativeFile, Callable[[], float] | None]:
    """:func:`_native_source` as a stream (Arrow skips a BOM in a stream too), and the
    stored bytes per decompressed byte, for the progress of a CSV read in stored bytes:
    1 for a plain file; for a compressed local file, the ratio of its first MiB."""
    location = _location(path)
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
    ratio = _compression_ratio(location, compression)
    return stream, (lambda: ratio)


def _compression_ratio(path: Path, compression: Compression) -> float:
    """Stored bytes per decompressed byte over the first MiB of a compressed file (0 when
    it cannot be read: the run's own read reports why)."""
    try:
        with pa.OSFile(str(path)) as raw, pa.CompressedInputStream(raw, compression) as stream:
            data = stream.read(1 << 20)
            return raw.tell() / len(data) if data else 0.0
    except (OSError, pa.ArrowInvalid):
        return 0.0


def _python_side(path: _Source, compression: Compression | None) -> _Stream:
    """The file from its start, decompressed, for reads from Python (the header scan)."""
    if compression is None:
        return _open_binary(path)
    native = _native_source(path, compression)
    assert not isinstance(native, str)
    stream: _Stream = native
    return stream


def _skip(stream: _Stream, size: int) -> None:
    while size > 0:
        block = stream.read(min(size, 1 << 20))
        if not block:
            return
        size -= len(block)


def _straddles(exc: BaseException) -> bool:
    return "straddling object" in str(exc)


def _csv_error(name: str, exc: BaseException, rows_before: int, columns: Sequence[str] = ()) -> str:
    """pyarrow's CSV error with the 1-based data row and the column name where it names them."""
    text = _first_line(exc)
    found = re.search(r"Row #(\d+): ", text)
    # Arrow names a column by its 0-based position in the file: say its name.
    column = re.search(r"In CSV column #(\d+): ", text)
    where = ""
    if column:
        position = int(column.group(1))
        label = columns[position] if position < len(columns) else f"#{position + 1}"
        where = f"column {label or unnamed(position)!r}: "
    if "invalid UTF8" in text:
        # Not a malformed record: text in another encoding (an Excel export in cp1252…).
        detail = "the text is not UTF-8 (save or convert the file as UTF-8, e.g. iconv -f cp1252 -t utf-8)"
        row = f"row {int(found.group(1)) - 1}: " if found else ""
        return f"{name}: {row}{where}{detail}"
    if found:
        # pyarrow counts the header as record 1 (a reopened file is parsed from its start).
        detail = text.replace(found.group(0), "").replace("CSV parse error: ", "")
        return f"{name}: row {int(found.group(1)) - 1}: malformed CSV record ({detail})"
    if rows_before == 0:
        return f"{name}: not a readable CSV file ({text})"
    return f"{name}: unreadable CSV after data row {rows_before} ({text})"


def _reject_duplicates(names: Sequence[str], source: str) -> None:
    seen: set[str] = set()
    for column in names:
        if column in seen:
            raise DataError(f"{source}: duplicate column name {column!r}", column=column)
        seen.add(column)


class _Replay(io.RawIOBase):
    """A read-only stream that first replays ``prefix``, then continues with ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO | _Stream) -> None:
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
        trickles must not wait for a whole block), at most :data:`_STREAM_READ_BYTES` (a
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
        data = bytearray(read(min(len(buffer), _STREAM_READ_BYTES)))
        while data and not self._ends_a_row(data) and len(data) < len(buffer):
            more = read(min(len(buffer) - len(data), _STREAM_READ_BYTES))
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
