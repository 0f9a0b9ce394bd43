"""A JSON Lines writer: one JSON object per row, keys in column order, ``\\n`` after each.

What SageMaker Batch Transform and Vertex AI batch prediction read and write. Values keep
their JSON types: numbers as numbers (float32 values in their shortest round-trip form, as
in CSV — ``0.99927``, not ``0.9992700219154358``), text as strings, booleans, nulls as
``null``. NaN and ±infinity, which JSON cannot hold, are written ``null``; dates and times
in ISO 8601, decimals as strings, bytes as base64, nested values as JSON arrays/objects.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from modelrouter.storage.writers import RowWriter, WriteStyle

__all__ = ["JsonLinesWriter", "open_jsonl_writer"]


class JsonLinesWriter:
    """Writes batches of one schema as JSON Lines to ``sink``; not thread-safe.

    Same interface as :class:`~modelrouter.storage.csv_writer.CsvWriter`: ``sink`` is not
    closed by :meth:`close` (its owner closes it).
    """

    def __init__(self, sink: pa.NativeFile, schema: pa.Schema) -> None:
        self.sink = sink
        self.schema = schema
        self._keys = [json.dumps(name, ensure_ascii=False) for name in schema.names]

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append ``batch``'s rows (its schema must be :attr:`schema`)."""
        if batch.num_rows == 0:
            return
        columns = [_encoded(column) for column in batch.columns]
        lines = []
        for row in zip(*columns, strict=True):
            fields = ",".join(f"{key}:{value}" for key, value in zip(self._keys, row, strict=True))
            lines.append("{" + fields + "}\n")
        self.sink.write("".join(lines).encode("utf-8"))

    def close(self) -> None:
        """Flush what was written (the sink stays open)."""
        self.sink.flush()


def _encoded(column: pa.Array) -> list[str]:
    """Each value of ``column`` as JSON text."""
    kind = column.type
    if pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False)
        # numpy prints the shortest text that reads back as the same value of its own width.
        texts = np.asarray(values, dtype=values.dtype if values.dtype.kind == "f" else np.float64).astype(str)
        valid = np.isfinite(np.asarray(values, dtype=np.float64))
        if column.null_count:
            valid &= np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return [str(t) if ok else "null" for t, ok in zip(texts.tolist(), valid.tolist(), strict=True)]
    return [json.dumps(_plain(v), ensure_ascii=False, allow_nan=False) for v in column.to_pylist()]


def _plain(value: Any) -> Any:
    """``value`` (from Arrow's ``to_pylist``) as something :func:`json.dumps` writes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return _plain_sequence(value)
    return _plain_scalar(value)


def _plain_sequence(value: list[Any] | tuple[Any, ...]) -> Any:
    """A list as a JSON array, or as an object when it is a map column's (key, value) pairs."""
    if isinstance(value, list) and _is_map_entries(value):
        return {str(k): _plain(v) for k, v in value}
    return [_plain(v) for v in value]


def _is_map_entries(value: list[Any]) -> bool:
    """Whether ``value`` reads as a map column's entries: (key, value) pairs with distinct keys.

    Arrow's ``to_pylist`` gives a map value as such a list; keys that repeat once made text
    would lose entries in an object, so such a list stays an array of pairs."""
    if not value or not all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return False
    keys = [str(k) for k, _ in value]
    return len(set(keys)) == len(keys)


def _plain_scalar(value: Any) -> Any:
    """Bytes as base64, dates and times in ISO 8601, durations in seconds, the rest as text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    # Decimals as text keep every digit (a JSON number would be read back as a float).
    return str(value)


def open_jsonl_writer(
    sink: str | Any, schema: pa.Schema, style: WriteStyle
) -> tuple[RowWriter, pa.NativeFile | None]:
    """The JSON Lines factory of the format registry: a writer to ``sink`` (a local path or a
    Python stream) through its byte stream, compressed as the name says; the stream is
    returned for its owner to close."""
    from modelrouter.storage.writers import text_sink

    native = text_sink(sink, style)
    return JsonLinesWriter(native, schema), native
