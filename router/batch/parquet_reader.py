"""The Parquet reader: row group by row group, page by page, never the whole file.

``pre_buffer=False`` and a small read buffer keep memory flat (docs/performance.md); batches
are decoded no larger than a chunk may be. The index pandas stored with a frame is exposed
as columns that ``-k`` can keep (:class:`_PandasIndex`), never as features.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from modelrouter.batch.input_file import (
    InputFile,
    ReadRequest,
    ReadSource,
    chunk_rows,
    first_line,
    reject_duplicates,
)
from modelrouter.errors import DataError
from modelrouter.storage import object_store as storage

__all__ = ["open_parquet"]


#: Parquet column chunks are read through a buffer of this many bytes, page by page. Without
#: one (pyarrow's default, 0) every column chunk of a row group is read whole before the first
#: page is decoded: a file written with pyarrow's default row groups (1M rows) held 180 MiB of
#: column chunks to stream 65,536-row batches; with 64 KiB it holds 60 MiB, at the same speed.
_PARQUET_BUFFER = 1 << 16
#: An object in a store is read by ranged requests (one per buffer fill): larger reads there.
_PARQUET_REMOTE_BUFFER = 1 << 20


def open_parquet(source: ReadSource, request: ReadRequest) -> InputFile:
    """Parquet from a file, an object (ranged reads, row group by row group: no download
    first) or stdin redirected from a regular file; a pipe or device is refused (Parquet
    needs a seekable file)."""
    name = request.name
    if source.stream:
        raise DataError(
            f"{name}: a pipe or device is read as a stream, and Parquet needs a seekable file; "
            "pipes and stdin take CSV"
        )
    if source.from_stdin:  # stdin redirected from a regular file (checked by the shell)
        return _open_parquet(os.fdopen(os.dup(0), "rb"), request)
    if source.pinned is not None:
        return _open_parquet(storage.open_random(source.pinned), request)
    return _open_parquet(source.location.path, request)


def _open_parquet(path: Path | BinaryIO | pa.NativeFile, request: ReadRequest) -> InputFile:
    """``path`` opened as Parquet: the columns ``request`` asks for (pandas' index among
    them), decoded in batches no larger than a chunk may be."""
    name = request.name
    handle = _parquet_file(path, name)
    remote = None if isinstance(path, Path) else path

    def close() -> None:
        handle.close()
        if remote is not None:  # ParquetFile closes only files it opened itself
            remote.close()

    index = _PandasIndex.of(handle.schema_arrow, request.keep)
    plan = _ColumnPlan.of(handle.schema_arrow, index, request.columns, name)
    batch_rows = _batch_rows(handle, plan, request.chunk_size)
    return InputFile(
        name,
        plan.schema,
        handle.metadata.num_rows,
        _batches(handle, plan, index, batch_rows, name, remote is not None, close),
        close,
        tuple(plan.exposed),
        index_columns=tuple(c for c in plan.exposed if c in index.exposed),
    )


def _parquet_file(path: Path | BinaryIO | pa.NativeFile, name: str) -> pq.ParquetFile:
    """``path`` opened as a Parquet file (its footer read); :class:`DataError` when it is not
    one. A store that fails (not the file's format) raises its own error, for ``open_input``
    to say so. A file handle given is closed on every error."""
    try:
        buffer = _PARQUET_REMOTE_BUFFER if isinstance(path, pa.NativeFile) else _PARQUET_BUFFER
        return pq.ParquetFile(path, pre_buffer=False, memory_map=False, buffer_size=buffer)
    except (pa.ArrowInvalid, OSError) as exc:
        if not isinstance(path, Path):
            path.close()
        if isinstance(path, pa.NativeFile) and not isinstance(exc, pa.ArrowInvalid):
            raise
        raise DataError(f"{name}: not a readable Parquet file ({first_line(exc)})") from None


@dataclass(frozen=True)
class _ColumnPlan:
    """Which columns a Parquet file shows (``exposed``: its own, pandas' index renamed, and
    computed range indexes), which of them are delivered (``wanted``, typed by ``schema``)
    and which physical columns are read for them (``read``)."""

    exposed: list[str]
    wanted: list[str]
    read: list[str]
    ranges: dict[str, _RangeIndex]
    schema: pa.Schema
    #: How many columns the file stores (the share ``read`` is of them sizes the batches).
    stored: int

    @classmethod
    def of(
        cls, physical: pa.Schema, index: _PandasIndex, columns: Sequence[str] | None, name: str
    ) -> _ColumnPlan:
        """The plan for reading ``columns`` (all when ``None``); :class:`DataError` when two
        exposed columns have the same name."""
        exposed = [index.renames.get(c, c) for c in physical.names] + [r.name for r in index.ranges]
        reject_duplicates(exposed, name)
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
        return cls(exposed, wanted, read, ranges, schema, len(physical.names))


def _batch_rows(handle: pq.ParquetFile, plan: _ColumnPlan, chunk_size: int) -> int:
    """Rows per decoded batch: no larger than a chunk may be (MAX_CHUNK_BYTES), from the row
    groups' own uncompressed sizes, so a wide file is never decoded --chunk-size rows at a time."""
    metadata = handle.metadata
    groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
    rows = sum(g.num_rows for g in groups)
    share = len(plan.read) / max(1, plan.stored)
    return chunk_rows(chunk_size, sum(g.total_byte_size for g in groups) * share / rows if rows else 0)


def _batches(
    handle: pq.ParquetFile,
    plan: _ColumnPlan,
    index: _PandasIndex,
    batch_rows: int,
    name: str,
    remote: bool,
    close: Callable[[], None],
) -> Iterator[pa.RecordBatch]:
    """The file's rows, row group by row group, with pandas' index exposed; ``close`` is
    called when they end or are abandoned. A read error is a :class:`DataError`: the
    store's (``remote``) or corrupt data."""
    offset = 0
    try:
        for group in range(handle.num_row_groups):
            for batch in handle.iter_batches(
                batch_size=batch_rows, row_groups=[group], columns=plan.read, use_threads=True
            ):
                yield index.expose(batch, plan.schema, plan.ranges, offset) if index else batch
                offset += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        if remote and not isinstance(exc, pa.ArrowInvalid):
            raise DataError(f"{name}: read failed ({storage.reason(exc)})") from None
        raise DataError(f"{name}: corrupt Parquet data ({first_line(exc)})") from None
    finally:
        close()


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
