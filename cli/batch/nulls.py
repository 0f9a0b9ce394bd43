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

__all__ = ["NULL_SPELLINGS", "feature_nulls"]

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
