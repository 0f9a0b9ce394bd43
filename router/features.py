"""Getting typed feature columns out of a frame (pandas or Arrow), with errors that point.

The CLI hands Arrow record batches straight to the backends (no detour through pandas for
ONNX); library users hand pandas DataFrames. Both go through :func:`column_as`, which casts
a column to the model's input type and, when a value cannot be converted, names the column,
the 0-based row and the value.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from modelrouter.errors import ConversionError

__all__ = [
    "NUMBER",
    "Frame",
    "column_as",
    "column_names",
    "frame_length",
    "numeric_matrix",
    "slice_frame",
    "to_arrow_type",
    "unconvertible_rows",
]

#: Schema dtype meaning "any number": numeric columns keep their type (as they would in a
#: DataFrame handed to the model directly), text is parsed as float64.
NUMBER = "number"

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported only when a DataFrame is actually handed in: the CLI feeds Arrow batches,
# and an ONNX run then never pays pandas' import time and memory (≈0.35 s, ≈45 MiB).
Frame: TypeAlias = "pd.DataFrame | pa.RecordBatch | pa.Table"

_ARROW = (pa.RecordBatch, pa.Table)

_ARROW_TYPES: dict[str, pa.DataType] = {
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}
NUMERIC_DTYPES = frozenset(_ARROW_TYPES) - {"string", "bool"}


def to_arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type for one of the schema's dtype names."""
    return _ARROW_TYPES[dtype]


def column_names(frame: Frame) -> list[str]:
    """Column names in frame order."""
    if isinstance(frame, _ARROW):
        return list(frame.schema.names)
    return [str(c) for c in frame.columns]


def frame_length(frame: Frame) -> int:
    """Number of rows."""
    return frame.num_rows if isinstance(frame, _ARROW) else len(frame)


def slice_frame(frame: Frame, start: int, stop: int) -> Frame:
    """Rows ``start`` to ``stop`` (exclusive) of ``frame``, of the same kind (no copy for Arrow)."""
    if isinstance(frame, _ARROW):
        return frame.slice(start, stop - start)
    return frame.iloc[start:stop]


def _arrow_column(frame: Frame, name: str) -> pa.Array | pa.ChunkedArray:
    if not isinstance(frame, _ARROW):
        series = frame[name]
        try:
            return pa.Array.from_pandas(series)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed Python objects: let every value speak for itself as text.
            return pa.array([None if v is None else str(v) for v in series], pa.string())
    return frame.column(name)


def column_as(frame: Frame, name: str, dtype: str) -> npt.NDArray[np.generic]:
    """Column ``name`` of ``frame`` as a numpy array of ``dtype`` (``string`` → object array).

    Nulls become NaN in float columns and ``None`` in string columns; a null in an integer
    or boolean column, or a value that does not parse, raises :class:`DataError` naming the
    column, the row (0-based, in :attr:`DataError.row`) and the value.
    """
    column = _arrow_column(frame, name)
    if dtype == NUMBER:
        kind = column.type
        if pa.types.is_floating(kind) or (
            (pa.types.is_integer(kind) or pa.types.is_boolean(kind)) and not column.null_count
        ):
            return _to_numpy(column)
        dtype = "float64"
    target = to_arrow_type(dtype)
    if column.type != target:
        try:
            column = _cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            row, value = _first_unconvertible(column, target)
            raise ConversionError(
                f"column {name!r}: cannot convert {value!r} to {dtype}", column=name, row=row
            ) from None
    if dtype == "string":
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    if column.null_count and not pa.types.is_floating(target):
        row = _first_null(column)
        raise ConversionError(
            f"column {name!r}: missing value where {dtype} is required", column=name, row=row
        )
    values = _to_numpy(column)
    return np.asarray(values, dtype=np.dtype(dtype))


def numeric_matrix(frame: Frame, names: Sequence[str], dtype: str | None = None) -> npt.NDArray[Any]:
    """The named columns as one C-ordered matrix, built with a single copy.

    ``dtype`` ``None`` means the common type of the columns (float32 columns stay float32,
    as ``DataFrame.to_numpy`` would give). Columns are converted while being copied into
    place, so a float64 → float32 narrowing costs no extra pass. Raises like :func:`column_as`.
    """
    uniform = _uniform_matrix(frame, names) if isinstance(frame, pa.Table) else None
    if uniform is not None:
        return uniform if dtype is None or uniform.dtype == np.dtype(dtype) else uniform.astype(dtype)
    columns = [column_as(frame, name, NUMBER) for name in names]
    target = np.dtype(dtype) if dtype is not None else np.result_type(*columns) if columns else np.float64
    matrix = np.empty((frame_length(frame), len(columns)), dtype=target)
    for j, column in enumerate(columns):
        matrix[:, j] = column
    return matrix


def _uniform_matrix(table: pa.Table, names: Sequence[str]) -> npt.NDArray[Any] | None:
    """The named columns as one matrix in one Arrow call (``RecordBatch.to_tensor``) when
    they share one integer or float type and an integer column holds no null (a float
    null becomes NaN): what :func:`numeric_matrix` builds column by column, at a third of
    the cost on the few rows of a served request (13 columns: 75 → 17 µs). ``None`` for
    anything else, which the column-by-column path converts or refuses."""
    if not names or table.num_rows == 0:
        return None
    try:
        selected = table.select(list(names))
    except (KeyError, pa.ArrowInvalid):
        return None  # a missing or ambiguous name: column_as names it
    kinds = set(selected.schema.types)
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    floating = pa.types.is_floating(kind) and kind != pa.float16()
    if not (floating or pa.types.is_integer(kind)):
        return None
    if not floating and any(column.null_count for column in selected.columns):
        return None
    batches = selected.combine_chunks().to_batches()
    if len(batches) != 1:
        return None
    return np.asarray(batches[0].to_tensor(null_to_nan=floating, row_major=True))


