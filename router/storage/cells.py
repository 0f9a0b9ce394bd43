"""Columns that CSV cannot hold as they are, turned into text for CSV outputs.

Parquet keeps every Arrow type; a CSV cell is text. Arrow's CSV writer refuses nested
columns (list, struct, map, union) and binary values that are not UTF-8, so a kept column of
such a type would fail the run after scoring. For CSV outputs (the predictions and the
rejects file) these columns are written as:

* nested values (list, struct, map, union) and types Arrow cannot print: JSON text — maps as
  objects with their keys as text (as ``[key, value]`` pairs when a key repeats), bytes
  inside them base64, NaN/±inf as the strings
  ``"NaN"``/``"Infinity"``/``"-Infinity"``, dates and times in ISO 8601, decimals as strings;
* binary columns (any Parquet BYTE_ARRAY without a string annotation): base64, for every
  value, so the column means the same on every row whatever bytes it holds;
* other columns whose values are text or numbers (extension types such as UUID or JSON, a
  union's members): the text itself (a UUID as ``8-4-4-4-12`` hex), numbers as JSON prints them;
* nulls: empty cells, as for every type.

Parquet outputs are unchanged: they keep the original types.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["csv_schema", "to_csv_cells"]


def _writable(kind: pa.DataType) -> bool:
    """Whether Arrow's CSV writer prints this type itself (checked against pyarrow 26)."""
    if pa.types.is_dictionary(kind):
        return _writable(kind.value_type)
    return bool(
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_duration(kind)
    )


def _binary(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _binary(kind.value_type)
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
    )


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every column CSV cannot hold as it is typed as text (``string``)."""
    return pa.schema(
        [f if _writable(f.type) else f.with_type(pa.string()) for f in schema], metadata=schema.metadata
    )


def to_csv_cells(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the columns :func:`csv_schema` retyped turned into text (see module doc)."""
    if batch.schema.equals(schema):
        return batch
    columns = []
    for column, target in zip(batch.columns, schema, strict=True):
        if column.type.equals(target.type):
            columns.append(column)
        elif pa.types.is_string_view(column.type):
            columns.append(pc.cast(column, pa.string()))
        elif _binary(column.type):
            columns.append(pa.array([_b64(v) for v in column.to_pylist()], pa.string()))
        else:
            try:
                values = column.to_pylist(maps_as_pydicts="strict")
            except KeyError:  # a map with a repeated key: that value as pairs, nothing dropped
                values = [_as_py(scalar) for scalar in column]
            columns.append(pa.array([_cell(v) for v in values], pa.string()))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _as_py(scalar: pa.Scalar) -> Any:
    try:
        return scalar.as_py(maps_as_pydicts="strict")
    except KeyError:
        return scalar.as_py()


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _cell(value: Any) -> str | None:
    """One cell: nested values as JSON; a value that is text at the top (a UUID, a JSON
    extension's document, a union's string member) as that text, not JSON-quoted — its
    column means the text, and ``"abc"`` with quotes would be another value."""
    if value is None:
        return None
    plain = _plain(value)
    return plain if isinstance(plain, str) else _json(value)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a value from ``to_pylist`` (see the module docstring)."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | dt.timedelta):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _key(key: Any) -> str:
    plain = _plain(key)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"))
