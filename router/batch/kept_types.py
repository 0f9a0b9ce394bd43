"""Kept CSV columns in a Parquet output: typed where their text allows it, exact always.

A CSV input is read as text (docs/specification.md §2: kept cells are copied exactly), but an
``id`` column of integers should be an integer column in Parquet, as it is when the input is
Parquet. The rule (docs/formats.md, "Kept CSV columns in Parquet"):

- each kept text column gets, from the first chunk, the first of ``int64``, ``float64``,
  ``bool`` whose every non-empty value *round-trips*: parsed, then formatted again
  (:func:`as_text`), it gives back its exact text. So ``7`` is an integer but ``007``, ``+7``
  and ``7.0`` are not; ``1.5`` is a float, ``nan``/``inf`` never are; only ``true``/``false``
  make a boolean. Empty cells are nulls; any other null spelling (``NA``) is text and keeps
  the column text. A first chunk without a value keeps it text;
- a later chunk whose text does not round-trip in the column's type *widens* the column to
  text. The rows already written are turned back into their text exactly (that is what the
  round-trip guarantees; a null is the empty cell it was read from) by rewriting the output's
  temporary file (:meth:`~modelrouter.storage.commit.AtomicOutput.rewrite`), row group by row
  group. The run never fails for it and no value changes its text.

Only an output that can be rewritten before its commit takes part (a local Parquet file); the
others (a stream, an object store upload, a database table, every part of a dataset) keep the
text columns they always had.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from modelrouter.batch.output_columns import string_array
from modelrouter.storage.writers import plain_columns

__all__ = ["KeptTypes", "Rewritable", "as_text", "fits", "infer", "typed"]

#: What a text column may become, in the order tried: an integer text is also a float text.
CANDIDATES: tuple[pa.DataType, ...] = (pa.int64(), pa.float64(), pa.bool_())

# No Python value is converted to Arrow here (no pa.scalar(""), no literal 0 in a compute
# call): pyarrow imports pandas (0.25 s of CPU) on its first such conversion, and a run on an
# ONNX model needs pandas nowhere else.
_EMPTY_TEXT = string_array(np.array([""], dtype=object))[0]  # type: ignore[index]


def _empty(column: pa.Array) -> pa.Array:
    """Whether each text cell is empty (null stays null): a length cast to bool is "not 0"."""
    return pc.invert(pc.cast(pc.binary_length(column), pa.bool_()))


def _nonempty(column: pa.Array) -> pa.Array:
    """``column`` with its empty cells as nulls (the typed column's missing values)."""
    return pc.if_else(_empty(column), pa.nulls(1, pa.string())[0], column)


def typed(column: pa.Array, kind: pa.DataType) -> pa.Array | None:
    """The text ``column`` as ``kind`` (empty cells null), or ``None`` when a value does not
    round-trip: it would not read back as the same text (:func:`as_text`)."""
    if kind == pa.string():
        return column
    values = _nonempty(column)
    try:
        parsed = pc.cast(values, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_floating(kind) and pc.any(pc.invert(pc.is_finite(parsed))).as_py():
        return None  # nan, inf: null spellings and overflows, never numbers here
    same = pc.equal(pc.cast(parsed, pa.string()), values)
    return parsed if pc.all(same).as_py() is not False else None


def fits(column: pa.Array, kind: pa.DataType) -> bool:
    """Whether every value of the text ``column`` round-trips as ``kind``."""
    return typed(column, kind) is not None


def infer(column: pa.Array) -> pa.DataType:
    """The type of a kept text column, from its values (:data:`CANDIDATES`, else text)."""
    if column.null_count == len(column) or pc.all(_empty(column)).as_py():
        return pa.string()  # nothing to tell the type by
    for kind in CANDIDATES:
        if fits(column, kind):
            return kind
    return pa.string()


def as_text(column: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """A typed kept column back as the text it was read from (nulls: the empty cell)."""
    if kind == pa.string():
        return column
    return pc.fill_null(pc.cast(column, pa.string()), _EMPTY_TEXT)


class Rewritable(Protocol):
    """An output whose rows written so far can be rewritten with a wider schema."""

    schema: pa.Schema

    def rewrite(
        self, schema: pa.Schema, convert: Callable[[pa.Table], pa.Table], plain: frozenset[str]
    ) -> None: ...


class KeptTypes:
    """Types the kept text columns of the batches written to ``output``.

    The output is opened with the text schema; the first batch decides each kept column's
    type (the output restarts, empty, with the typed schema), later batches are cast to it
    or widen a column back to text (see the module docstring).
    """

    def __init__(self, output: Rewritable, kept: Sequence[str]) -> None:
        self.output = output
        self.kept = list(kept)
        text = output.schema
        self.columns = [c for c in dict.fromkeys(kept) if text.field(c).type == pa.string()]
        self.types: dict[str, pa.DataType] | None = None

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` (kept columns as text) in the output's current schema."""
        if self.types is None:
            if not batch.num_rows:  # every row of the chunk rejected: nothing to tell by
                return batch
            self.types = {c: infer(batch.column(c)) for c in self.columns}
            if any(kind != pa.string() for kind in self.types.values()):
                self._restart(batch.schema, ())
        arrays = {}
        widen = []
        for name, kind in self.types.items():
            if kind == pa.string():
                continue
            converted = typed(batch.column(name), kind)
            if converted is None:
                widen.append(name)
            else:
                arrays[name] = converted
        if widen:
            for name in widen:
                self.types[name] = pa.string()
            self._restart(batch.schema, widen)
        if not arrays:
            return batch
        columns = [arrays.get(name, batch.column(i)) for i, name in enumerate(batch.schema.names)]
        return pa.RecordBatch.from_arrays(columns, schema=self.output.schema)

    def _restart(self, text: pa.Schema, widen: Sequence[str]) -> None:
        """The output with the current types; the ``widen`` columns of the rows written so
        far turned back into their text."""
        was = self.output.schema
        schema = self._schema(text)
        bare = schema.remove_metadata()

        def convert(table: pa.Table) -> pa.Table:
            for name in widen:
                at = table.schema.get_field_index(name)
                table = table.set_column(
                    at, schema.field(name), as_text(table.column(at), was.field(name).type)
                )
            # (the rows before the types were decided are none: a cast of no rows)
            return table.cast(bare)

        self.output.rewrite(schema, convert, plain_columns(schema, self.kept))

    def _schema(self, text: pa.Schema) -> pa.Schema:
        types = self.types or {}
        fields = [f.with_type(types.get(f.name, f.type)) for f in text]
        return pa.schema(fields, metadata=text.metadata)
