"""CSV null spellings, applied to feature columns only (docs/specification.md §2).

A CSV is read with every cell as the text it holds, so kept columns and the rejects file
carry ``NA``, ``null``, ``N/A``, ``#N/A``, ``nan``, ``NULL``, ``n/a``, ``-nan``, ``1.#IND`` or an
empty cell exactly as written. Feature columns are converted to the model's types, and for
them these spellings (Arrow's defaults, which the CLI always used) mean "missing": NaN in a
float feature, a missing-value error for an integer one, ``None`` for a string one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from modelrouter.batch.output_columns import string_array

__all__ = ["NULL_SPELLINGS", "decimal_commas", "feature_nulls"]

#: The cell texts read as missing in feature columns: Arrow's default list.
NULL_SPELLINGS: tuple[str, ...] = tuple(pacsv.ConvertOptions().null_values)


@functools.cache
def _spellings() -> pa.Array:
    # Built from its UTF-8 bytes (string_array), not with pa.array(): pyarrow imports pandas
    # (0.25 s of CPU) the first time it converts Python objects, and nothing else in a run on
    # an ONNX model needs pandas.
    strings = string_array(np.array(NULL_SPELLINGS, dtype=object))
    assert strings is not None  # every spelling is a str
    return strings


def feature_nulls(batch: pa.RecordBatch, features: Collection[str]) -> pa.RecordBatch:
    """``batch`` with the null spellings of its string columns in ``features`` made null.

    Other columns are the same arrays (no copy); a feature column that is also kept is
    changed only in this batch, which is the one the model sees.
    """

    def nulled(column: pa.Array) -> pa.Array | None:
        missing = pc.is_in(column, value_set=_spellings())
        if not pc.any(missing).as_py():
            return None
        return pc.if_else(missing, pa.scalar(None, pa.string()), column)

    return _rewrite_text_columns(batch, features, nulled)


def decimal_commas(batch: pa.RecordBatch, numeric: Collection[str]) -> pa.RecordBatch:
    """``batch`` with the text of its ``numeric`` feature columns read with a decimal comma.

    ``--decimal ','`` (European Excel exports: ``;``-separated, ``3,14``): a comma becomes
    the point Arrow parses. A value that holds a ``.`` is refused rather than guessed at: with
    a decimal comma a point is a thousands separator (``1.500`` is 1500 in de-DE), and reading
    it as 1.5 would change the number silently. Such a value is made unparseable, with the
    reason in the text the error and the rejects file show; other columns are untouched.
    """

    def pointed(column: pa.Array) -> pa.Array:
        dotted = pc.fill_null(pc.match_substring(column, "."), False)
        replaced = pc.replace_substring(column, ",", ".")
        if not pc.any(dotted).as_py():
            return replaced
        marked = pc.binary_join_element_wise(column, " (a '.' with --decimal ',')", "")
        return pc.if_else(dotted, marked, replaced)

    return _rewrite_text_columns(batch, numeric, pointed)


def _rewrite_text_columns(
    batch: pa.RecordBatch, names: Collection[str], rewrite: Callable[[pa.Array], pa.Array | None]
) -> pa.RecordBatch:
    """``batch`` with each string column in ``names`` replaced by ``rewrite(column)``
    (None: unchanged); the batch itself when nothing changed (no copy)."""
    columns = list(batch.columns)
    changed = False
    for index, name in enumerate(batch.schema.names):
        column = columns[index]
        if name not in names or not pa.types.is_string(column.type):
            continue
        rewritten = rewrite(column)
        if rewritten is not None:
            columns[index] = rewritten
            changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch
