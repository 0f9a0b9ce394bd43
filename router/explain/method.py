"""What every explanation method shares: its result, its space, and the error for no method."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.errors import ModelError

__all__ = ["Explained", "ExplanationUnsupportedError", "Method", "Space", "Unsupported"]


class Space(StrEnum):
    """What the explained score is (docs/specification.md §13)."""

    #: A classifier's probability of the explained class (scikit-learn forests and trees).
    PROBABILITY = "probability"
    #: The raw score before the link function: log-odds for binary boosted trees and linear
    #: classifiers, per-class margins for multi-class ones, log for poisson/gamma regressors.
    MARGIN = "margin"
    #: A regressor's prediction itself.
    VALUE = "value"


@dataclass(frozen=True)
class Explained:
    """Per row: the base value and one contribution per feature the method sees."""

    base: npt.NDArray[np.float64]  # (rows,)
    contributions: npt.NDArray[np.float64]  # (rows, features)


@dataclass(frozen=True, kw_only=True)
class Method:
    """An exact explanation method bound to one fitted model.

    ``explain`` takes the model's own input matrix (after any pipeline steps) and, per row,
    the index of the output column to explain; it is thread-safe (it only reads the model)
    and releases the GIL where it runs compiled code.
    """

    space: Space
    classifier: bool
    #: A binary classifier's explained column: its positive class (a forest's probability
    #: columns: 1) or its only margin (0).
    positive: int = 0
    #: Whether the method explains against a background sample (linear SHAP) or needs none.
    uses_background: bool = False
    #: Rows per chunk the batch engine uses by default with this method (None: its usual
    #: chunk size): TreeSHAP costs ~1 ms per row on a large forest, so 1,024-row chunks keep
    #: both workers busy on a 5,000-row file and the progress bar moving.
    chunk_rows: int | None = None
    name: str = ""

    def explain(
        self, matrix: npt.NDArray[np.float64], target: npt.NDArray[np.int64], model: Any = None
    ) -> Explained:
        """``model``: the borrowed instance (its backend object), for methods that call into it."""
        raise NotImplementedError


class Unsupported(Exception):
    """Raised while building a method: ``what`` has no exact method; ``instead`` would work."""

    def __init__(self, what: str, instead: str) -> None:
        super().__init__(what)
        self.what = what
        self.instead = instead


class ExplanationUnsupportedError(ModelError):
    """The model has no exact explanation method (CLI exit 4, before any row is read)."""
