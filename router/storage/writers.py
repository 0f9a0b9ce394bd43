"""How an output's bytes are made: the writer its format registers, and its :class:`WriteStyle`.

Shared by the local writer (:class:`~modelrouter.storage.commit.AtomicOutput`) and the
object-store one (:class:`~modelrouter.storage.object_store.RemoteOutput`), so a file says the
same thing wherever it is written: CSV quoted only where needed (:mod:`.csv_writer`), in
its delimiter, compressed by its name; Parquet with its page compression and provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq
from modelrouter.storage.formats import FORMATS, Compression, FileFormat

__all__ = [
    "PARQUET_COMPRESSIONS",
    "RowWriter",
    "WriteStyle",
    "WriterFactory",
    "copy_row_groups",
    "open_writer",
    "plain_columns",
    "text_sink",
]


class RowWriter(Protocol):
    """What writes an output's rows: one writer per format (Parquet's is pyarrow's own)."""

    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


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


#: A format's writer factory (:attr:`FormatSpec.writer <modelrouter.storage.formats.FormatSpec>`):
#: ``(sink, schema, style)`` → the row writer and the byte stream its owner closes.
WriterFactory: TypeAlias = Callable[[Any, pa.Schema, WriteStyle], tuple[RowWriter, "pa.NativeFile | None"]]


def open_writer(
    sink: str | Any, fmt: FileFormat, schema: pa.Schema, style: WriteStyle
) -> tuple[RowWriter, pa.NativeFile | None]:
    """The writer for ``sink`` (a local path, written natively, or a Python binary stream),
    made by the format's registered factory (:data:`~modelrouter.storage.formats.FORMATS`),
    and the byte stream it writes to when there is one: its owner closes that stream after
    the writer (a compressed stream writes its trailer then) or only flushes it (stdout)."""
    factory: WriterFactory = FORMATS[fmt].open_writer()
    return factory(sink, schema, style)


def text_sink(sink: str | Any, style: WriteStyle) -> pa.NativeFile:
    """The byte stream a text format writes to: the local file or Python stream ``sink``,
    compressed as the output's name says (:attr:`WriteStyle.compression`)."""
    native: pa.NativeFile = pa.OSFile(sink, "wb") if isinstance(sink, str) else pa.PythonFile(sink, mode="w")
    if style.compression is not None:
        native = pa.CompressedOutputStream(native, style.compression)
    return native


def copy_row_groups(source: Path, writer: RowWriter, convert: Callable[[pa.Table], pa.Table]) -> None:
    """Every row group of the Parquet file ``source``, through ``convert``, to ``writer``
    (one row group at a time: memory is one row group, however large the file)."""
    assert isinstance(writer, pq.ParquetWriter)  # only a rewritable format is copied
    handle = pq.ParquetFile(source, memory_map=False, pre_buffer=False)
    try:
        for group in range(handle.num_row_groups):
            writer.write_table(convert(handle.read_row_group(group)))
    finally:
        handle.close()
