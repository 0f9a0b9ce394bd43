"""Finding and splitting the header record of a CSV stream, in linear time and bounded memory.

The header is read by us (to learn the column names before Arrow opens the file, and to
replay it in front of stdin), so it must obey the same limits as every other row: at most
:data:`MAX_ROW_BYTES`, whatever the input (``/dev/zero``, a 50 MB file without a line break,
a header whose first field opens a quote that never closes). The scan keeps its state
between blocks, so each byte is looked at once; the old scan re-decoded everything read so
far after each line, which was quadratic.

Quoting follows Arrow's CSV parser (the one that reads the data): a quote opens a quoted
field only at the start of a field, ``""`` inside a quoted field is a literal quote, and a
record ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files) outside quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from modelrouter.errors import DataError

__all__ = [
    "LIKELY_DELIMITERS",
    "MAX_ROW_BYTES",
    "DialectGuess",
    "HeaderRecord",
    "guess_dialect",
    "read_header",
    "split_record",
    "unnamed",
]

#: The largest CSV row (and so the largest field, and the header) we read: 32 MiB. Beyond it
#: a file is refused with exit 3 instead of growing memory without bound.
MAX_ROW_BYTES = 32 << 20

_READ_BYTES = 64 << 10
_TOKENS: dict[str, re.Pattern[bytes]] = {}


def _token(delimiter: str) -> re.Pattern[bytes]:
    """The characters that matter outside quotes: the delimiter, a quote, a line break."""
    if delimiter not in _TOKENS:
        _TOKENS[delimiter] = re.compile(b"[" + re.escape(delimiter.encode()) + rb'"\r\n]')
    return _TOKENS[delimiter]


_BOM = b"\xef\xbb\xbf"


class _Readable(Protocol):
    """What the header scan reads from: a Python binary stream or a pyarrow input stream."""

    def read(self, size: int = ..., /) -> bytes: ...


class HeaderRecord:
    """The header as read: its bytes (line break included), the bytes read past it, its fields."""

    def __init__(self, raw: bytes, rest: bytes, names: list[str]) -> None:
        self.raw = raw
        self.rest = rest
        self.names = names


def unnamed(position: int) -> str:
    """The name of a header column that has none: pandas' name for it (0-based position)."""
    return f"Unnamed: {position}"


def mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def read_header(
    stream: BinaryIO | _Readable, name: str, limit: int = MAX_ROW_BYTES, *, delimiter: str = ","
) -> HeaderRecord:
    """Read ``stream`` up to the end of its first record; :class:`DataError` when unusable.

    ``delimiter`` separates the fields (one ASCII character).
    Blank lines before the header are skipped (Arrow's reader skips them too; ``raw`` keeps
    them, so a replay gives Arrow the same bytes).
    Reads at most ``limit`` bytes plus one block. Raises for an empty file, a header longer
    than ``limit`` or a header that is not UTF-8. A column without a name (Excel's trailing
    empty columns) keeps its empty name here; the reader names it (:func:`unnamed`).
    """
    buffer = bytearray()
    scanner = _RecordEnd(delimiter)
    end: int | None = None
    at_eof = False
    start = 0  # where the header record starts: after blank lines, which Arrow skips too
    while True:
        while end is None:
            # read1: what is there now (a pipe that trickles must not wait for a whole block)
            read = getattr(stream, "read1", stream.read)
            block = read(_READ_BYTES)
            at_eof = not block
            buffer += block
            end = scanner.feed(buffer, at_eof)
            if end is None and (at_eof or len(buffer) > limit):
                if at_eof:
                    end = len(buffer)  # a header-only file without a final line break
                    break
                what = "a quoted field that never closes" if scanner.in_quotes else "no line break"
                raise DataError(
                    f"{name}: the header row is longer than {mib(limit)} ({what}); "
                    f"rows are limited to {mib(limit)}"
                )
        blank = not bytes(buffer[start:end]).removeprefix(_BOM).strip(b"\r\n")
        if not blank or (at_eof and end >= len(buffer)):
            break
        start, end = end, None
        scanner = _RecordEnd(delimiter)
        scanner.position = start
    raw = bytes(buffer[:end])
    if end > limit:
        raise DataError(f"{name}: the header row is longer than {mib(limit)} (the row size limit)")
    if scanner.in_quotes and at_eof:
        raise DataError(f"{name}: the header row has a quoted field that never closes")
    try:
        text = bytes(buffer[start:end]).removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            # Excel's "Unicode text" export: UTF-16 with a byte-order mark.
            raise DataError(
                f"{name}: the file is UTF-16 text; save it as CSV UTF-8 (or iconv -f utf-16 -t utf-8)"
            ) from None
        raise DataError(
            f"{name}: the CSV header is not valid UTF-8 (save or convert the file as UTF-8, "
            "e.g. iconv -f cp1252 -t utf-8)"
        ) from None
    names = split_record(text.rstrip("\r\n"), delimiter)
    if not any(field.strip() for field in names):
        if not bytes(buffer[start:]).removeprefix(_BOM).strip():
            raise DataError(f"{name}: empty file (no header row)")
        line = bytes(buffer[:start]).count(b"\n") + 1
        raise DataError(
            f"{name}: the header row (line {line}) names no columns (only spaces or delimiters); "
            "the first non-blank line must name them"
        )
    return HeaderRecord(raw, bytes(buffer[end:]), names)


