"""Row-level error policy (``--on-error skip``): narrow a failed chunk down to its bad rows.

A chunk that fails is not rejected whole. :func:`score_tolerantly` removes, in order:

1. rows whose feature values cannot be converted to the model's input types (one vectorised
   pass per column);
2. when the model refuses non-finite values (:class:`RejectedValuesError`), every row with a
   NaN/inf feature — such a model refuses them all, so one pass finds them;
3. anything else, by bisection: a failing slice is split in two until the failing rows are
   single (the error's row hint, when there is one, is used as the split point).

Every input row ends up either scored or rejected with a reason naming the column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from modelrouter.backends import InputSchema, Prediction
from modelrouter.errors import ConversionError, DataError, RejectedValuesError
from modelrouter.features import NUMBER, column_as, unconvertible_rows

__all__ = ["Rejection", "Scored", "rejects_batch", "rejects_schema", "score_tolerantly"]

Score = Callable[[pa.RecordBatch], Prediction]


@dataclass(frozen=True)
class Rejection:
    """One refused row: ``row`` is 0-based within the chunk."""

    row: int
    column: str | None
    reason: str


@dataclass(frozen=True)
class Scored:
    """The rows that scored (indices into the chunk, ascending), their results, the rest."""

    kept: npt.NDArray[np.int64]
    prediction: Prediction
    rejections: list[Rejection]


def score_tolerantly(
    batch: pa.RecordBatch, score: Score, schema: InputSchema, features: Sequence[str]
) -> Scored:
    """Score ``batch``, setting aside the rows that cannot be scored (see module docstring)."""
    everything = np.arange(batch.num_rows, dtype=np.int64)
    try:
        return Scored(everything, score(batch), [])
    except DataError:
        pass
    rejections: list[Rejection] = []
    bad = np.zeros(batch.num_rows, dtype=bool)
    for name, dtype in zip(features, schema.dtypes, strict=True):
        mask = unconvertible_rows(batch, name, dtype) & ~bad
        for row in np.flatnonzero(mask).tolist():
            value = batch.column(name)[row].as_py()
            target = "a number" if dtype == NUMBER else dtype
            rejections.append(Rejection(row, name, f"cannot convert {value!r} to {target}"))
        bad |= mask
    candidates = everything[~bad]
    try:
        prediction = score(batch.take(pa.array(candidates)))
    except RejectedValuesError:
        nonfinite = _nonfinite_rows(batch, candidates, features, schema)
        for row, column in nonfinite:
            rejections.append(Rejection(row, column, "non-finite value rejected by the model"))
        candidates = np.setdiff1d(candidates, [r for r, _ in nonfinite])
        return _bisect_rest(batch, candidates, score, rejections)
    except DataError:
        return _bisect_rest(batch, candidates, score, rejections)
    return Scored(candidates, prediction, sorted(rejections, key=lambda r: r.row))


def _nonfinite_rows(
    batch: pa.RecordBatch, rows: npt.NDArray[np.int64], features: Sequence[str], schema: InputSchema
) -> list[tuple[int, str]]:
    subset = batch.take(pa.array(rows))
    first_bad: dict[int, str] = {}
    for name, dtype in zip(features, schema.dtypes, strict=True):
        if dtype == "string":
            continue
        values = column_as(subset, name, dtype)
        if values.dtype.kind != "f":
            continue
        for position in np.flatnonzero(~np.isfinite(values)):
            first_bad.setdefault(int(rows[position]), name)
    return sorted(first_bad.items())


def _bisect_rest(
    batch: pa.RecordBatch, rows: npt.NDArray[np.int64], score: Score, rejections: list[Rejection]
) -> Scored:
    parts: list[tuple[npt.NDArray[np.int64], Prediction]] = []
    _bisect(batch, rows, score, parts, rejections)
    parts.sort(key=lambda p: int(p[0][0]))
    kept = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    return Scored(kept, _concat([p[1] for p in parts]), sorted(rejections, key=lambda r: r.row))


def _bisect(
    batch: pa.RecordBatch,
    rows: npt.NDArray[np.int64],
    score: Score,
    parts: list[tuple[npt.NDArray[np.int64], Prediction]],
    rejections: list[Rejection],
) -> None:
    # An explicit stack rather than recursion: a chunk can hold many bad rows.
    stack = [rows]
    while stack:
        current = stack.pop()
        if len(current) == 0:
            continue
        try:
            parts.append((current, score(batch.take(pa.array(current)))))
            continue
        except DataError as exc:
            row_specific = isinstance(exc, ConversionError | RejectedValuesError) and exc.row == 0
            if len(current) == 1 or row_specific:
                rejections.append(Rejection(int(current[0]), exc.column, exc.message))
                stack.append(current[1:])
                continue
            hint = exc.row if exc.row is not None and 0 < exc.row < len(current) else None
        middle = hint if hint is not None else len(current) // 2
        stack += [current[middle:], current[:middle]]


def _concat(predictions: list[Prediction]) -> Prediction:
    if not predictions:
        return Prediction(labels=None, probabilities=None)
    labels = [p.labels for p in predictions if p.labels is not None]
    proba = [p.probabilities for p in predictions if p.probabilities is not None]
    return Prediction(
        labels=np.concatenate(labels) if labels else None,
        probabilities=np.concatenate(proba) if proba else None,
    )


def rejects_schema(source: pa.Schema) -> pa.Schema:
    """``row``, ``column``, ``reason``, then the input's columns as read (renamed on a clash)."""
    fixed = [pa.field("row", pa.int64()), pa.field("column", pa.string()), pa.field("reason", pa.string())]
    taken = {f.name for f in fixed}
    originals = [f.with_name(f"input_{f.name}") if f.name in taken else f for f in source]
    return pa.schema(fixed + originals)


def rejects_batch(
    batch: pa.RecordBatch, rejections: Sequence[Rejection], offset: int, schema: pa.Schema
) -> pa.RecordBatch:
    """The rejects of one chunk, rows numbered 1-based in the file (``offset`` = chunk start)."""
    rows = pa.array([r.row for r in rejections], pa.int64())
    originals = batch.take(rows)
    columns = [
        pa.array([offset + r.row + 1 for r in rejections], pa.int64()),
        pa.array([r.column for r in rejections], pa.string()),
        pa.array([r.reason for r in rejections], pa.string()),
        *originals.columns,
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
