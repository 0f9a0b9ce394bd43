"""Row-level error policy (``--on-error skip``): narrow a failed chunk down to its bad rows.

A chunk that fails is not rejected whole, and a row the model accepts is never rejected.
:func:`score_tolerantly` proceeds in order:

1. rows whose feature values cannot be converted to the model's input types are set aside
   (one vectorised pass per column);
2. the rest is grouped by the kinds of non-finite values a row holds (none; NaN; +inf; -inf;
   and their mixes). A model's refusal is per value kind — HistGradientBoosting scores NaN
   and inf, a ``SimpleImputer`` pipeline NaN but not inf — so each group is scored on its
   own: at most 8 calls, and a group the model accepts is kept whole;
3. a group that fails is split by *which columns* hold which kind (an imputer may cover some
   columns only). A split group the model refuses, and whose first row alone it refuses as
   well (:class:`RejectedValuesError`), is rejected with that reason; otherwise, and for
   failures of finite rows, the rows are bisected: a failing slice is split in two until the
   failing rows are single (the error's row hint, when there is one, is the split point).

Cost is bounded by the number of distinct (column, kind) patterns plus a bisection of the
rows that fail for other reasons. Every input row ends up either scored or rejected with a
reason naming the column, and scored rows keep their input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from modelrouter.backends import InputSchema, Prediction
from modelrouter.errors import ConversionError, DataError, ModelFaultError, RejectedValuesError
from modelrouter.features import NUMBER, column_as, unconvertible_rows

__all__ = ["Rejection", "Scored", "rejects_batch", "rejects_schema", "score_tolerantly"]

Score = Callable[[pa.RecordBatch], Prediction]
#: One row's non-finite pattern: ((column, kind), …); empty for a finite row.
Pattern = tuple[tuple[str, str], ...]
_Parts = list[tuple[npt.NDArray[np.int64], Prediction]]
#: What a row can fail with: its data, or the model failing on it (a fault that a single row
#: triggers is that row's rejection; one that every row triggers fails the run, see below).
_ROW_ERRORS = (DataError, ModelFaultError)


@dataclass(frozen=True)
class Rejection:
    """One refused row: ``row`` is 0-based within the chunk."""

    row: int
    column: str | None
    reason: str
    #: The model failed on the row (ModelFaultError), rather than refusing its data.
    fault: bool = False


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
    except _ROW_ERRORS as exc:
        first = exc
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
    parts: _Parts = []
    patterns = _nonfinite_patterns(batch, candidates, features, schema)
    kinds = [tuple(sorted({kind for _, kind in patterns[int(r)]})) for r in candidates]
    for kind_set in sorted(set(kinds)):
        rows = candidates[[k == kind_set for k in kinds]]
        if _try(batch, rows, score, parts):
            continue
        if not kind_set:
            _bisect(batch, rows, score, parts, rejections)
            continue
        by_pattern: dict[Pattern, list[int]] = {}
        for row in rows.tolist():
            by_pattern.setdefault(patterns[row], []).append(row)
        for pattern, members in by_pattern.items():
            _score_pattern(batch, np.asarray(members, dtype=np.int64), pattern, score, parts, rejections)
    if (
        isinstance(first, ModelFaultError)
        and batch.num_rows > 1
        and not parts
        and all(r.fault for r in rejections)
    ):
        # The model fails on every row: the model is broken, not the rows (exit 4).
        raise first
    return _assemble(parts, rejections)


def _try(batch: pa.RecordBatch, rows: npt.NDArray[np.int64], score: Score, parts: _Parts) -> bool:
    if len(rows) == 0:
        return True
    try:
        parts.append((rows, score(batch.take(pa.array(rows)))))
    except _ROW_ERRORS:
        return False
    return True


def _score_pattern(
    batch: pa.RecordBatch,
    rows: npt.NDArray[np.int64],
    pattern: Pattern,
    score: Score,
    parts: _Parts,
    rejections: list[Rejection],
) -> None:
    """Rows sharing one (column, kind) pattern: kept, rejected together, or bisected."""
    if _try(batch, rows, score, parts):
        return
    try:
        parts.append((rows[:1], score(batch.take(pa.array(rows[:1])))))
    except RejectedValuesError:
        # The model refuses this kind of value in these columns: so every row of the pattern.
        column, kind = pattern[0]
        reason = f"{_KIND_NAMES[kind]} in column {column!r} rejected by the model"
        rejections += [Rejection(int(r), column, reason) for r in rows]
        return
    except _ROW_ERRORS:
        pass  # the first row fails for another reason: find the failing rows one by one
    else:
        rows = rows[1:]  # the first row scores: the pattern is not what decides
    _bisect(batch, rows, score, parts, rejections)


_KIND_NAMES = {"nan": "NaN", "+inf": "inf", "-inf": "-inf"}


def _nonfinite_patterns(
    batch: pa.RecordBatch, rows: npt.NDArray[np.int64], features: Sequence[str], schema: InputSchema
) -> dict[int, Pattern]:
    """Each row's non-finite values as ((column, kind), …), for rows whose features convert."""
    found: dict[int, list[tuple[str, str]]] = {int(r): [] for r in rows}
    if len(rows) == 0:
        return {}
    subset = batch.take(pa.array(rows))
    for name, dtype in zip(features, schema.dtypes, strict=True):
        if dtype == "string":
            continue
        try:
            values = column_as(subset, name, dtype)
        except DataError:
            continue  # not convertible after all: bisection will name it
        if values.dtype.kind != "f":
            continue
        floats: npt.NDArray[np.float64] = values.astype(np.float64, copy=False)
        for kind, mask in (
            ("nan", np.isnan(floats)),
            ("+inf", np.isposinf(floats)),
            ("-inf", np.isneginf(floats)),
        ):
            for position in np.flatnonzero(mask).tolist():
                found[int(rows[position])].append((name, kind))
    return {row: tuple(pattern) for row, pattern in found.items()}


def _assemble(parts: _Parts, rejections: list[Rejection]) -> Scored:
    """The scored parts put back in input order (groups interleave in the chunk)."""
    if not parts:
        return Scored(np.empty(0, dtype=np.int64), _concat([]), sorted(rejections, key=lambda r: r.row))
    kept = np.concatenate([p[0] for p in parts])
    order = np.argsort(kept, kind="stable")
    merged = _concat([p[1] for p in parts])
    prediction = Prediction(
        labels=None if merged.labels is None else merged.labels[order],
        probabilities=None if merged.probabilities is None else merged.probabilities[order],
    )
    return Scored(kept[order], prediction, sorted(rejections, key=lambda r: r.row))


def _bisect(
    batch: pa.RecordBatch,
    rows: npt.NDArray[np.int64],
    score: Score,
    parts: _Parts,
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
        except _ROW_ERRORS as exc:
            row_specific = (
                isinstance(exc, ConversionError | RejectedValuesError | ModelFaultError) and exc.row == 0
            )
            if len(current) == 1 or row_specific:
                fault = isinstance(exc, ModelFaultError)
                rejections.append(Rejection(int(current[0]), exc.column, exc.message, fault))
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