class _RecordEnd:
    """Incremental scanner for the end of the first CSV record (state kept between blocks)."""

    def __init__(self, delimiter: str = ",") -> None:
        self.delimiter = delimiter.encode()
        self.token = _token(delimiter)
        self.position = 0
        self.in_quotes = False
        self.field_start = True  # at the first character of a field

    def feed(self, data: bytearray, at_eof: bool) -> int | None:
        """The offset just past the record's line break, or ``None`` if more data is needed."""
        view = data  # searched in place: copying the buffer per block would be quadratic
        i = self.position
        while i < len(view):
            if self.in_quotes:
                q = view.find(b'"', i)
                if q < 0:
                    i = len(view)
                    break
                if q + 1 == len(view) and not at_eof:
                    i = q  # is it `""`? wait for the next block
                    break
                if q + 1 < len(view) and view[q + 1 : q + 2] == b'"':
                    i = q + 2  # an escaped quote
                    continue
                self.in_quotes = False
                self.field_start = False
                i = q + 1
                continue
            found = self.token.search(view, i)
            if found is None:
                if i < len(view):
                    self.field_start = False
                i = len(view)
                break
            token = found.start()
            if token > i:
                self.field_start = False
            char = view[token : token + 1]
            if char == self.delimiter:
                self.field_start = True
                i = token + 1
            elif char == b'"':
                if self.field_start:
                    self.in_quotes = True
                self.field_start = False
                i = token + 1
            elif char == b"\n":
                return token + 1
            else:  # "\r": alone (old Mac) or the first half of "\r\n"
                if token + 1 == len(view) and not at_eof:
                    i = token
                    break
                return token + 2 if view[token + 1 : token + 2] == b"\n" else token + 1
        self.position = i
        return None


