"""Linear SHAP against a background sample: ``contrib = coef · (x − mean(background))``.

Exact for a linear score with independent features (docs/specification.md §13): the base
is the score of the background's mean row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.explain.method import Explained, Method, Space

__all__ = ["LinearMethod", "is_linear"]


def is_linear(estimator: Any) -> bool:
    """Whether ``estimator``'s score is ``X @ coef_ + intercept_`` (classifiers: per class)."""
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    from sklearn.linear_model._glm.glm import _GeneralizedLinearRegressor
    from sklearn.svm import LinearSVR

    kinds = (LinearClassifierMixin, LinearModel, _GeneralizedLinearRegressor, LinearSVR)
    return isinstance(estimator, kinds) and hasattr(estimator, "coef_")


@dataclass(frozen=True, kw_only=True)
class LinearMethod(Method):
    coef: npt.NDArray[np.float64]  # (columns, features)
    intercept: npt.NDArray[np.float64]  # (columns,)
    mean: npt.NDArray[np.float64]  # (features,): the background's mean, in the model's input space
    uses_background: bool = True
    name: str = "linear SHAP (background mean)"

    @classmethod
    def build(cls, estimator: Any, background: npt.NDArray[np.float64]) -> LinearMethod:
        from sklearn.base import is_classifier
        from sklearn.linear_model._glm.glm import _GeneralizedLinearRegressor

        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
        if intercept.size == 1 and coef.shape[0] > 1:
            intercept = np.repeat(intercept, coef.shape[0])
        classifier = is_classifier(estimator)
        linked = isinstance(estimator, _GeneralizedLinearRegressor)
        return cls(
            coef=coef,
            intercept=intercept,
            mean=np.asarray(background, dtype=np.float64).mean(axis=0),
            space=Space.MARGIN if classifier or linked else Space.VALUE,
            classifier=classifier,
        )

    def explain(
        self, matrix: npt.NDArray[np.float64], target: npt.NDArray[np.int64], model: Any = None
    ) -> Explained:
        coef = self.coef[target]
        contributions = coef * (np.asarray(matrix, dtype=np.float64) - self.mean)
        base = self.intercept[target] + (self.coef @ self.mean)[target]
        return Explained(base=base, contributions=contributions)
