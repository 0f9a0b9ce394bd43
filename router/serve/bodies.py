"""Request bodies in, answers out: JSON rows, CSV and Parquet, all as Arrow tables.

The scoring itself goes through the backends, which select the model's feature columns by
name and convert them with :mod:`modelrouter.features` — the batch path's code — so a value
that does not convert is reported with its column and 0-based row. What is decided here is
only how a body becomes a table:

- JSON: ``{"rows": [{column: value, …}, …]}``. Each column becomes one Arrow array from its
  JSON kind (numbers, strings, booleans, nulls); a column mixing kinds is passed on as text,
  so the model's type conversion names the first value it cannot use. A list or object in a
  cell, or a feature key missing from one row, is a 422 naming the column and row. The usual
  large body (plain ASCII, every row with every key, one kind per column) is parsed straight
  into Arrow columns by :func:`arrow_rows_table`, without a Python object per row or value;
  anything else takes the reference path, which decides and names every error.
- CSV: every column read as text (like the batch reader), the model's types convert them.
- Parquet: the file's own types; its row count is checked against the limit from the footer,
  before any data is read.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from modelrouter.backends import InputSchema, Prediction
from modelrouter.batch.csv_header import unnamed
from modelrouter.errors import ConversionError, DataError, MissingColumnsError
from modelrouter.serve.problems import Problem
from modelrouter.storage.csv_writer import CsvWriter

__all__ = [
    "BodyFormat",
    "JsonForm",
    "arrow_rows_table",
    "body_format",
    "columns_table",
    "csv_table",
    "encode_table",
    "json_form",
    "json_rows",
    "json_table",
    "parquet_table",
    "result_table",
    "rows_table",
]

BodyFormat = Literal["json", "csv", "parquet"]
JsonForm = Literal["rows", "columns"]

_MEDIA_TYPES: dict[str, BodyFormat] = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
}
MEDIA_TYPE: dict[BodyFormat, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_INT64 = (-(2**63), 2**63 - 1)


def body_format(content_type: str | None) -> BodyFormat:
    """The body's format from its ``Content-Type``; 415 for anything else, and for none (a
    body's format is never guessed: bytes sent without a type are not taken for JSON)."""
    known = ", ".join(sorted({"application/json", "text/csv", "application/vnd.apache.parquet"}))
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media:
        raise Problem(415, f"no Content-Type header (send one of: {known})")
    if media in _MEDIA_TYPES:
        return _MEDIA_TYPES[media]
    if media.endswith("+json"):
        return "json"
    raise Problem(415, f"unsupported Content-Type {media!r} (send one of: {known})")


# -- JSON --------------------------------------------------------------------------------------


def json_table(body: bytes, max_rows: int, schema: InputSchema) -> pa.Table | None:
    """A JSON body as a table of the model's feature columns; ``None`` when it has no rows.

    Two forms: ``{"rows": [{column: value, …}, …]}`` (docs/specification.md §10) and the columnar
    ``{"columns": {column: [value, …], …}}`` (what ``DataFrame.to_dict("list")`` gives; about
    a third of the bytes, and no per-row objects to walk). 400 when the body is neither, 413
    above ``max_rows``; :class:`DataError` (422) for the values, as :func:`rows_table`.
    """
    if len(body) >= ARROW_ROWS_MIN_BYTES:
        fast = arrow_rows_table(body, max_rows, schema)
        if fast is not None:
            return fast
    document = _json_document(body)
    if "columns" in document:
        return columns_table(_json_columns(document, max_rows), schema)
    rows = _json_rows(document, max_rows)
    return rows_table(rows, schema) if rows else None


def json_form(body: bytes) -> JsonForm:
    """Which form a valid JSON body has: ``"rows"`` or ``"columns"``. Asked only when a
    value is at fault (the body is parsed again then), so the error points into the body
    as the client wrote it: ``rows[3]`` or ``columns['ash'][3]``."""
    return "columns" if "columns" in _json_document(body) else "rows"


def json_rows(body: bytes, max_rows: int) -> list[dict[str, Any]]:
    """The ``rows`` of a JSON body; 400 when it is not ``{"rows": [{…}, …]}``, 413 above ``max_rows``."""
    return _json_rows(_json_document(body), max_rows)


