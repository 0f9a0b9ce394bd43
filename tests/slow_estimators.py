"""A classifier that takes its time: keeps model instances busy in service tests (503, SIGTERM)."""

from __future__ import annotations

import time
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
