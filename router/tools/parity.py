"""Parity between two models scoring the same rows: label agreement and probability gaps.

Used by ``modelrouter convert`` (the pickle against its ONNX conversion) and ``modelrouter
compare`` (every configured model type against the first). Frames are scored chunk by chunk
and the figures accumulated, so a large sample never has to fit in memory at once.

Figures (docs/specification.md §4's class order: the *reference* model's own ``classes``):

- label agreement: the share of rows whose labels are equal;
- max / mean absolute probability difference, over all cells and per class (the other
  model's columns are matched to the reference's by class label, never by position);
- the rows that disagree (1-based data rows, as in every error message).

Regressors have no probabilities: their predicted values are compared instead, and a row
agrees when the two values are within the probability tolerance or 1e-5 relative (float32
precision, which is what an ONNX conversion computes in).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from modelrouter.backends import InputSchema, OutputSpec, Prediction
from modelrouter.batch.dataio import FileFormat, detect_format, open_input
from modelrouter.errors import DataError, ModelError
from modelrouter.features import Frame, frame_length

__all__ = [
    "ClassParity",
    "Disagreement",
    "ParityAccumulator",
    "ParityError",
    "ParityReport",
    "Scorer",
    "Tolerance",
    "compare_frames",
    "read_frames",
]

#: Rows that disagree, kept with their labels in a report (the count is always exact).
DISAGREEMENTS_KEPT = 100
#: Relative tolerance for regressors' values: what float32 arithmetic can promise.
_VALUE_RTOL = 1e-5


class ParityError(ModelError):
    """The models disagree beyond the tolerances (CLI exit 4, like any unusable model)."""


class Scorer(Protocol):
    """What parity needs of a model: a :class:`router.Model` or a borrowed instance."""

    @property
    def classes(self) -> npt.NDArray[np.generic] | None: ...

    @property
    def has_probabilities(self) -> bool: ...

    @property
    def outputs(self) -> OutputSpec: ...

    def run(
        self, frame: Frame, *, labels: bool = True, probabilities: bool = False, exclude: Sequence[str] = ()
    ) -> Prediction: ...


@dataclass(frozen=True)
class Tolerance:
    """When two models count as equivalent.

    ``min_agreement`` is the smallest acceptable share of equal labels (0–1);
    ``max_proba_diff`` the largest acceptable absolute probability difference (for
    regressors: the absolute difference of values under which a row agrees).
    """

    min_agreement: float = 1.0
    max_proba_diff: float = 1e-4

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be between 0 and 1 (got {self.min_agreement})")
        if not self.max_proba_diff >= 0.0:
            raise ValueError(f"max_proba_diff must be ≥ 0 (got {self.max_proba_diff})")


@dataclass(frozen=True)
class ClassParity:
    """Probability differences for one class (a column of ``predict_proba``)."""

    label: Any
    max_abs_diff: float
    mean_abs_diff: float


@dataclass(frozen=True)
class Disagreement:
    """One row whose labels differ; ``row`` is the 1-based data row."""

    row: int
    reference: Any
    other: Any
    max_abs_diff: float | None


@dataclass(frozen=True)
class ParityReport:
    """The parity figures of ``other`` against ``reference`` over ``rows`` rows.

    ``compared`` says what the differences are of: ``probabilities`` (classifiers that give
    them), ``values`` (regressors) or ``labels`` (classifiers without probabilities, where
    the difference figures are ``None``).
    """

    reference: str
    other: str
    rows: int
    agreeing: int
    compared: Literal["probabilities", "values", "labels"]
    max_abs_diff: float | None
    mean_abs_diff: float | None
    per_class: tuple[ClassParity, ...]
    disagreements: tuple[Disagreement, ...]
    disagreement_count: int
    tolerance: Tolerance = field(default_factory=Tolerance)

    @property
    def agreement(self) -> float:
        """Share of rows that agree (1.0 for zero rows: nothing contradicts)."""
        return self.agreeing / self.rows if self.rows else 1.0

    def failures(self) -> list[str]:
        """Why the report fails its tolerance (empty when it passes)."""
        reasons = []
        if self.agreement < self.tolerance.min_agreement:
            what = "labels" if self.compared != "values" else "values"
            reasons.append(
                f"{self.agreement:.2%} of {what} agree ({self.disagreement_count} of {self.rows} rows "
                f"differ), below --min-agreement {self.tolerance.min_agreement:g}"
            )
        if (
            self.compared == "probabilities"
            and self.max_abs_diff is not None
            and self.max_abs_diff > self.tolerance.max_proba_diff
        ):
            reasons.append(
                f"max absolute probability difference {self.max_abs_diff:.3g} "
                f"exceeds --max-proba-diff {self.tolerance.max_proba_diff:g}"
            )
        return reasons

    @property
    def passed(self) -> bool:
        """Whether the figures are within the tolerance."""
        return not self.failures()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (stable keys; more may be added, none renamed)."""
        return {
            "reference": self.reference,
            "other": self.other,
            "rows": self.rows,
            "compared": self.compared,
            "label_agreement": self.agreement,
            "agreeing_rows": self.agreeing,
            "disagreeing_rows": self.disagreement_count,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "per_class": [
                {"class": c.label, "max_abs_diff": c.max_abs_diff, "mean_abs_diff": c.mean_abs_diff}
                for c in self.per_class
            ],
            "disagreements": [
                {"row": d.row, "reference": d.reference, "other": d.other, "max_abs_diff": d.max_abs_diff}
                for d in self.disagreements
            ],
            "tolerance": {
                "min_agreement": self.tolerance.min_agreement,
                "max_proba_diff": self.tolerance.max_proba_diff,
            },
            "passed": self.passed,
            "failures": self.failures(),
        }