def _json_document(body: bytes) -> dict[str, Any]:
    try:
        # orjson parses 3-5× faster than the standard library; it is also stricter (no NaN,
        # Infinity, integers beyond 64 bits read as floats), so a body it refuses is read
        # again by the standard parser, whose answers (and errors) are the reference.
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _strict_json(body)
    else:
        # orjson keeps the last of two equal keys silently. Every key of the text is followed
        # by a colon: when the keys it kept are as many as the body has colons, no key was
        # repeated; otherwise (colons inside strings, nested objects, a repeated key) the
        # standard parser decides, refusing a repeated key.
        if isinstance(document, dict) and _kept_keys(document) != body.count(b":"):
            document = _strict_json(body)
    if not isinstance(document, dict):
        raise Problem(400, f'the JSON body must be an object {{"rows": [...]}}, not {_kind(document)}')
    unknown = sorted(set(document) - {"rows", "columns"})
    if unknown:
        raise Problem(400, f"unknown key {unknown[0]!r} in the JSON body (expected 'rows' or 'columns')")
    if len(document) != 1:
        raise Problem(
            400, "the JSON body has no 'rows' key" if not document else "send 'rows' or 'columns', not both"
        )
    return document


def _strict_json(body: bytes) -> Any:
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise Problem(400, "malformed JSON body: nested too deeply") from None
    except _DuplicateKeyError as exc:
        raise Problem(400, f"malformed JSON body: key {exc.key!r} appears twice in one object") from None
    except (ValueError, UnicodeDecodeError) as exc:
        # ValueError also covers integers longer than Python's digit limit.
        raise Problem(400, f"malformed JSON body: {exc}") from None


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return document


def _kept_keys(document: dict[str, Any]) -> int:
    """Keys of the document, of its ``rows`` objects or of its ``columns`` object (the only
    objects of a valid body). A row that is not an object is refused later (400) anyway, so
    what its length adds here does not matter."""
    count = len(document)
    rows = document.get("rows")
    if type(rows) is list:
        try:
            count += sum(map(len, rows))
        except TypeError:  # a number or null as a row
            return -1
    columns = document.get("columns")
    if type(columns) is dict:
        count += len(columns)
    return count


def _json_rows(document: dict[str, Any], max_rows: int) -> list[dict[str, Any]]:
    rows = document["rows"]
    if not isinstance(rows, list):
        raise Problem(400, f"'rows' must be a list of objects, not {_kind(rows)}")
    if len(rows) > max_rows:
        raise _too_many_rows(len(rows), max_rows)
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise Problem(400, f"rows[{index}] must be an object keyed by column name, not {_kind(row)}")
    return rows


def _json_columns(document: dict[str, Any], max_rows: int) -> dict[str, list[Any]]:
    columns = document["columns"]
    if not isinstance(columns, dict):
        raise Problem(400, f"'columns' must be an object of lists, not {_kind(columns)}")
    length: int | None = None
    for name, values in columns.items():
        if not isinstance(values, list):
            raise Problem(400, f"columns[{name!r}] must be a list of values, not {_kind(values)}")
        if length is None:
            length = len(values)
            if length > max_rows:
                raise _too_many_rows(length, max_rows)
        elif len(values) != length:
            raise Problem(
                400,
                f"columns[{name!r}] has {len(values)} values, the first column {length}: "
                "every column needs one value per row",
            )
    return columns


def _too_many_rows(count: int, max_rows: int) -> Problem:
    return Problem(413, f"{count} rows in one request, above the limit of {max_rows} (--max-rows)")


#: From this size on a rows body is read by Arrow (the size from which the service decodes
#: bodies off the event loop). Arrow's reader costs about as much CPU as orjson plus the
#: per-column lists at a thousand rows and half of it at ten thousand, but it runs without
#: the GIL, so the model's threads keep running meanwhile; below, its fixed cost (~0.2 ms)
#: is more than the whole orjson path (~0.1 ms for a few rows).
ARROW_ROWS_MIN_BYTES = 16 << 10
#: Rows with more keys than this are left to orjson (one Arrow field per key).
ARROW_ROWS_MAX_KEYS = 2048
_ARROW_KINDS = {float: pa.float64(), int: pa.int64(), bool: pa.bool_(), str: pa.string()}
# Types whose values hold no text, so no colon: the key count below is exact with them.
_TEXTLESS_TYPES = frozenset({pa.float64(), pa.int64(), pa.bool_()})


