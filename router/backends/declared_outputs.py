"""What a model declares it returns, and the one check of what it actually returned.

Model output is never trusted (docs/specification.md §2): every backend's raw result goes through
:func:`checked_prediction` before anyone sees it. A model that returns the wrong number of
rows, another shape than it declares, labels that are not among its classes (or of another
type), or probabilities that do not fit its classes, are NaN or lie outside [0, 1], raises
:class:`ModelOutputError` naming the model and what it returned — a model error, never
silently cut, padded or passed on.

Probabilities within :data:`PROBABILITY_SLACK` of [0, 1] are clipped into it: float32 models
(ONNX) give values like ``1.0000001192092896``, which are rounding, not information.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.errors import ModelOutputError

__all__ = [
    "PROBABILITY_SLACK",
    "OutputSpec",
    "RawOutput",
    "checked_labels",
    "checked_probabilities",
    "refuse_repeated_classes",
]

#: How far outside [0, 1] a probability may lie and still be clipped (float32 rounding: the
#: float32 spacing just below 1.0 is 6e-8, and a sum of a few float32 terms drifts by a few
#: of those). Anything farther out is a model error.
PROBABILITY_SLACK = 1e-6

_NUMERIC = "biuf"
_FLOAT64: np.dtype[Any] = np.dtype(np.float64)


@dataclass(frozen=True)
class RawOutput:
    """What a backend got from its model, unchecked (any Python object at all)."""

    labels: object = None
    probabilities: object = None


@dataclass(frozen=True)
class OutputSpec:
    """What a model declares it returns, known without running it.

    One entry per output (target): ``classes`` holds its class labels (``None`` for a
    regression output, or a classifier output whose labels are unknown), ``dtypes`` the dtype
    its labels/values are written with (``object`` for text). ``proba_dtype`` is the dtype of
    the probabilities (float32 for float32 models, written as such).
    """

    classes: tuple[npt.NDArray[np.generic] | None, ...]
    dtypes: tuple[np.dtype[Any], ...]
    proba_dtype: np.dtype[Any] = _FLOAT64

    def __post_init__(self) -> None:
        if not self.dtypes or len(self.classes) != len(self.dtypes):
            raise ValueError(
                f"an output spec needs one class entry per output (got {len(self.classes)} "
                f"classes for {len(self.dtypes)} outputs)"
            )

    @property
    def count(self) -> int:
        """Number of outputs (targets) per row."""
        return len(self.dtypes)

    @property
    def multi(self) -> bool:
        """Whether the model predicts more than one target."""
        return self.count > 1

    @property
    def has_classes(self) -> bool:
        """Whether every output has known class labels (so probabilities can be named)."""
        return all(c is not None for c in self.classes)

    @property
    def proba_width(self) -> int:
        """Columns of the probability matrix: the classes of every output, in order."""
        return sum(len(c) for c in self.classes if c is not None)

    def label_names(self) -> list[str]:
        """Output column names for predict: ``prediction`` or ``prediction_0 …``."""
        if not self.multi:
            return ["prediction"]
        return [f"prediction_{i}" for i in range(self.count)]

    def proba_names(self) -> list[str]:
        """Output column names for predict-proba: ``proba_<class>`` or ``proba_<output>_<class>``."""
        names: list[str] = []
        for i, classes in enumerate(self.classes):
            assert classes is not None, "probabilities need known classes"
            prefix = "proba_" if not self.multi else f"proba_{i}_"
            names += [f"{prefix}{_plain(label)}" for label in classes]
        return names

    def describe(self) -> str:
        """The declared shape, for messages: ``one value per row`` / ``3 outputs per row``."""
        return "one output per row" if not self.multi else f"{self.count} outputs per row"


def refuse_repeated_classes(spec: OutputSpec, who: str) -> None:
    """A model whose classes repeat a label (``("a", "a")``) cannot say which of the two a
    probability or a prediction is: a model error (exit 4) when it is loaded, before its
    ``proba_<class>`` columns are named. Labels are compared as written (``1`` and ``"1"``
    give the same column name, so they repeat too)."""
    from modelrouter.errors import ModelLoadError

    for i, classes in enumerate(spec.classes):
        if classes is None:
            continue
        written = [str(_plain(label)) for label in classes]
        repeated = sorted({w for w in written if written.count(w) > 1})
        if repeated:
            where = f"output {i} " if spec.multi else ""
            shown = ", ".join(repr(str(c)) for c in classes[:10]) + (", …" if len(classes) > 10 else "")
            raise ModelLoadError(
                f"{who}: the model's {where}classes repeat the label {repeated[0]!r} ({shown}); "
                "each class needs a distinct label"
            )


def checked_labels(value: object, rows: int, spec: OutputSpec, who: str) -> npt.NDArray[Any]:
    """``value`` (what predict returned for ``rows`` rows) as the declared array, or raise.

    Single output: shape ``(rows,)`` (a column vector ``(rows, 1)`` is accepted and
    flattened). Several outputs: ``(rows, count)``. Each output's values must be among its
    classes (classifiers: same kind of value, text or number) or numbers (regressors), and are
    returned in the declared dtype.
    """
    array = _as_array(value, who, "predict")
    if array.shape[0] != rows:
        raise ModelOutputError(f"{who}: predict returned {array.shape[0]} rows for {rows} input rows")
    if not spec.multi:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ModelOutputError(
                f"{who}: predict returned shape {array.shape} where {spec.describe()} is declared "
                f"(shape ({rows},))"
            )
        return _checked_column(array, spec.classes[0], spec.dtypes[0], who, "")
    if array.ndim != 2 or array.shape[1] != spec.count:
        raise ModelOutputError(
            f"{who}: predict returned shape {array.shape} where {spec.describe()} are declared "
            f"(shape ({rows}, {spec.count}))"
        )
    columns = [
        _checked_column(array[:, i], spec.classes[i], spec.dtypes[i], who, f" in output {i}")
        for i in range(spec.count)
    ]
    common = np.result_type(*columns) if all(c.dtype.kind in _NUMERIC for c in columns) else np.dtype(object)
    result = np.empty((rows, spec.count), dtype=common)
    for i, column in enumerate(columns):
        result[:, i] = column
    return result


def checked_probabilities(
    value: object, rows: int, spec: OutputSpec, who: str
) -> npt.NDArray[np.floating[Any]]:
    """``value`` (what predict_proba returned) as one ``(rows, proba_width)`` matrix, or raise.

    A multi-output model may return a list of one ``(rows, classes_i)`` matrix per output (as
    scikit-learn does) or a stacked ``(count, rows, max classes)`` array (as skl2onnx does).
    Values must be finite and within [0, 1] (up to :data:`PROBABILITY_SLACK`, then clipped).
    """
    widths = [0 if c is None else len(c) for c in spec.classes]
    if value is None:
        raise ModelOutputError(f"{who}: predict_proba returned None")
    pieces: list[object]
    if not spec.multi:
        pieces = [value]
    elif isinstance(value, list | tuple):
        if len(value) != spec.count:
            raise ModelOutputError(
                f"{who}: predict_proba returned {len(value)} matrices where {spec.count} outputs are declared"
            )
        pieces = list(value)
    else:
        stacked = _as_array(value, who, "predict_proba")
        if stacked.ndim == 3 and stacked.shape[0] == spec.count and stacked.shape[2] >= max(widths):
            pieces = [stacked[i, :, : widths[i]] for i in range(spec.count)]  # padding dropped
        else:
            pieces = [stacked]
            widths = [sum(widths)]
    matrices = []
    for i, (piece, width) in enumerate(zip(pieces, widths, strict=True)):
        where = "" if len(pieces) == 1 else f" for output {i}"
        matrix = _as_array(piece, who, "predict_proba")
        if matrix.dtype.kind not in _NUMERIC:
            raise ModelOutputError(
                f"{who}: predict_proba returned {_kind(matrix)} values{where}, not numbers"
            )
        if matrix.shape != (rows, width):
            raise ModelOutputError(
                f"{who}: predict_proba returned shape {matrix.shape}{where} where ({rows}, {width}) "
                f"is declared ({rows} rows × {width} classes)"
            )
        matrices.append(matrix.astype(spec.proba_dtype, copy=False))
    result = matrices[0] if len(matrices) == 1 else np.concatenate(matrices, axis=1)
    return _in_unit_interval(result, who)


def _in_unit_interval(matrix: npt.NDArray[np.floating[Any]], who: str) -> npt.NDArray[np.floating[Any]]:
    if not matrix.size:
        return matrix
    finite = np.isfinite(matrix)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise ModelOutputError(
            f"{who}: predict_proba returned {float(matrix[row, column])} (row {int(row) + 1}, "
            f"column {int(column) + 1}); probabilities must be numbers in [0, 1]"
        )
    low, high = float(matrix.min()), float(matrix.max())
    if low < -PROBABILITY_SLACK or high > 1.0 + PROBABILITY_SLACK:
        worst = low if low < -PROBABILITY_SLACK else high
        row, column = np.argwhere(matrix == worst)[0]
        raise ModelOutputError(
            f"{who}: predict_proba returned {worst:.9g} (row {int(row) + 1}, column {int(column) + 1}); "
            "probabilities must be in [0, 1]"
        )
    if low < 0.0 or high > 1.0:
        # float32 rounding: clip in the model's own dtype (no widening).
        matrix = np.clip(matrix, 0.0, 1.0).astype(matrix.dtype, copy=False)
    return matrix


def _as_array(value: object, who: str, method: str) -> npt.NDArray[Any]:
    if value is None:
        raise ModelOutputError(f"{who}: {method} returned None")
    if isinstance(value, str | bytes | dict):
        raise ModelOutputError(f"{who}: {method} returned a {type(value).__name__}, not an array")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelOutputError(
            f"{who}: {method} returned a {type(value).__name__} that is not a rectangular array ({detail})"
        ) from None
    if array.ndim == 0:
        raise ModelOutputError(
            f"{who}: {method} returned a single {type(value).__name__}, not one value per row"
        )
    return array


def _checked_column(
    values: npt.NDArray[Any],
    classes: npt.NDArray[np.generic] | None,
    dtype: np.dtype[Any],
    who: str,
    where: str,
) -> npt.NDArray[Any]:
    """One output's values in ``dtype``, after checking they are what the model declares."""
    if classes is not None:
        return _checked_labels(values, classes, dtype, who, where)
    if dtype.kind in "OUS":
        # A classifier whose class list is unknown (an ONNX graph without one): text labels.
        bad = _first(values, lambda v: not isinstance(v, str))
        if bad is not None:
            raise ModelOutputError(f"{who}: predict returned {bad!r}{where} where text labels are declared")
        return values.astype(object, copy=False)
    if values.dtype.kind not in _NUMERIC:
        bad = _first(values, lambda v: not _is_number(v))
        if bad is not None or values.dtype.kind not in "O":
            shown = repr(bad) if bad is not None else f"{_kind(values)} values"
            raise ModelOutputError(f"{who}: predict returned {shown}{where} where numbers are declared")
    return values.astype(dtype, copy=False)


