"""Exact per-row explanations of scores (``predict --explain``; docs/specification.md §13).

::

    from modelrouter import get_router
    from modelrouter.explain import explainer_for

    with get_router().acquire_model() as model:
        explanation = explainer_for(model).explain(model, frame)
    explanation.base + explanation.contributions.sum(axis=1)   # the explained score
    names, values = explanation.reasons(3)                     # the top three, per row

Methods, all exact: path-dependent TreeSHAP for scikit-learn trees, forests,
GradientBoosting and HistGradientBoosting (:mod:`.tree_kernel`); XGBoost's and LightGBM's
own contributions (:mod:`.booster_contribs`); linear SHAP against a background sample
(:mod:`.linear`). Pipelines are summed back to their input columns (:mod:`.lineage`).
"""

from __future__ import annotations

from modelrouter.explain.columns import BASE_COLUMN, contribution_columns
from modelrouter.explain.explainer import (
    BackgroundRequiredError,
    Explainer,
    Explanation,
    explain,
    explainer_for,
)
from modelrouter.explain.method import ExplanationUnsupportedError, Space

__all__ = [
    "BASE_COLUMN",
    "BackgroundRequiredError",
    "Explainer",
    "Explanation",
    "ExplanationUnsupportedError",
    "Space",
    "contribution_columns",
    "explain",
    "explainer_for",
]