def arrow_rows_table(body: bytes, max_rows: int, schema: InputSchema) -> pa.Table | None:
    """A ``{"rows": [...]}`` body read by Arrow's JSON reader (C++, without the GIL, no Python
    object per row), or ``None`` when the reference path must decide.

    The answer is the table :func:`json_table`'s reference path gives, or ``None``: only
    bodies whose meaning both paths agree on are taken here. The first row (parsed alone)
    gives the keys and their JSON kinds, and Arrow reads the body strictly against them: a
    document with another key, a row with another key, a key twice in one object, a value of
    another kind (an integer column with a fraction or beyond int64, a list, an object, text
    among numbers) or anything that is not JSON make it fail, and the reference path
    decides. Fixing the keys up front also bounds Arrow's work: it never builds a column per
    key of a body whose rows each bring new ones, nor descends into nested values.

    Also handed back: non-ASCII bytes or a backslash (escapes, lone surrogates), a first row
    with a null or more than :data:`ARROW_ROWS_MAX_KEYS` keys, a row that is not an object,
    a key missing from a row (Arrow would make it a null), a feature column absent. 413
    above ``max_rows``, as the reference path.
    """
    if not body.isascii() or b"\\" in body:
        return None
    first = _first_row(body)
    if first is None:
        return None
    fields = []
    for key, value in first.items():
        kind = _ARROW_KINDS.get(type(value))
        if kind is None:
            return None  # a null (no kind yet), a list or an object
        fields.append(pa.field(key, kind))
    expected = pa.schema([pa.field("rows", pa.list_(pa.struct(fields)))])
    try:
        # The streaming reader, read whole: the same parser and checks as read_json (one
        # block: the body), 20-25% less CPU on a 1,000-row body (docs/serving.md, "How
        # requests are run, and batching").
        document = pajson.open_json(
            pa.BufferReader(body),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(body) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=expected, unexpected_field_behavior="error", newlines_in_values=True
            ),
        ).read_all()
    except (pa.ArrowException, ValueError):
        return None
    return _rows_of(document, body, max_rows, schema)


def _first_row(body: bytes) -> dict[str, Any] | None:
    """The first object after the first ``[``, parsed alone: the first row of a rows body
    (Arrow's reading then checks that it was: the document may hold no other key)."""
    start = body.find(b"{", body.find(b"[") + 1)
    end = body.find(b"}", start)
    if start < 0 or end < 0:
        return None
    try:
        row = orjson.loads(body[start : end + 1])
    except orjson.JSONDecodeError:
        return None
    if type(row) is not dict or not row or len(row) > ARROW_ROWS_MAX_KEYS:
        return None
    return row


def _rows_of(document: pa.Table, body: bytes, max_rows: int, schema: InputSchema) -> pa.Table | None:
    """The feature columns of Arrow's reading of a rows body (see :func:`arrow_rows_table`)."""
    if document.num_rows != 1 or document.column(0).num_chunks != 1:
        return None  # several documents, or a "rows" that is null
    listed = document.column(0).chunk(0)
    if listed.null_count:
        return None
    rows = listed.flatten()
    count = len(rows)
    if count > max_rows:
        raise _too_many_rows(count, max_rows)
    kind = rows.type
    children = rows.flatten()
    if not count or rows.null_count or not _every_key_in_every_row(body, kind, children):
        return None
    columns = dict(zip([field.name for field in kind], children, strict=True))
    names: Sequence[str] = list(columns) if schema.names is None else schema.names
    if any(name not in columns for name in names):
        return None
    return pa.Table.from_arrays([columns[name] for name in names], names=list(names))


def _every_key_in_every_row(body: bytes, kind: pa.StructType, children: list[pa.Array]) -> bool:
    """Whether no row lacks a key: Arrow makes a missing key a null, which the reference
    path reports (422) where a written ``null`` is a value."""
    if not any(child.null_count for child in children):
        return True
    # Some nulls: written or missing? Every key is followed by a colon, and no row has a key
    # twice or one of its own (Arrow refuses both), so every row has every key when the body
    # holds one colon for "rows" and one per key per row, provided no text could hold one.
    if any(":" in field.name or field.type not in _TEXTLESS_TYPES for field in kind):
        return False
    keys: int = kind.num_fields
    return body.count(b":") == 1 + len(children[0]) * keys


def columns_table(columns: dict[str, list[Any]], schema: InputSchema) -> pa.Table | None:
    """The feature columns of a columnar body (model order; body order without names)."""
    if not columns or not next(iter(columns.values())):
        return None  # no rows: answered like {"rows": []}, without asking the model
    names: Sequence[str] = list(columns) if schema.names is None else schema.names
    absent = [n for n in names if n not in columns]
    if absent:
        raise MissingColumnsError(absent, list(columns))
    return pa.Table.from_arrays([_column(name, columns[name]) for name in names], names=list(names))