class ParityAccumulator:
    """Accumulates the figures of one (reference, other) pair over successive chunks.

    Not thread-safe: feed it chunks in input order from one thread.
    """

    def __init__(
        self,
        reference: Scorer,
        other: Scorer,
        *,
        names: tuple[str, str] = ("reference", "other"),
        tolerance: Tolerance | None = None,
        keep: int = DISAGREEMENTS_KEPT,
    ) -> None:
        self.names = names
        self.tolerance = tolerance or Tolerance()
        self._keep = keep
        ref_spec, other_spec = reference.outputs, other.outputs
        if ref_spec.count != other_spec.count:
            raise ModelError(
                f"{names[1]} has {other_spec.count} outputs per row but {names[0]} has {ref_spec.count}; "
                "the models cannot be compared"
            )
        ref_regressor, other_regressor = ref_spec.classes[0] is None, other_spec.classes[0] is None
        if ref_regressor != other_regressor:
            kinds = ["a regressor" if r else "a classifier" for r in (ref_regressor, other_regressor)]
            raise ModelError(
                f"{names[1]} is {kinds[1]} but {names[0]} is {kinds[0]}; the models cannot be compared"
            )
        self._outputs = ref_spec.count
        self.compared: Literal["probabilities", "values", "labels"] = (
            "values"
            if ref_regressor
            else "probabilities"
            if reference.has_probabilities and other.has_probabilities
            else "labels"
        )
        # Probability columns, named (output, class) so the other model's are matched by label.
        self._classes: list[Any] | None = None
        self._order: npt.NDArray[np.intp] | None = None
        if self.compared == "probabilities":
            ref_keys, other_keys = _proba_keys(ref_spec), _proba_keys(other_spec)
            self._order = _class_order(ref_keys, other_keys, names)
            self._classes = [
                _plain(label) if ref_spec.count == 1 else f"{i}_{_plain(label)}" for i, label in ref_keys
            ]
        width = 0 if self._classes is None else len(self._classes)
        self._rows = 0
        self._agreeing = 0
        self._max = 0.0
        self._sum = 0.0
        self._class_max = np.zeros(width)
        self._class_sum = np.zeros(width)
        self._kept: list[Disagreement] = []
        self._disagreeing = 0

    @property
    def wants_probabilities(self) -> bool:
        """Whether :meth:`update` needs probabilities in the predictions it is given."""
        return self.compared == "probabilities"

    def update(self, reference: Prediction, other: Prediction) -> None:
        """Add one chunk's predictions (same rows, same order) from both models."""
        ref_labels, other_labels = reference.labels, other.labels
        assert ref_labels is not None and other_labels is not None, "labels are required"
        rows = len(ref_labels)
        if len(other_labels) != rows:
            raise ModelError(
                f"{self.names[1]} returned {len(other_labels)} predictions for {rows} rows; "
                "the models cannot be compared"
            )
        row_diff: npt.NDArray[np.float64] | None = None
        if self.compared == "values":
            a = np.asarray(ref_labels, dtype=np.float64).reshape(rows, -1)
            b = np.asarray(other_labels, dtype=np.float64).reshape(rows, -1)
            diff = np.abs(a - b)
            # A row agrees when every one of its outputs does.
            agree = np.isclose(b, a, rtol=_VALUE_RTOL, atol=self.tolerance.max_proba_diff).all(axis=1)
            row_diff = diff.max(axis=1) if diff.shape[1] else np.zeros(rows)
            self._absorb(diff)
        else:
            left = np.asarray(ref_labels).reshape(rows, -1)
            right = np.asarray(other_labels).reshape(rows, -1)
            agree = np.ones(rows, dtype=bool)
            for j in range(left.shape[1]):
                agree &= _labels_equal(left[:, j], right[:, j])
            if self.compared == "probabilities":
                assert reference.probabilities is not None and other.probabilities is not None
                assert self._order is not None
                cells = np.abs(reference.probabilities - other.probabilities[:, self._order])
                row_diff = cells.max(axis=1) if cells.shape[1] else np.zeros(rows)
                self._absorb(cells)
        bad = np.flatnonzero(~agree)
        self._disagreeing += len(bad)
        for index in bad[: max(0, self._keep - len(self._kept))]:
            self._kept.append(
                Disagreement(
                    row=self._rows + int(index) + 1,
                    reference=_plain_row(ref_labels[index]),
                    other=_plain_row(other_labels[index]),
                    max_abs_diff=None if row_diff is None else float(row_diff[index]),
                )
            )
        self._agreeing += int(agree.sum())
        self._rows += rows

    def _absorb(self, cells: npt.NDArray[np.float64]) -> None:
        if not cells.size:
            return
        self._max = max(self._max, float(cells.max()))
        self._sum += float(cells.sum())
        if len(self._class_max):
            self._class_max = np.maximum(self._class_max, cells.max(axis=0))
            self._class_sum += cells.sum(axis=0)

    def report(self) -> ParityReport:
        """The figures so far."""
        rows = self._rows
        has_diffs = self.compared != "labels"
        cells = rows * (len(self._class_max) if self.compared == "probabilities" else self._outputs)
        per_class: tuple[ClassParity, ...] = ()
        if self.compared == "probabilities" and self._classes is not None:
            per_class = tuple(
                ClassParity(
                    label=_plain(label),
                    max_abs_diff=float(self._class_max[j]),
                    mean_abs_diff=float(self._class_sum[j] / rows) if rows else 0.0,
                )
                for j, label in enumerate(self._classes)
            )
        return ParityReport(
            reference=self.names[0],
            other=self.names[1],
            rows=rows,
            agreeing=self._agreeing,
            compared=self.compared,
            max_abs_diff=self._max if has_diffs else None,
            mean_abs_diff=(self._sum / cells if cells else 0.0) if has_diffs else None,
            per_class=per_class,
            disagreements=tuple(self._kept),
            disagreement_count=self._disagreeing,
            tolerance=self.tolerance,
        )


