"""What the gradient-boosting backends (XGBoost, LightGBM) share.

Both libraries save a booster as data (JSON/UBJSON, text) that they parse without unpickling,
and both know only the *encoded* task: an objective, a number of classes, class indices
0…k-1. This module turns that into the router's output contract:

- binary objectives: classes ``[0, 1]``, probabilities ``[1 - p, p]``, label ``1`` when
  ``p > 0.5`` (what ``XGBClassifier.predict`` and ``LGBMClassifier.predict`` do);
- multi-class objectives: classes ``0…k-1``, the probability matrix, label = arg max;
- everything else (regression, ranking, survival…): a regressor, values as float64.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import InputSchema, Model, OutputSpec, Prediction, unique_input_names
from modelrouter.errors import ModelLoadError
from modelrouter.features import NUMBER, Frame, numeric_matrix
from modelrouter.locations import ModelLocation

__all__ = [
    "OPTIONAL_PACKAGES",
    "BoosterModel",
    "Task",
    "expected_outputs",
    "import_optional",
    "native_message",
]

#: Import name → the extra that installs it (for "pip install 'modelrouter[…]'" hints).
OPTIONAL_PACKAGES: dict[str, str] = {"xgboost": "xgboost", "lightgbm": "lightgbm", "numba": "explain"}

TaskKind = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Task:
    """What a booster's output means: ``kind`` and, for multi-class, ``n_classes``."""

    kind: TaskKind
    n_classes: int = 0


def expected_outputs(task: Task) -> int:
    """Values per row the library gives for ``task``: one, or one per class."""
    return task.n_classes if task.kind == "multiclass" else 1


def import_optional(name: str, what: str) -> ModuleType:
    """Import the optional package ``name``; :class:`ModelLoadError` naming the extra if absent."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra = OPTIONAL_PACKAGES.get(name, name)
        raise ModelLoadError(
            f"{what} needs the {name} package, which is not installed: "
            f"pip install 'modelrouter[{extra}]' (or {name} itself) ({exc})"
        ) from None


_LOG_PREFIX = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*")


def native_message(exc: BaseException) -> str:
    """The first line of a native library's error, without its timestamp and source path."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return _LOG_PREFIX.sub("", first)[:300]


class BoosterModel(Model):
    """A loaded booster; subclasses load it and compute its raw output.

    ``_raw`` returns, per row, the probability of class 1 (binary), the probability matrix
    (multi-class) or the value (regression) — as the library computes them.
    """

    #: The dtype of a regressor's values and of the probabilities as the library returns
    #: them (written as such: float32 stays float32).
    value_dtype: np.dtype[np.floating] = np.dtype(np.float64)

    def __init__(
        self, path: ModelLocation, task: Task, names: Sequence[str] | None, width: int, rule: str | None
    ) -> None:
        super().__init__(path)
        unique_input_names(path, names)
        self.task = task
        self._schema = InputSchema(
            names=None if names is None else tuple(names),
            dtypes=(NUMBER,) * width,
            width=width,
            name_rule=rule,
        )
        if task.kind == "binary":
            self._classes: npt.NDArray[np.generic] | None = np.asarray([0, 1], dtype=np.int64)
        elif task.kind == "multiclass":
            self._classes = np.arange(task.n_classes, dtype=np.int64)
        else:
            self._classes = None

    @property
    def schema(self) -> InputSchema:
        return self._schema

    @property
    def classes(self) -> npt.NDArray[np.generic] | None:
        return self._classes

    @property
    def outputs(self) -> OutputSpec:
        return OutputSpec(classes=(self._classes,), dtypes=(self.label_dtype,), proba_dtype=self.value_dtype)

    @property
    def label_dtype(self) -> np.dtype[np.generic]:
        return np.dtype(np.int64) if self._classes is not None else self.value_dtype

    @classmethod
    def from_checked(cls, path: ModelLocation, payload: bytes, *, threads: int | None) -> Self:
        """Load the library's model from ``payload``, bytes whose structure was checked
        (:mod:`modelrouter.backends.booster_files`): what ``load`` does in-process once
        a child process did it first (:mod:`modelrouter.backends.booster_probe`)."""
        raise NotImplementedError

    def _raw(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.floating]:
        raise NotImplementedError

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction:
        # Both libraries compute in float32 internally; float64 in is what they are fed
        # when called on a DataFrame directly, so thresholds compare the same way.
        matrix = numeric_matrix(frame, features, "float64")
        raw = np.asarray(self._raw(matrix))
        rows = matrix.shape[0]
        if self.task.kind == "regression":
            values = raw.reshape(rows, -1)
            if values.shape[1] != 1:
                raise ModelLoadError(
                    f"{self.path}: the model gives {values.shape[1]} outputs per row; "
                    "multi-output boosters are not supported"
                )
            return Prediction(
                labels=values[:, 0].astype(self.value_dtype) if labels else None, probabilities=None
            )
        if self.task.kind == "binary":
            positive = raw.reshape(rows)
            label_values = (positive > 0.5).astype(np.int64) if labels else None
            proba = None
            if probabilities:
                # In the library's own dtype, as its scikit-learn wrapper computes 1 - p.
                p = positive.astype(self.value_dtype)
                proba = np.column_stack([1 - p, p])
            return Prediction(labels=label_values, probabilities=proba)
        matrix_out = raw.reshape(rows, self.task.n_classes)
        return Prediction(
            labels=np.argmax(matrix_out, axis=1).astype(np.int64) if labels else None,
            probabilities=matrix_out.astype(self.value_dtype) if probabilities else None,
        )
