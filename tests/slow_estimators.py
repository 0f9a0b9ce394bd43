"""Forests misbehaving on purpose: slow (keeps model instances busy in service tests: 503,
SIGTERM), failing, or issuing a known-false warning."""

from __future__ import annotations

import time
import warnings
from typing import Any

from sklearn.ensemble import RandomForestClassifier


class SlowForest(RandomForestClassifier):  # type: ignore[misc]
    """A random forest whose predict/predict_proba sleep ``delay_`` seconds first."""

    delay_: float = 0.0

    def predict(self, X: Any) -> Any:
        time.sleep(self.delay_)
        return super().predict(X)

    def predict_proba(self, X: Any) -> Any:
        time.sleep(self.delay_)
        return super().predict_proba(X)


class FaultyForest(RandomForestClassifier):  # type: ignore[misc]
    """A random forest whose own code fails (ValueError) on every valid input."""

    def predict(self, X: Any) -> Any:
        raise ValueError("internal table of thresholds is inconsistent")

    def predict_proba(self, X: Any) -> Any:
        raise ValueError("internal table of thresholds is inconsistent")


class RacedForest(RandomForestClassifier):  # type: ignore[misc]
    """A random forest that issues, on every call, the false warning scikit-learn's ``Parallel``
    gives when another thread empties the warning filters (router/known_warnings.py)."""

    def _warn_as_raced(self) -> None:
        warnings.warn(
            "`sklearn.utils.parallel.delayed` should be used with `sklearn.utils.parallel.Parallel`"
            " to make it possible to propagate the scikit-learn configuration of the current"
            " thread to the joblib workers.",
            UserWarning,
            stacklevel=2,
        )

    def predict(self, X: Any) -> Any:
        self._warn_as_raced()
        return super().predict(X)

    def predict_proba(self, X: Any) -> Any:
        self._warn_as_raced()
        return super().predict_proba(X)