def compare_frames(
    models: Mapping[str, Scorer],
    frames: Iterable[Frame],
    tolerance: Tolerance | None = None,
    *,
    exclude: Sequence[str] = (),
    source: str | None = None,
) -> dict[str, ParityReport]:
    """Score every frame with every model and report each model against the first one.

    ``models`` maps a display name to a model, reference first (at least two). Each frame is
    scored once per model. Returns one report per non-reference model, keyed by its name.
    Raises what the models raise (:class:`DataError` for unusable input, :class:`ModelError`
    for models that cannot be compared, e.g. different class labels). A :class:`DataError`
    is raised as the batch commands word it: ``source`` (the data file's name), the 1-based
    row in the whole input (not within its chunk), and the model that refused the value.
    """
    if len(models) < 2:
        raise ValueError(f"compare_frames needs at least two models (got {len(models)})")
    names = list(models)
    reference = models[names[0]]
    accumulators = {
        name: ParityAccumulator(reference, models[name], names=(names[0], name), tolerance=tolerance)
        for name in names[1:]
    }
    want_proba = {name: acc.wants_probabilities for name, acc in accumulators.items()}
    ref_proba = any(want_proba.values())
    offset = 0
    for frame in frames:
        rows = frame_length(frame)
        if rows == 0:
            continue
        name = names[0]
        try:
            ref = reference.run(frame, labels=True, probabilities=ref_proba, exclude=exclude)
            for name, accumulator in accumulators.items():
                other = models[name].run(frame, labels=True, probabilities=want_proba[name], exclude=exclude)
                accumulator.update(ref, other)
        except DataError as exc:
            where = f"{source}: " if source else ""
            shifted = exc.at_offset(offset)
            raise DataError(f"{where}{shifted} (scoring with {name})", column=exc.column, row=None) from None
        offset += rows
    return {name: accumulator.report() for name, accumulator in accumulators.items()}