def split_record(text: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV record (no line break at its end), by the rules above."""
    fields: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    field_start = True
    while i < n:
        char = text[i]
        if char == '"' and field_start:
            close = i + 1
            while True:
                q = text.find('"', close)
                if q < 0:  # unterminated: the rest is the field
                    current.append(text[i + 1 :])
                    i = n
                    break
                if text.startswith('"', q + 1):
                    current.append(text[close : q + 1])
                    close = q + 2
                    continue
                current.append(text[close:q])
                i = q + 1
                break
            field_start = False
            continue
        comma = text.find(delimiter, i)
        if comma < 0:
            current.append(text[i:])
            i = n
            break
        current.append(text[i:comma])
        fields.append("".join(current))
        current = []
        i = comma + 1
        field_start = True
    fields.append("".join(current))
    return fields


#: Delimiters a file is checked for when the given one reads its header as one column.
LIKELY_DELIMITERS = (",", ";", "\t", "|")
#: A number written with a decimal comma (``14,23``, ``-0,5``; no thousands separators).
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class DialectGuess:
    """How the header and first rows of a CSV file read best, when that differs from the
    options it was opened with: the exact flags to pass (European Excel exports: ``;``
    between fields, ``14,23`` in numbers)."""

    delimiter: str
    decimal: str
    #: Columns whose first values are numbers written with a decimal comma.
    comma_columns: tuple[str, ...]
    flags: str
    #: The first such value of each of :attr:`comma_columns`.
    examples: tuple[str, ...] = ()

    @property
    def header_is_one_column(self) -> bool:
        """The given delimiter read the header as one column (another one splits it)."""
        return "--delimiter" in self.flags

    def describe(self) -> str:
        """What the file looks like, and the flags that read it."""
        shown = "tab" if self.delimiter == "\t" else repr(self.delimiter)
        what = f"{shown}-separated"
        if self.comma_columns:
            what += " with decimal commas (a European Excel export)"
        return f"the file looks {what}: pass {self.flags}"


def guess_dialect(header: str, sample: str, delimiter: str, decimal: str) -> DialectGuess | None:
    """What the header and the complete lines of ``sample`` (the first data rows) say about
    the file's delimiter and decimal mark, or ``None`` when the given ones read it well.

    A header read as one column by ``delimiter`` is re-read with each of
    :data:`LIKELY_DELIMITERS`: one that splits it, and splits the first rows into as many
    fields, is the file's. A decimal comma is seen when, with that delimiter, a column's
    first values are all numbers and some are written ``14,23`` (never with ``,`` as
    delimiter, where it cannot be).
    """
    lines = _first_complete_lines(sample)
    chosen, names = _splitting_delimiter(header, lines, delimiter)
    found = _decimal_comma_columns(names, lines, chosen) if chosen != "," else []
    wanted_decimal = "," if found else "." if chosen == "," else decimal
    flags = _dialect_flags(chosen, delimiter, wanted_decimal, decimal)
    if not flags:
        return None
    columns = tuple(name for name, _ in found)
    return DialectGuess(chosen, wanted_decimal, columns, flags, tuple(example for _, example in found))


def _first_complete_lines(sample: str) -> list[str]:
    """The first 20 non-blank lines of ``sample`` that end with a line break (the last piece
    may be a row cut off by the end of the sample)."""
    return [line for line in re.split(r"\r\n|\n|\r", sample)[:-1] if line.strip()][:20]


def _splitting_delimiter(header: str, lines: list[str], delimiter: str) -> tuple[str, list[str]]:
    """The delimiter that reads the file and the header's fields with it: ``delimiter``,
    unless it reads the header as one column and one of :data:`LIKELY_DELIMITERS` splits
    the header and every line in ``lines`` into the same number of fields."""
    names = split_record(header, delimiter)
    if len(names) != 1:
        return delimiter, names
    for candidate in LIKELY_DELIMITERS:
        if candidate == delimiter:
            continue
        split = split_record(header, candidate)
        if len(split) > 1 and all(len(split_record(line, candidate)) == len(split) for line in lines):
            return candidate, split
    return delimiter, names


def _decimal_comma_columns(names: list[str], lines: list[str], delimiter: str) -> list[tuple[str, str]]:
    """The columns whose values in ``lines`` are all numbers, some with a decimal comma, in
    file order, each with its first such value (the example shown to the user)."""
    rows = [split_record(line, delimiter) for line in lines]
    found: list[tuple[str, str]] = []
    for position, name in enumerate(names):
        values = [row[position].strip() for row in rows if position < len(row) and row[position].strip()]
        if not all(_PLAIN_NUMBER.fullmatch(v) for v in values):
            continue
        example = next((v for v in values if _DECIMAL_COMMA.fullmatch(v)), None)
        if example is not None:
            found.append((name, example))
    return found


def _dialect_flags(chosen: str, delimiter: str, wanted_decimal: str, decimal: str) -> str:
    """The command-line flags that change ``delimiter``/``decimal`` to the ones the file
    reads with ("" when they already are)."""
    flags = []
    if chosen != delimiter:
        flags.append("--delimiter " + ("tab" if chosen == "\t" else f"'{chosen}'"))
    if wanted_decimal != decimal:
        flags.append(f"--decimal '{wanted_decimal}'")
    return " ".join(flags)
