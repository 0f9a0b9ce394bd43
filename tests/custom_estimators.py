"""A user-defined transformer: a type skops does not trust by default."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Multiplies its input by two (and records the feature names, like sklearn's own)."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        validate_data(self, X, reset=True)
        return self

    def transform(self, X: Any) -> Any:
        return validate_data(self, X, reset=False) * 2