@contextmanager
def read_frames(
    path: str | Path,
    input_format: FileFormat | None = None,
    *,
    chunk_size: int = 65_536,
    delimiter: str | None = None,
    decimal: str = ".",
    schema: InputSchema | None = None,
) -> Iterator[Iterator[Frame]]:
    """Open a CSV/Parquet file and yield an iterator over its chunks (closed on exit).

    CSV is read as ``predict`` reads it: fields separated by ``delimiter`` (default: a tab
    for ``.tsv``, a semicolon with a decimal comma, else a comma), numbers of the columns
    ``schema`` (a model's inputs) takes as numbers written with ``decimal``.
    Raises :class:`DataError` for a missing, unreadable or unknown-format file, and
    :class:`~modelrouter.errors.InvalidOptionError` for a bad delimiter or decimal mark.
    """
    from modelrouter.batch import option_checks as check
    from modelrouter.batch.nulls import decimal_commas
    from modelrouter.storage.formats import suffix_delimiter

    check.choice("--decimal", decimal, (".", ","))
    chosen = check.delimiter(delimiter) or suffix_delimiter(str(path)) or (";" if decimal == "," else ",")
    fmt = detect_format(path, input_format, role="input")
    opened = open_input(path, fmt, chunk_size=chunk_size, delimiter=chosen, decimal=decimal)
    numeric: frozenset[str] = frozenset()
    if decimal == "," and schema is not None:
        names = schema.resolve(opened.schema.names)
        numeric = frozenset(n for n, d in zip(names, schema.dtypes, strict=False) if d != "string")
    try:
        yield (decimal_commas(b, numeric) for b in opened.batches) if numeric else iter(opened.batches)
    finally:
        opened.close()


def _proba_keys(spec: OutputSpec) -> list[tuple[int, Any]]:
    """(output, class label) for each probability column, in the model's column order."""
    return [(i, label) for i, classes in enumerate(spec.classes) if classes is not None for label in classes]


def _class_order(
    reference: Sequence[tuple[int, Any]], other: Sequence[tuple[int, Any]], names: tuple[str, str]
) -> npt.NDArray[np.intp]:
    """Indices that put ``other``'s probability columns in ``reference``'s class order."""
    position = {(i, _key(c)): j for j, (i, c) in enumerate(other)}
    wanted = [(i, _key(c)) for i, c in reference]
    if len(position) != len(other) or sorted(position) != sorted(wanted):
        raise ModelError(
            f"{names[1]} has classes {_shown_keys(other)} but {names[0]} has {_shown_keys(reference)}; "
            "the models cannot be compared"
        )
    return np.asarray([position[k] for k in wanted], dtype=np.intp)


def _key(label: Any) -> str:
    value = _plain(label)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0 from one model, 1 from its conversion: the same class
    return str(value)


def _labels_equal(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    left, right = np.asarray(a), np.asarray(b)
    if left.dtype.kind in "biuf" and right.dtype.kind in "biuf":
        return np.asarray(left == right, dtype=bool)
    return np.fromiter(
        (_key(x) == _key(y) for x, y in zip(left.tolist(), right.tolist(), strict=True)),
        dtype=bool,
        count=len(left),
    )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


def _shown_keys(keys: Sequence[tuple[int, Any]]) -> str:
    if all(i == 0 for i, _ in keys):
        return "[" + ", ".join(repr(_plain(c)) for _, c in keys) + "]"
    return "[" + ", ".join(f"output {i}: {_plain(c)!r}" for i, c in keys) + "]"


def _plain_row(value: Any) -> Any:
    """One row's label (or list of labels, for a multi-output model) for a report."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    return _plain(value)