def rows_table(rows: Sequence[dict[str, Any]], schema: InputSchema) -> pa.Table:
    """The feature columns of ``rows`` as a table (model order; by first-row order without names).

    Raises :class:`DataError` with ``row`` 0-based: a missing feature column (every row lacks
    it), a row without a feature key, a list/object value, a number out of range.
    """
    if schema.names is not None:
        names: Sequence[str] = schema.names
        present = set(rows[0]) if rows else set()
        absent = [n for n in names if n not in present and all(n not in r for r in rows)]
        if absent:
            raise MissingColumnsError(absent, list(rows[0]) if rows else [])
    else:
        names = list(rows[0]) if rows else []
    floats = _float_table(rows, names)
    if floats is not None:
        return floats
    try:
        # The usual body: every row has every feature key, and a column is one list
        # comprehension; a row without one (KeyError) takes the per-cell path that names it.
        arrays = [_column(name, [row[name] for row in rows]) for name in names]
        return pa.Table.from_arrays(arrays, names=list(names))
    except KeyError:
        pass
    arrays = [_column(name, [_cell(row, name, i) for i, row in enumerate(rows)]) for name in names]
    return pa.Table.from_arrays(arrays, names=list(names))


def _float_table(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> pa.Table | None:
    """The table of a body whose every feature cell is a JSON number with a fraction (a
    Python ``float``), or ``None``. The usual small request: one NumPy matrix and one Arrow
    buffer for all columns, in place of an Arrow conversion per column (a third of the
    cost); each column is the float64 array :func:`_column` would give it."""
    if not rows or not names:
        return None
    try:
        cells = [row[name] for row in rows for name in names]
    except KeyError:
        return None  # a row without a feature key: rows_table names it
    if set(map(type, cells)) != {float}:
        return None
    count = len(rows)
    # Transposed, so each column is one contiguous run of the buffer.
    buffer = pa.py_buffer(np.array(cells, dtype=np.float64).reshape(count, len(names)).T.copy())
    arrays = [
        pa.Array.from_buffers(pa.float64(), count, [None, buffer], offset=j * count)
        for j in range(len(names))
    ]
    return pa.Table.from_arrays(arrays, names=list(names))


def _cell(row: dict[str, Any], name: str, index: int) -> Any:
    try:
        return row[name]
    except KeyError:
        raise DataError(f"column {name!r}: missing from this row", column=name, row=index) from None


_FAST_TYPES = (pa.float64(), pa.int64(), pa.bool_(), pa.string())
_NUMBER_TYPES = {int, float}


def _column(name: str, values: list[Any]) -> pa.Array:
    present = set(map(type, values))
    present.discard(type(None))
    if present and (present <= _NUMBER_TYPES or present in ({bool}, {str})):
        # One JSON kind: Arrow's own conversion (C++). What it refuses or types otherwise
        # (integers beyond int64) takes the checking path below, which decides and names it.
        try:
            fast = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
            pass
        else:
            if fast.type in _FAST_TYPES:
                return fast
    return _checked_column(name, values)


def _checked_column(name: str, values: list[Any]) -> pa.Array:
    """The reference conversion of one JSON column (value by value), naming a bad value's row."""
    kinds: set[str] = set()
    for row, value in enumerate(values):
        if value is None:
            continue
        kind = type(value)
        if kind is bool:
            kinds.add("bool")
        elif kind is int or kind is float:
            kinds.add("number")
        elif kind is str:
            kinds.add("text")
        else:
            raise ConversionError(
                f"column {name!r}: {_kind(value)} is not a value (expected a number, string, boolean, null)",
                column=name,
                row=row,
            )
    if kinds == {"number"}:
        if all(type(v) is int and _INT64[0] <= v <= _INT64[1] for v in values if v is not None):
            return pa.array(values, pa.int64())
        return pa.array([None if v is None else _float(name, v, row) for row, v in enumerate(values)])
    if kinds == {"bool"}:
        return pa.array(values, pa.bool_())
    if not kinds:
        return pa.nulls(len(values), pa.float64())
    # Mixed kinds travel as text: the model's type conversion then names the first value
    # it cannot use, exactly as for a CSV cell.
    texts = [None if v is None else _text(v) for v in values]
    for row, text in enumerate(texts):
        if text is not None and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # JSON's \ud800 escapes can spell a lone surrogate, which is not text.
                raise ConversionError(
                    f"column {name!r}: {text!r} is not valid Unicode text (a lone surrogate)",
                    column=name,
                    row=row,
                ) from None
    return pa.array(texts, pa.string())


def _float(name: str, value: int | float, row: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ConversionError(
            f"column {name!r}: {value} is too large for a floating-point number", column=name, row=row
        ) from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# -- CSV and Parquet ---------------------------------------------------------------------------


def csv_table(
    body: bytes, max_rows: int, schema: InputSchema | None = None, keep: Sequence[str] = ()
) -> pa.Table:
    """A CSV body as text columns; 400 when unreadable, 413 above ``max_rows``.

    Only the columns the model uses (by ``schema``'s names, matched as the backends match
    them) and the ``keep`` columns are converted, as the batch reader does: a cell that is
    not valid UTF-8 in a column nobody uses is not an error. A header column without a name
    is named ``Unnamed: <position>`` (0-based, pandas' name) and is never a feature.
    """
    header = _csv_header(body)
    names = [c or unnamed(i) for i, c in enumerate(header)]
    named = [c for c in header if c]
    if schema is not None and schema.names is not None:
        try:
            used = set(schema.resolve(named))
        except DataError:
            used = set(named)  # the backend names what is missing, from the same columns
    else:
        used = set(named)
    wanted = [n for n in names if n in used or n in keep]
    if body and not body.endswith((b"\n", b"\r")):
        # A header alone with no line end (a valid CSV of no rows, as files read it) is
        # "too short" for Arrow's skip of the header line: end the last line.
        body += b"\n"
    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in wanted},
                include_columns=wanted,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise Problem(400, f"malformed CSV body: {_first_line(exc)}") from None
    if table.num_rows > max_rows:
        raise Problem(
            413, f"{table.num_rows} rows in one request, above the limit of {max_rows} (--max-rows)"
        )
    return table


def _csv_header(body: bytes) -> list[str]:
    stream = io.BytesIO(body)
    consumed = b""
    while line := stream.readline():
        consumed += line
        if consumed.count(b'"') % 2 == 0:
            break
    try:
        text = consumed.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(400, "malformed CSV body: the header is not valid UTF-8") from None
    records = list(csv.reader(io.StringIO(text)))
    if not records or not any(field.strip() for field in records[0]):
        raise Problem(400, "malformed CSV body: empty (no header row)")
    header = records[0]
    named = [c for c in header if c]
    duplicates = sorted({c for c in named if named.count(c) > 1})
    if duplicates:
        raise Problem(400, f"malformed CSV body: duplicate column name {duplicates[0]!r}")
    return header


def parquet_table(body: bytes, max_rows: int) -> pa.Table:
    """A Parquet body; the row limit is checked from the footer before reading any data."""
    try:
        handle = pq.ParquetFile(pa.BufferReader(body))
        rows = handle.metadata.num_rows
        if rows > max_rows:
            raise Problem(413, f"{rows} rows in one request, above the limit of {max_rows} (--max-rows)")
        names = handle.schema_arrow.names
        duplicates = sorted({c for c in names if names.count(c) > 1})
        if duplicates:
            raise Problem(400, f"malformed Parquet body: duplicate column name {duplicates[0]!r}")
        return handle.read()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise Problem(400, f"malformed Parquet body: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- answers -----------------------------------------------------------------------------------


def result_table(
    source: pa.Table,
    keep: Sequence[str],
    prediction: Prediction,
    classes: Sequence[Any] | None,
) -> pa.Table:
    """Kept columns of ``source``, then ``prediction`` or ``proba_<class>`` (the batch output's names)."""
    missing = [k for k in keep if k not in source.column_names]
    if missing:
        raise DataError(f"column {missing[0]!r} given with keep is not in the body", column=missing[0])
    columns: dict[str, pa.Array | pa.ChunkedArray] = {name: source.column(name) for name in keep}
    if prediction.labels is not None:
        labels = prediction.labels
        names = ["prediction"]
        values = [_label_array(labels)]
    else:
        assert prediction.probabilities is not None and classes is not None
        names = [f"proba_{label}" for label in classes]
        values = [pa.array(prediction.probabilities[:, j], pa.float64()) for j in range(len(names))]
    for name, array in zip(names, values, strict=True):
        if name in columns:
            raise DataError(f"kept column {name!r} clashes with a prediction column", column=name)
        columns[name] = array
    return pa.table(columns)


def _label_array(labels: np.ndarray[Any, Any]) -> pa.Array:
    if labels.dtype.kind in "OUS":
        return pa.array(labels.tolist(), pa.string())
    return pa.array(labels)


def encode_table(table: pa.Table, fmt: BodyFormat) -> bytes:
    """The answer's bytes: CSV (a value quoted only where CSV needs it, as output files are
    written: an id ``1`` is ``1``, not ``"1"``) or Parquet."""
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(table, sink, compression="snappy")
    else:
        writer = CsvWriter(sink, table.schema)
        for batch in table.to_batches():
            writer.write_batch(batch)
        writer.close()
    return bytes(sink.getvalue().to_pybytes())