def _checked_labels(
    values: npt.NDArray[Any], classes: npt.NDArray[np.generic], dtype: np.dtype[Any], who: str, where: str
) -> npt.NDArray[Any]:
    if classes.dtype.kind in _NUMERIC and values.dtype.kind in _NUMERIC:
        member = np.isin(values, classes)
        if not member.all():
            bad = values[np.flatnonzero(~member)[0]]
            raise ModelOutputError(
                f"{who}: predict returned label {_plain(bad)!r}{where}, which is not one of its classes "
                f"{_shown(classes)}"
            )
        return values.astype(classes.dtype, copy=False)
    # Text (or mixed) labels: compare value and kind, so 1 and "1" are different classes.
    allowed = {(_category(c), c) for c in classes.tolist()}
    for label in _distinct(values):
        if not _member((_category(label), label), allowed):
            raise ModelOutputError(
                f"{who}: predict returned label {label!r} ({type(label).__name__}){where}, which is not "
                f"one of its classes {_shown(classes)}"
            )
    if dtype.kind in "OUS":
        return values.astype(object, copy=False)
    return values.astype(dtype, copy=False)


def _category(value: object) -> str:
    if isinstance(value, str | bytes | np.str_ | np.bytes_):
        return "text"
    if _is_number(value):
        return "number"
    return type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number | np.bool_) and not isinstance(value, str)


def _distinct(values: npt.NDArray[Any]) -> list[Any]:
    """The distinct values in first-seen order (all of them when some are unhashable)."""
    items: list[Any] = values.tolist()
    try:
        return list(dict.fromkeys(items))
    except TypeError:  # lists, dicts… inside an object array
        return items


def _member(key: tuple[str, Any], allowed: set[tuple[str, Any]]) -> bool:
    try:
        return key in allowed
    except TypeError:
        return False


def _first(values: npt.NDArray[Any], wrong: Any) -> object | None:
    for value in _distinct(values):
        if wrong(value):
            return value  # type: ignore[no-any-return]
    return None


def _kind(array: npt.NDArray[Any]) -> str:
    return {"U": "text", "S": "bytes", "O": "Python object", "M": "datetime", "m": "timedelta"}.get(
        array.dtype.kind, str(array.dtype)
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _shown(classes: Sequence[Any] | npt.NDArray[Any]) -> str:
    labels = [repr(_plain(c)) for c in list(classes)[:10]]
    more = ", …" if len(classes) > 10 else ""
    return "[" + ", ".join(labels) + more + "]"
