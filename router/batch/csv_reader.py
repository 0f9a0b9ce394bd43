"""The CSV reader: Arrow's streaming reader, every column pinned to text.

No column can change type between blocks; the model backend casts feature columns to its
input types with errors that point at the row. A regular file (or an object) is read by
Arrow natively; stdin, FIFOs and devices through Python, replayed after the header scan
(:mod:`.byte_sources`). Blocks grow when a row does not fit (:class:`_CsvOpener`).
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
from modelrouter.batch.byte_sources import (
    BOM,
    Replay,
    Source,
    Stream,
    checked_read,
    counted_source,
    decompressed,
    open_binary,
    python_side,
    read_head,
    skip_bytes,
    stored_size,
)
from modelrouter.batch.csv_header import (
    MAX_ROW_BYTES,
    DialectGuess,
    HeaderRecord,
    guess_dialect,
    mib,
    read_header,
    unnamed,
)
from modelrouter.batch.input_file import InputFile, ReadRequest, ReadSource, first_line, reject_duplicates
from modelrouter.errors import DataError
from modelrouter.storage import object_store as storage
from modelrouter.storage.formats import SNIFF_BYTES, Compression, sniff_compression

__all__ = ["open_csv"]

#: Arrow's CSV reader reads up to 32 blocks ahead of the rows asked for (its background
#: reader's queue), whatever the consumer does: 4 MiB blocks held 136 MiB of a 225 MB file
#: at once (peak 485 MiB); 1 MiB blocks peak 133 MiB lower at the same speed.
_CSV_BLOCK_BYTES = 1 << 20


def open_csv(source: ReadSource, request: ReadRequest) -> InputFile:
    """CSV (any delimiter, compressed or not) from a file, an object, stdin or a pipe; every
    column read as text (see :func:`~modelrouter.batch.dataio.open_input`)."""
    name, delimiter = request.name, request.delimiter
    # A FIFO or device cannot be reopened either: it is read through Python like stdin.
    once = source.from_stdin or source.stream
    header, stream, compression = _scan_header(source, name, delimiter)
    # A column without a name (Excel's trailing empty columns) gets pandas' name for it; it
    # is not data: never a positional feature (InputFile.unnamed_columns).
    names = [c or unnamed(i) for i, c in enumerate(header.names)]
    nameless = tuple(n for n, c in zip(names, header.names, strict=True) if not c)
    reject_duplicates(names, name)
    wanted = names if request.columns is None else [c for c in names if c in set(request.columns)]
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = _convert_options(header, wanted, nameless, request.keep_text)
    opener = _CsvOpener(
        source.bytes_from, name, header, convert, stream, compression, parse, source.pinned is not None
    )
    opener.dialect = _dialect(header, delimiter, request.decimal)
    reader = opener.open(_first_block(header), rows_before=0)
    schema = reader.schema
    positions: list[int] | None = None
    if nameless:
        # Arrow knows the nameless columns as "" (all of them): picked by position and named.
        positions = [names.index(c) for c in wanted]
        schema = pa.schema([pa.field(c, pa.string()) for c in wanted])
    return InputFile(
        name,
        schema,
        None,
        _batches(opener, reader, positions, schema),
        opener.close,
        tuple(names),
        text_nulls=request.keep_text,
        delimiter=delimiter,
        unnamed_columns=nameless,
        dialect=opener.dialect,
        size=None if once else stored_size(source.bytes_from),
        bytes_read=None if once else opener.stored_bytes,
    )


def _scan_header(
    source: ReadSource, name: str, delimiter: str
) -> tuple[HeaderRecord, Stream | None, Compression | None]:
    """The header record, the stream the rows are read from when the input can be read only
    once (stdin, a FIFO, a device: the header scan's read-ahead is in the record's ``rest``),
    and the compression sniffed. A file that can be reopened is closed again: the rows are
    read from its start (:class:`_CsvOpener`). Nothing is left open on an error."""
    path, from_stdin = source.bytes_from, source.from_stdin
    once = from_stdin or source.stream
    raw: BinaryIO = sys.stdin.buffer if from_stdin else open_binary(path)
    stream: Stream | None = None
    try:
        head = read_head(raw, SNIFF_BYTES)
        compression = sniff_compression(head)
        if once:
            # What the sniff consumed is replayed in front of the rest.
            stream = decompressed(io.BufferedReader(Replay(head, raw)), compression)
        elif compression is None:
            raw.seek(0)
            stream = raw
        else:
            raw.close()
            stream = python_side(path, compression)
        header = checked_read(name, compression, lambda: read_header(stream, name, delimiter=delimiter))
    except BaseException:
        if stream is not None and not once:
            stream.close()
        if not from_stdin:
            raw.close()
        raise
    if once:
        return header, stream, compression
    stream.close()
    return header, None, compression


def _dialect(header: HeaderRecord, delimiter: str, decimal: str) -> DialectGuess | None:
    """What the rows read past the header (up to 64 KiB) say about a delimiter or decimal
    mark other than the given ones: said with the exact flags wherever the file fails to read."""
    return guess_dialect(
        header.raw.removeprefix(BOM).decode("utf-8", "replace").strip("\r\n"),
        header.rest.decode("utf-8", "replace"),
        delimiter,
        decimal,
    )


def _convert_options(
    header: HeaderRecord, wanted: list[str], nameless: tuple[str, ...], keep_text: bool
) -> pacsv.ConvertOptions:
    """Every column as text; only the ``wanted`` ones read, unless some columns have no name."""
    return pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header.names},
        # Kept columns and rejects carry the text as read (docs/specification.md §2); the caller turns the
        # null spellings of feature columns into nulls (InputFile.text_nulls).
        strings_can_be_null=not keep_text,
        # Arrow knows the nameless columns as "" (all of them): they are read all, then
        # picked by position and named.
        include_columns=[] if nameless else wanted,
    )


def _first_block(header: HeaderRecord) -> int:
    """The block size the rows are first read with.

    Arrow needs a whole row inside one block: start with room for twice the header. A wide
    file gets larger blocks (up to 4 MiB): each block costs Arrow time per column (17 ms
    per 1 MiB block of a 2,000-column file), and holds only a few dozen of its rows.
    """
    size = len(header.raw)
    return min(MAX_ROW_BYTES, max(_CSV_BLOCK_BYTES, min(4 << 20, 128 * size), 2 * size))


def _batches(
    opener: _CsvOpener, reader: pacsv.CSVStreamingReader, positions: list[int] | None, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The rows of ``reader``, as read or (``positions``) only the columns at those positions,
    named by ``schema``; the opener is closed when they end or are abandoned."""
    try:
        for batch in opener.batches(reader):
            if positions is None:
                yield batch
            else:
                yield pa.RecordBatch.from_arrays([batch.column(i) for i in positions], schema=schema)
    finally:
        opener.close()


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
        path: Source,
        name: str,
        header: HeaderRecord,
        convert: pacsv.ConvertOptions,
        once: Stream | None,
        compression: Compression | None = None,
        parse: pacsv.ParseOptions | None = None,
        remote: bool = False,
    ) -> None:
        self.path = path
        #: An object in a store: a read error mid-file is the store's, said as such.
        self.remote = remote
        self.name = name
        self.header = header
        self.convert = convert
        #: stdin, a FIFO or a device: read once, through Python, never reopened.
        self.once = once
        self.compression = compression
        self.parse = parse or pacsv.ParseOptions(newlines_in_values=True)
        self.block = 0
        self.reader: pacsv.CSVStreamingReader | None = None
        self.replay: Replay | None = None
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
            # Replay hands Arrow 1 MiB at a time (more only to finish a row), so Arrow's
            # 32-block read-ahead holds ~32 MiB, not 32 of these blocks.
            block = MAX_ROW_BYTES
        while True:
            self.close()
            self.block = block
            source: str | pa.NativeFile | Replay
            raw = self.header.raw
            if self.once is not None or not raw.endswith((b"\n", b"\r")):
                # stdin/FIFO: replay what the header scan consumed; a header-only file without
                # a final line break needs one added. Arrow then calls back into Python.
                ending = b"" if raw.endswith((b"\n", b"\r")) else b"\n"
                if self.once is not None:
                    stream, rest = self.once, self.header.rest
                else:
                    stream, rest = self._reopen(), b""
                    skip_bytes(stream, len(raw))
                self.replay = source = Replay(raw.removeprefix(BOM) + ending + rest, stream)
            else:
                # A regular file is read by Arrow itself, natively, from the start (it skips a
                # BOM): no Python callbacks from Arrow's I/O threads, which must not outlive the
                # interpreter. Compressed files are decompressed natively too, and an object
                # is reopened through its filesystem the same way.
                self.native, self.ratio = counted_source(self.path, self.compression)
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

    def _reopen(self) -> Stream:
        """The file from its start, decompressed, for a Python-side read."""
        return python_side(self.path, self.compression)

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
            return f"{self.name}: corrupt {self.compression} data {where} ({first_line(exc)})"
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
                if isinstance(exc, OSError) and self.remote:
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


def _straddles(exc: BaseException) -> bool:
    return "straddling object" in str(exc)


def _csv_error(name: str, exc: BaseException, rows_before: int, columns: Sequence[str] = ()) -> str:
    """pyarrow's CSV error with the 1-based data row and the column name where it names them."""
    text = first_line(exc)
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
