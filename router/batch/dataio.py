"""Opening an input: its format told from its name, its reader found in the registry.

Readers never load the whole file (:mod:`.csv_reader`, :mod:`.parquet_reader`,
:mod:`.jsonl_reader`, each registered with its format in
:data:`modelrouter.storage.formats.FORMATS`); :func:`open_input` checks the location once,
pins an object's version, calls the reader and re-chunks its batches to exactly
``chunk_size`` rows (:func:`rechunk`). A database table is read by :func:`open_table`.

The writers live in :mod:`modelrouter.storage.commit` (re-exported here): a hidden
temporary file renamed over the destination at the run's commit, or a stream for stdout,
devices and FIFOs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from modelrouter.batch.csv_header import MAX_ROW_BYTES
from modelrouter.batch.input_file import InputFile, ReadRequest, ReadSource, rechunk
from modelrouter.errors import DataError, InvalidOptionError
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import AtomicOutput, write_text_atomically
from modelrouter.storage.formats import DATA_SUFFIXES, FORMATS, FileFormat, split_name
from modelrouter.storage.location import DataLocation
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
#: A format's reader (:attr:`FormatSpec.reader <modelrouter.storage.formats.FormatSpec>`).
Reader = Callable[[ReadSource, ReadRequest], InputFile]


def detect_format(
    path: str | Path | DataLocation, override: FileFormat | None, *, role: str, option: str = "--output"
) -> FileFormat:
    """The format named by ``override``, else by the suffix.

    Unknown: :class:`DataError` for an input (what the file holds is the problem), and for an
    output a usage error (:class:`InvalidOptionError` of ``option``, exit 2) naming the
    supported suffixes — nothing is read or written first."""
    if override is not None:
        return override
    location = DataLocation.of(path)
    if location.is_stream:
        return "csv"
    path = location.text
    _, data, compression = split_name(path)
    suffix = (data + compression).lower()
    if data.lower() in _SUFFIX_FORMATS:
        if compression and not FORMATS[_SUFFIX_FORMATS[data.lower()]].text:
            title = FORMATS[_SUFFIX_FORMATS[data.lower()]].title
            message = f"{path}: a compressed {title} file ({suffix!r}) is not read or written; "
            message += f"{title} compresses its own pages (see --compression)"
            if role == "output":  # the command line's mistake, as an unknown suffix (exit 2)
                raise UnknownOutputFormat(option, message)
            raise DataError(message)
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


def open_input(
    path: str | Path | DataLocation,
    fmt: FileFormat,
    *,
    chunk_size: int,
    columns: Sequence[str] | None = None,
    keep_text: bool = False,
    delimiter: str = ",",
    keep: Sequence[str] = (),
    decimal: str = ".",
) -> InputFile:
    """Open ``path`` (``-``: stdin) for streaming in chunks of ``chunk_size`` rows.

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
    location = DataLocation.of(path)
    name = "<stdin>" if location.is_stream else location.text
    request = ReadRequest(name, chunk_size, columns, keep_text, delimiter, keep, decimal)
    if not location.is_object:
        return _open_input(location, fmt, request)
    try:
        return _open_input(location, fmt, request)
    except OSError as exc:
        # The store failing while the file is opened (the format sniff, the header scan, the
        # reader's first block), after the client's retries: a read error of this input. Reads
        # after the open are mapped where they happen (InputFile.batches).
        raise DataError(f"{location}: read failed ({storage.reason(exc)})") from None


def _open_input(location: DataLocation, fmt: FileFormat, request: ReadRequest) -> InputFile:
    stream = location.is_local and is_stream_source(location.path)
    if not location.is_stream and not stream:
        # One metadata request on an object store; a missing bucket is named as such.
        kind = storage.info(location.target)
        if kind != "file":
            what = "is a directory, not a file" if kind == "directory" else "file not found"
            raise DataError(f"{request.name}: {what}")
    # An object is read as the version seen now, by every request of this run (the sniff, the
    # header, each block or row group): a replaced object fails, never mixes two versions.
    pinned = storage.pin(location.uri) if location.uri is not None else None
    reader: Reader = FORMATS[fmt].open_reader()
    opened = reader(ReadSource(location, stream, pinned), request)
    return dataclasses.replace(opened, batches=rechunk(opened.batches, request.chunk_size, opened.schema))


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
