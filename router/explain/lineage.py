"""Which input column each feature of a pipeline's final estimator comes from.

Contributions of the features a pipeline makes (one-hot columns, imputer indicators, scaled
copies) are summed back to the input column they came from (docs/specification.md §13). Only
steps whose column lineage is known are followed; any other step has no exact method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.explain.method import Unsupported

__all__ = ["KNOWN_STEPS", "sources", "split_pipeline"]

#: What the lineage can follow, for messages.
KNOWN_STEPS = (
    "ColumnTransformer, OneHotEncoder, OrdinalEncoder, scalers (Standard, MinMax, MaxAbs, Robust), "
    "SimpleImputer and feature selectors"
)


def split_pipeline(estimator: Any) -> tuple[list[Any], Any]:
    """The preprocessing steps and the final estimator (nested pipelines flattened)."""
    from sklearn.pipeline import Pipeline

    steps: list[Any] = []
    while isinstance(estimator, Pipeline):
        inner = [
            s for _, s in estimator.steps if s is not None and not (isinstance(s, str) and s == "passthrough")
        ]
        steps.extend(inner[:-1])
        estimator = inner[-1]
    return steps, estimator


def sources(steps: list[Any], width: int) -> npt.NDArray[np.int64]:
    """For each feature the final estimator sees, the index of the input column it comes from."""
    mapping = np.arange(width, dtype=np.int64)
    for step in steps:
        mapping = mapping[_lineage(step, len(mapping))]
    return mapping


def _lineage(step: Any, width: int) -> npt.NDArray[np.int64]:
    """For each output of ``step`` (fitted on ``width`` inputs), the input it comes from."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import SelectorMixin
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        MaxAbsScaler,
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        StandardScaler,
    )

    if step is None or (isinstance(step, str) and step == "passthrough"):
        return np.arange(width, dtype=np.int64)
    if isinstance(step, Pipeline):
        inner, last = split_pipeline(step)
        return sources([*inner, last], width)
    if isinstance(step, StandardScaler | MinMaxScaler | MaxAbsScaler | RobustScaler | OrdinalEncoder):
        return np.arange(width, dtype=np.int64)
    if isinstance(step, OneHotEncoder):
        counts = np.asarray(step._n_features_outs, dtype=np.int64)
        return np.repeat(np.arange(width, dtype=np.int64), counts)
    if isinstance(step, SimpleImputer):
        return _imputer(step, width)
    if isinstance(step, SelectorMixin):
        return np.asarray(step.get_support(indices=True), dtype=np.int64)
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step)
    raise Unsupported(
        f"a pipeline with a {type(step).__name__} step (its column lineage is not known)",
        f"a pipeline made of {KNOWN_STEPS} before the model",
    )


def _imputer(imputer: Any, width: int) -> npt.NDArray[np.int64]:
    statistics = np.asarray(imputer.statistics_, dtype=object)
    kept = np.arange(width, dtype=np.int64)
    if not getattr(imputer, "keep_empty_features", False):
        # Columns that were empty in training are dropped (their statistic is NaN).
        empty = np.array([isinstance(s, float) and np.isnan(s) for s in statistics], dtype=bool)
        kept = kept[~empty]
    indicator = getattr(imputer, "indicator_", None)
    if indicator is not None:
        kept = np.concatenate([kept, np.asarray(indicator.features_, dtype=np.int64)])
    return kept


def _column_transformer(transformer: Any) -> npt.NDArray[np.int64]:
    indices: dict[str, Any] = transformer._transformer_to_input_indices
    slices: dict[str, slice] = transformer.output_indices_
    width = max((s.stop for s in slices.values()), default=0)
    out = np.full(width, -1, dtype=np.int64)
    passthrough = _passthrough_names(transformer)
    for name, part, _ in transformer.transformers_:
        where = slices.get(name)
        if where is None or where.stop == where.start:
            continue  # dropped, or nothing selected
        selected = np.asarray(indices[name], dtype=np.int64)
        if name in passthrough and _is_identity(part):
            out[where] = selected  # each output column is its input column
        else:
            out[where] = selected[_lineage(part, len(selected))]
    if (out < 0).any():
        raise Unsupported("a ColumnTransformer whose outputs could not all be traced", KNOWN_STEPS)
    return out


def _passthrough_names(transformer: Any) -> frozenset[str]:
    """The entries of ``transformer`` given as ``'passthrough'`` (``remainder`` included):
    their columns are their own inputs (docs/explanations.md, "Pipelines").

    The fitted ``transformers_`` hold scikit-learn's stand-in for a passthrough (an identity
    ``FunctionTransformer`` in recent versions, the string itself in older ones), which looks
    like a user's own ``FunctionTransformer``: only the unfitted parameters tell them apart.
    """
    names = {name for name, part, _ in transformer.transformers if _is_passthrough(part)}
    if _is_passthrough(transformer.remainder):
        names.add("remainder")  # scikit-learn refuses "remainder" as a transformer's name
    return frozenset(names)


def _is_passthrough(part: Any) -> bool:
    return isinstance(part, str) and part == "passthrough"


def _is_identity(part: Any) -> bool:
    """Whether the fitted stand-in of a passthrough entry is an identity, as scikit-learn makes it."""
    from sklearn.preprocessing import FunctionTransformer

    if _is_passthrough(part):
        return True
    return isinstance(part, FunctionTransformer) and part.func is None
