"""CSV null spellings, applied to feature columns only (CONTRACT section 2).

A CSV is read with every cell as the text it holds, so kept columns and the rejects file
carry ``NA``, ``null``, ``N/A``, ``#N/A``, ``nan``, ``NULL``, ``n/a``, ``-nan``, ``1.#IND`` or an
empty cell exactly as written. Feature columns are converted to the model's types, and for
them these spellings (Arrow's defaults, which the CLI always used) mean "missing": NaN in a
float feature, a missing-value error for an integer one, ``None`` for a string one.
"""

from __future__ import annotations

import functools
from collections.abc import Collection

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["NULL_SPELLINGS", "decimal_commas", "feature_nulls"]

#: The cell texts read as missing in feature columns: Arrow's default list.
NULL_SPELLINGS: tuple[str, ...] = tuple(pacsv.ConvertOptions().null_values)


@functools.cache
def _spellings() -> pa.Array:
    # Built on first use, not at import: pyarrow imports pandas (≈0.2 s) the first time it
    # converts Python objects, and a Parquet run never needs this set.
    return pa.array(NULL_SPELLINGS, pa.string())


def feature_nulls(batch: pa.RecordBatch, features: Collection[str]) -> pa.RecordBatch:
    """``batch`` with the null spellings of its string columns in ``features`` made null.

    Other columns are the same arrays (no copy); a feature column that is also kept is
    changed only in this batch, which is the one the model sees.
    """
    columns = list(batch.columns)
    changed = False
    for index, name in enumerate(batch.schema.names):
        column = columns[index]
        if name not in features or not pa.types.is_string(column.type):
            continue
        missing = pc.is_in(column, value_set=_spellings())
        if not pc.any(missing).as_py():
            continue
        columns[index] = pc.if_else(missing, pa.scalar(None, pa.string()), column)
        changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch


def decimal_commas(batch: pa.RecordBatch, numeric: Collection[str]) -> pa.RecordBatch:
    """``batch`` with the text of its ``numeric`` feature columns read with a decimal comma.

    ``--decimal ','`` (European Excel exports: ``;``-separated, ``3,14``): a comma becomes
    the point Arrow parses. A value that holds a ``.`` is refused rather than guessed at: with
    a decimal comma a point is a thousands separator (``1.500`` is 1500 in de-DE), and reading
    it as 1.5 would change the number silently. Such a value is made unparseable, with the
    reason in the text the error and the rejects file show; other columns are untouched.
    """
    columns = list(batch.columns)
    changed = False
    for index, name in enumerate(batch.schema.names):
        column = columns[index]
        if name not in numeric or not pa.types.is_string(column.type):
            continue
        dotted = pc.fill_null(pc.match_substring(column, "."), False)
        column = pc.replace_substring(column, ",", ".")
        if pc.any(dotted).as_py():
            marked = pc.binary_join_element_wise(columns[index], " (a '.' with --decimal ',')", "")
            column = pc.if_else(dotted, marked, column)
        columns[index] = column
        changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch
