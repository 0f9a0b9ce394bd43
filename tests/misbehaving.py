"""Estimators that return what they should not (pickled by tests, loaded by the real CLI).

The subprocess finds this module through ``PYTHONPATH`` (the repository root), like a user's
own estimator module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Misbehaving(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A wine classifier (integer classes 0, 1, 2) whose predict/predict_proba misbehave.

    ``mode`` names the misbehaviour; ``"honest"`` is the wrapped model unchanged.
    """

    def __init__(self, inner: Any = None, mode: str = "honest") -> None:
        self.inner = inner
        self.mode = mode

    def fit(self, X: Any, y: Any) -> Misbehaving:
        self.inner.fit(X, y)
        self.classes_ = self.inner.classes_
        self.feature_names_in_ = self.inner.feature_names_in_
        self.n_features_in_ = self.inner.n_features_in_
        return self

    def predict(self, X: Any) -> Any:
        labels = self.inner.predict(X)
        mode = self.mode
        if mode == "more_rows":
            return np.concatenate([labels, labels[:8]])
        if mode == "fewer_rows":
            return labels[:-1]
        if mode == "none":
            return None
        if mode == "two_d":
            return np.c_[labels, labels]
        if mode == "strings_for_ints":
            return labels.astype(str)
        if mode == "mixed":
            mixed = labels.astype(object)
            mixed[::2] = [str(v) for v in mixed[::2]]
            return mixed
        if mode == "other_label":
            return np.where(np.arange(len(labels)) == 1, 7, labels)
        if mode == "scalar":
            return 1
        if mode == "system_exit":
            raise SystemExit(7)
        if mode == "keyboard_interrupt":
            raise KeyboardInterrupt
        return labels

    def predict_proba(self, X: Any) -> Any:
        proba = self.inner.predict_proba(X)
        mode = self.mode
        if mode == "proba_more_columns":
            return np.c_[proba, proba[:, :1]]
        if mode == "proba_fewer_columns":
            return proba[:, :-1]
        if mode == "proba_above_one":
            out = proba.copy()
            out[2, 0] = 1.5
            return out
        if mode == "proba_negative":
            out = proba.copy()
            out[0, 1] = -0.25
            return out
        if mode == "proba_nan":
            out = proba.copy()
            out[3, 2] = np.nan
            return out
        if mode == "proba_text":
            return proba.astype(str)
        if mode == "proba_more_rows":
            return np.concatenate([proba, proba[:2]])
        if mode == "system_exit":
            raise SystemExit(7)
        if mode == "keyboard_interrupt":
            raise KeyboardInterrupt
        return proba


#: Unpickled instances of :class:`LoadsOnce` in this process.
_LOADS = [0]


class LoadsOnce(Misbehaving):
    """A classifier whose *second* unpickling in a process misbehaves: ``mode`` ``"fail"``
    raises, ``"slow"`` sleeps 1.5 s first (a pool's later instance failing or still loading
    while the first one scores). Each predict takes 50 ms, so two workers overlap and the
    pool has to load its second instance."""

    def predict(self, X: Any) -> Any:
        import time

        time.sleep(0.05)
        return super().predict(X)

    def __setstate__(self, state: dict[str, Any]) -> None:
        _LOADS[0] += 1
        if _LOADS[0] == 2:
            if state.get("mode") == "fail":
                raise RuntimeError("second instance refused to load")
            if state.get("mode") == "slow":
                import time

                time.sleep(1.5)
        super().__setstate__(state)


class FailsOnSomeRows(Misbehaving):
    """A wine classifier whose predict/predict_proba raise ``ValueError`` for rows with
    ``magnesium`` above ``limit`` — valid input the model itself cannot handle (a model
    fault, exit 4, not a data error). ``everywhere``: it raises whatever the rows."""

    def __init__(self, inner: Any = None, mode: str = "honest", limit: float = 150.0) -> None:
        super().__init__(inner, mode)
        self.limit = limit

    def _check(self, X: Any) -> None:
        if self.mode == "everywhere" or (np.asarray(X["magnesium"], dtype=float) > self.limit).any():
            raise ValueError("lookup table has no entry for this magnesium level")

    def predict(self, X: Any) -> Any:
        self._check(X)
        return self.inner.predict(X)

    def predict_proba(self, X: Any) -> Any:
        self._check(X)
        return self.inner.predict_proba(X)


class InterruptedWhileLoading(Misbehaving):
    """A classifier whose unpickling is interrupted by a SIGINT (sent to its own process) and
    turns the interruption into another exception, as an extension module's initialisation
    does (``ImportError: initialization failed``) when a Ctrl-C lands in it."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        import os
        import signal
        import time

        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(10)  # the signal's handler runs here
        except BaseException as exc:
            raise ImportError("initialization failed") from exc
        super().__setstate__(state)
