"""How an output's bytes are made: the writer for its format and its :class:`WriteStyle`.

Shared by the local writer (:class:`~modelrouter.storage.commit.AtomicOutput`) and the
object-store one (:class:`~modelrouter.storage.object_store.RemoteOutput`), so a file says the
same thing wherever it is written: CSV quoted only where needed (:mod:`.csv_writer`), in
its delimiter, compressed by its name; Parquet with its page compression and provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq
from modelrouter.storage.csv_writer import CsvWriter
from modelrouter.storage.formats import Compression, FileFormat
from modelrouter.storage.jsonl_writer import JsonLinesWriter

__all__ = [
    "PARQUET_COMPRESSIONS",
    "RowWriter",
    "WriteStyle",
    "copy_row_groups",
    "open_writer",
    "plain_columns",
]

#: What writes an output's rows: one writer per format.
RowWriter: TypeAlias = pq.ParquetWriter | CsvWriter | JsonLinesWriter

#: Parquet page compression codecs offered by ``--compression`` (``none``: uncompressed).
PARQUET_COMPRESSIONS = ("snappy", "zstd", "gzip", "none")


@dataclass(frozen=True)
class WriteStyle:
    """How an output file is written, beyond its format.

    CSV: ``delimiter``, ``decimal`` mark of floating-point values, and ``compression``
    of the whole stream (from the name: ``.csv.gz``…).
    Parquet: ``parquet_compression`` of its pages, key-value ``metadata`` in its footer
    (where its predictions came from; CSV has no place for it), and ``plain`` columns
    written without a dictionary (:func:`plain_columns`).
    """

    delimiter: str = ","
    decimal: str = "."
    compression: Compression | None = None
    parquet_compression: str = "snappy"
    metadata: Mapping[str, str] = field(default_factory=dict)
    plain: frozenset[str] = frozenset()


def plain_columns(schema: pa.Schema, kept: Sequence[str]) -> frozenset[str]:
    """The output columns not worth a Parquet dictionary: floating-point ones (scores,
    probabilities, continuous values) and kept integer, decimal or temporal ones (keys,
    timestamps). Such columns are mostly distinct: a dictionary is then as large as the
    values plus its indices, and building it costs time and memory (an int64 id column in
    1M rows: writes 3× slower, a 47 % larger file, ~9 MiB more peak memory; README).
    Labels, text and booleans keep theirs (a class label is a few bits per row).
    """
    kept_set = set(kept)

    def plain(f: pa.Field) -> bool:
        t = f.type
        if pa.types.is_floating(t):
            return True
        return f.name in kept_set and (
            pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_temporal(t)
        )

    return frozenset(f.name for f in schema if plain(f))


def open_writer(
    sink: str | Any, fmt: FileFormat, schema: pa.Schema, style: WriteStyle
) -> tuple[RowWriter, pa.NativeFile | None]:
    """The writer for ``sink`` (a local path, written natively, or a Python binary stream),
    and for CSV the byte stream it writes to: its owner closes that stream after the writer
    (a compressed stream writes its trailer then) or only flushes it (stdout)."""
    if fmt == "parquet":
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
    native: pa.NativeFile = pa.OSFile(sink, "wb") if isinstance(sink, str) else pa.PythonFile(sink, mode="w")
    if style.compression is not None:
        native = pa.CompressedOutputStream(native, style.compression)
    if fmt == "jsonl":
        return JsonLinesWriter(native, schema), native
    return CsvWriter(native, schema, style.delimiter, style.decimal), native


def copy_row_groups(source: Path, writer: pq.ParquetWriter, convert: Callable[[pa.Table], pa.Table]) -> None:
    """Every row group of the Parquet file ``source``, through ``convert``, to ``writer``
    (one row group at a time: memory is one row group, however large the file)."""
    handle = pq.ParquetFile(source, memory_map=False, pre_buffer=False)
    try:
        for group in range(handle.num_row_groups):
            writer.write_table(convert(handle.read_row_group(group)))
    finally:
        handle.close()