def unconvertible_rows(frame: Frame, name: str, dtype: str) -> npt.NDArray[np.bool_]:
    """Mask of the rows whose value in column ``name`` :func:`column_as` would refuse.

    Vectorised (for narrowing a failed chunk down to its bad rows); text is judged the way
    pandas parses numbers, which may accept a few spellings Arrow refuses — callers treat
    the mask as a first cut, not as proof.
    """
    column = _arrow_column(frame, name)
    rows = frame_length(frame)
    if dtype == "string" or (dtype == NUMBER and not pa.types.is_string(column.type)):
        return np.zeros(rows, dtype=bool)
    target = to_arrow_type("float64" if dtype == NUMBER else dtype)
    try:
        converted = _cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        import pandas as pd

        values = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
        parsed = pd.to_numeric(values, errors="coerce")
        bad = (parsed.isna() & values.notna()).to_numpy(dtype=bool, copy=True)
        if pa.types.is_integer(target):
            bad |= ~np.isclose(parsed.fillna(0) % 1, 0)
        # pandas' verdict is a first cut: a row it refuses that column_as converts (a boolean
        # spelling, Arrow's own number syntax) is not bad. Only the refused rows are retried.
        for row in np.flatnonzero(bad).tolist():
            scalar = column[row]
            if scalar.is_valid and _casts(scalar, target):
                bad[row] = False
        return bad
    if converted.null_count and not pa.types.is_floating(target):
        return np.asarray(pc.is_null(converted).to_numpy(zero_copy_only=False), dtype=bool)
    return np.zeros(rows, dtype=bool)


_PRIMITIVE: dict[pa.DataType, type[np.generic]] = {
    pa.float16(): np.float16,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
}


def _to_numpy(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """A numpy view of a numeric Arrow column (nulls → NaN in floats).

    Read straight from the Arrow buffer: pyarrow's own ``to_numpy`` imports pandas on first
    use, which a run that never sees a DataFrame should not pay for.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dtype = _PRIMITIVE.get(column.type)
    if dtype is not None and pa.types.is_floating(column.type) and column.null_count:
        column = pc.fill_null(column, float("nan"))
    if dtype is None or column.null_count:
        return np.asarray(column.to_numpy(zero_copy_only=False))
    data = column.buffers()[1]
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(data, dtype=dtype, count=len(column), offset=column.offset * itemsize)


_Castable = TypeVar("_Castable", pa.Array, pa.ChunkedArray, pa.Scalar)


def _cast(column: _Castable, target: pa.DataType) -> _Castable:
    """``pc.cast``, also for numbers written with spaces around them (``" 3.5"``, ``"3.5 "``)
    and for booleans written as text where a number is wanted (``True`` → 1).

    Arrow's cast refuses them where pandas reads them; they are common in hand-written CSV
    (``1, 2.5, 3``) and in CSV written by pandas from a bool column. The fallbacks run only
    when the plain cast fails, so a clean column costs nothing extra; text stays text.
    """
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if not text or pa.types.is_string(target):
            raise
        trimmed = pc.utf8_trim_whitespace(column)
        try:
            return pc.cast(trimmed, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            if not (pa.types.is_integer(target) or pa.types.is_floating(target)):
                raise
            # A boolean feature as pandas writes it to CSV (True/False; also true, FALSE):
            # the number a bool column gives the model. Value by value, so a column converts
            # exactly when each of its values does (the error then names the bad one).
            spelled = pc.fill_null(pc.is_in(pc.utf8_lower(trimmed), value_set=_booleans()), False)
            none = pa.scalar(None, trimmed.type)
            numbers = pc.cast(pc.if_else(spelled, none, trimmed), target)
            booleans = pc.cast(pc.cast(pc.if_else(spelled, trimmed, none), pa.bool_()), target)
            return pc.if_else(spelled, booleans, numbers)


@functools.cache
def _booleans() -> pa.Array:
    # Built on first use: pyarrow imports pandas (≈0.2 s) the first time it converts Python
    # objects, and a run that never needs this must not pay for it.
    return pa.array(["true", "false"], pa.string())


def _casts(scalar: pa.Scalar, target: pa.DataType) -> bool:
    try:
        _cast(scalar, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True


def _first_null(column: pa.Array | pa.ChunkedArray) -> int | None:
    nulls = np.flatnonzero(pc.is_null(column).to_numpy(zero_copy_only=False))
    return int(nulls[0]) if len(nulls) else None


def _first_unconvertible(
    column: pa.Array | pa.ChunkedArray, target: pa.DataType
) -> tuple[int | None, object]:
    """Find the first value that does not cast (only on the error path, so per-value is fine)."""
    for row, scalar in enumerate(column):
        if not scalar.is_valid:
            continue
        try:
            _cast(scalar, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return row, scalar.as_py()
    return None, None
