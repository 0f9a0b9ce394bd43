"""The Parquet writer factory: pyarrow's own writer, with the output's page compression,
provenance metadata and columns written without a dictionary (:class:`WriteStyle`)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from modelrouter.storage.writers import RowWriter, WriteStyle

__all__ = ["open_parquet_writer"]


def open_parquet_writer(
    sink: str | Any, schema: pa.Schema, style: WriteStyle
) -> tuple[RowWriter, pa.NativeFile | None]:
    """A Parquet writer to ``sink`` (a local path, written natively, or a Python stream) and
    the stream it wraps (``None`` for a path)."""
    if style.metadata:
        schema = schema.with_metadata({**(schema.metadata or {}), **style.metadata})
    codec = None if style.parquet_compression == "none" else style.parquet_compression
    # Listed by top-level name: a nested column's leaves (``s.x``) are written plain.
    dictionary: bool | list[str] = (
        [f.name for f in schema if f.name not in style.plain] if style.plain else True
    )
    # A Python stream (stdout, a FIFO) is wrapped here so that its owner decides whether
    # it is closed (a FIFO) or only flushed (stdout), as for CSV.
    target = sink if isinstance(sink, str) else pa.PythonFile(sink, mode="w")
    writer = pq.ParquetWriter(target, schema, compression=codec, use_dictionary=dictionary)
    return writer, None if isinstance(target, str) else target
