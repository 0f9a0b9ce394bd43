"""Additivity, as a property over random tree models and data: ``contrib_base + Σ contrib``
equals the explained score (relative 1e-6), and every value equals shap's (1e-5 absolute).

The explained score is the model's own: a forest's or tree's probability of the explained
class, a boosted classifier's margin (``decision_function``), a regressor's prediction.
Missing values are included for the models that route them (trees, forests, HGB).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.explain import Space, explain
from sklearn import ensemble, tree

KINDS = [
    "tree regressor",
    "tree classifier",
    "forest classifier",
    "extra trees regressor",
    "gradient boosting classifier",
    "gradient boosting regressor",
    "hist gradient boosting classifier",
    "hist gradient boosting regressor",
]


def _model(kind: str, depth: int, trees: int, seed: int) -> Any:
    if kind == "tree regressor":
        return tree.DecisionTreeRegressor(max_depth=depth, random_state=seed)
    if kind == "tree classifier":
        return tree.DecisionTreeClassifier(max_depth=depth, random_state=seed)
    if kind == "forest classifier":
        return ensemble.RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=seed)
    if kind == "extra trees regressor":
        return ensemble.ExtraTreesRegressor(n_estimators=trees, max_depth=depth, random_state=seed)
    if kind == "gradient boosting classifier":
        return ensemble.GradientBoostingClassifier(n_estimators=trees, max_depth=depth, random_state=seed)
    if kind == "gradient boosting regressor":
        return ensemble.GradientBoostingRegressor(n_estimators=trees, max_depth=depth, random_state=seed)
    if kind == "hist gradient boosting classifier":
        return ensemble.HistGradientBoostingClassifier(max_iter=trees, max_depth=depth, random_state=seed)
    return ensemble.HistGradientBoostingRegressor(max_iter=trees, max_depth=depth, random_state=seed)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, pd.DataFrame]:
    kind = draw(st.sampled_from(KINDS))
    width = draw(st.integers(1, 6))
    rows = draw(st.integers(30, 120))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, width)) * draw(st.sampled_from([1e-3, 1.0, 1e3])))
    data.columns = [f"x{i}" for i in range(width)]
    if "gradient boosting" not in kind or "hist" in kind:
        missing = rng.random(data.shape) < draw(st.sampled_from([0.0, 0.1]))
        data = data.mask(missing)
    classes = draw(st.integers(2, 4))
    score = np.nan_to_num(data.to_numpy()).sum(axis=1) + rng.normal(size=rows)
    labels = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    y = labels if "classifier" in kind else score
    model = _model(kind, draw(st.integers(1, 8)), draw(st.integers(1, 6)), seed)
    return model.fit(data, y), data


def _explained_score(model: Any, data: pd.DataFrame, space: Space, column: np.ndarray) -> np.ndarray:
    if space is Space.PROBABILITY:
        proba = np.asarray(model.predict_proba(data), dtype=np.float64)
        return np.asarray(proba[np.arange(len(data)), column])
    if space is Space.MARGIN:
        margin = np.asarray(model.decision_function(data))
        return margin if margin.ndim == 1 else margin[np.arange(len(data)), column]
    return np.asarray(model.predict(data), dtype=np.float64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_base_plus_contributions_is_the_explained_score(case: tuple[Any, pd.DataFrame]) -> None:
    model, data = case
    explanation = explain(SklearnModel("model.pkl", model), data)
    classes = getattr(model, "classes_", None)
    if classes is None:
        column = np.zeros(len(data), dtype=np.int64)
    elif len(classes) == 2:
        column = np.full(len(data), 1 if explanation.space is Space.PROBABILITY else 0)
    else:
        assert explanation.explained_class is not None
        assert explanation.explained_class.tolist() == model.predict(data).tolist()
        column = np.searchsorted(classes, explanation.explained_class)
    total = explanation.base + explanation.contributions.sum(axis=1)
    score = _explained_score(model, data, explanation.space, column)
    np.testing.assert_allclose(total, score, rtol=1e-6, atol=1e-9)
    if isinstance(model, ensemble.GradientBoostingClassifier) and classes is not None and len(classes) > 2:
        return  # shap explains binary GradientBoosting only
    import shap

    reference = np.asarray(shap.TreeExplainer(model).shap_values(data))
    if reference.ndim == 3:  # (rows, features, outputs)
        reference = reference[np.arange(len(data)), :, column]
    np.testing.assert_allclose(explanation.contributions, reference, rtol=0, atol=1e-5)
