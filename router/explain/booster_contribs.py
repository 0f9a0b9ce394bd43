"""XGBoost's and LightGBM's own exact contributions (``pred_contribs`` / ``pred_contrib``).

Both libraries run path-dependent TreeSHAP in compiled, multi-threaded code over their own
trees; the result is in the booster's raw margin (regression objectives with an identity
link: the prediction itself). The last column of their answer is the base value.

Each call runs on the borrowed instance's thread budget (cores // pool size: one thread per
instance by default), so the run's parallelism comes from explaining chunks on every worker:
like TreeSHAP, the methods ask for 1,024-row chunks (a forest-sized booster's contributions
cost ~6 ms of CPU per row; one default 32,768-row chunk would leave a small file on one
core while the library's own call uses all of them; docs/explanations.md, "Speed").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.explain.method import Explained, Method, Space

__all__ = ["LightGBMMethod", "XGBoostMethod", "lightgbm_space", "xgboost_space"]

#: Objectives whose raw score is the prediction (no link function).
_XGB_IDENTITY = frozenset(
    {
        "reg:squarederror",
        "reg:linear",
        "reg:squaredlogerror",
        "reg:pseudohubererror",
        "reg:absoluteerror",
        "reg:quantileerror",
        "binary:logitraw",
    }
)
_LGB_LINKED = frozenset(
    {"poisson", "gamma", "tweedie", "cross_entropy", "xentropy", "cross_entropy_lambda", "xentlambda"}
)


def xgboost_space(booster: Any, classifier: bool) -> Space:
    import json

    objective = str(json.loads(booster.save_config())["learner"]["objective"]["name"])
    return Space.MARGIN if classifier or objective not in _XGB_IDENTITY else Space.VALUE


def lightgbm_space(booster: Any, classifier: bool) -> Space:
    objective = str(booster.params.get("objective", "")) if getattr(booster, "params", None) else ""
    if not objective:
        header = booster.model_to_string(num_iteration=0).split("\nTree=", 1)[0]
        for line in header.splitlines():
            if line.startswith("objective="):
                objective = line.split("=", 1)[1].split()[0]
    return Space.MARGIN if classifier or objective in _LGB_LINKED else Space.VALUE


def _pick(raw: npt.NDArray[Any], target: npt.NDArray[np.int64], width: int) -> Explained:
    """``raw``: (rows, features + 1) or (rows, classes, features + 1); the last is the base."""
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim == 3:
        values = values[np.arange(len(values)), target]
    return Explained(base=values[:, width], contributions=np.ascontiguousarray(values[:, :width]))


def booster_of(model: Any) -> Any:
    """The booster of a loaded model: a native file's, or a scikit-learn wrapper's (at the end
    of its pipeline)."""
    booster = getattr(model, "booster", None)
    if booster is not None:
        return booster
    from modelrouter.explain.lineage import split_pipeline

    final = split_pipeline(model.estimator)[1]
    return final.get_booster() if hasattr(final, "get_booster") else final.booster_


def threads_of(model: Any) -> int:
    """The thread budget the pool gave the instance (its booster's or wrapper's)."""
    budget = getattr(model, "_threads", None)
    if budget is None and hasattr(model, "estimator"):
        from modelrouter.explain.lineage import split_pipeline

        budget = getattr(split_pipeline(model.estimator)[1], "n_jobs", None)
    return max(1, int(budget)) if isinstance(budget, int) and budget > 0 else 1


@dataclass(frozen=True, kw_only=True)
class XGBoostMethod(Method):
    """Each call uses the borrowed instance's booster (and its ``nthread`` budget)."""

    booster: Any
    chunk_rows: int | None = 1024
    name: str = "XGBoost pred_contribs (TreeSHAP)"

    def explain(
        self, matrix: npt.NDArray[np.float64], target: npt.NDArray[np.int64], model: Any = None
    ) -> Explained:
        import xgboost as xgb

        booster = self.booster if model is None else booster_of(model)
        data = xgb.DMatrix(matrix, feature_names=booster.feature_names)
        raw = booster.predict(data, pred_contribs=True)
        return _pick(raw, target, matrix.shape[1])


@dataclass(frozen=True, kw_only=True)
class LightGBMMethod(Method):
    """Each call uses the borrowed instance's booster, with its thread budget."""

    booster: Any
    chunk_rows: int | None = 1024
    name: str = "LightGBM pred_contrib (TreeSHAP)"

    def explain(
        self, matrix: npt.NDArray[np.float64], target: npt.NDArray[np.int64], model: Any = None
    ) -> Explained:
        booster = self.booster if model is None else booster_of(model)
        threads = 1 if model is None else threads_of(model)
        raw = np.asarray(booster.predict(matrix, pred_contrib=True, num_threads=threads))
        width = matrix.shape[1]
        if raw.shape[1] != width + 1:  # multi-class: class-major blocks of (features + 1)
            raw = raw.reshape(len(raw), -1, width + 1)
        return _pick(raw, target, width)
