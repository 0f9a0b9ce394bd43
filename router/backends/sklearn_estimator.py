"""What a fitted scikit-learn estimator says about itself, read without running it.

Its outputs and their classes (:func:`output_spec`) and its input schema — the column names
it was fitted on, and which of them it encodes as text (:func:`schema_of`), found by walking
its parts (pipelines, column transformers, meta-estimators) with a bounded search.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import InputSchema, OutputSpec
from modelrouter.features import NUMBER

__all__ = ["output_spec", "schema_of"]


def output_spec(estimator: Any) -> OutputSpec:
    """Outputs and their classes, from the fitted attributes (the model is not run).

    Classifiers: ``classes_`` is one array, or a list of one array per output (multi-output
    trees, forests, neighbours, ``MultiOutputClassifier``). Regressors record their target
    count in different places; an estimator that records none is taken as single-output
    (and a 2-D result is then refused as a shape it did not declare).
    """
    classes = getattr(estimator, "classes_", None)
    if isinstance(classes, list):
        per_output = tuple(np.asarray(c) for c in classes)
        return OutputSpec(classes=per_output, dtypes=tuple(_label_dtype(c) for c in per_output))
    if classes is not None:
        array = np.asarray(classes)
        return OutputSpec(classes=(array,), dtypes=(_label_dtype(array),))
    count = _regression_outputs(estimator)
    return OutputSpec(classes=(None,) * count, dtypes=(np.dtype(np.float64),) * count)


def _label_dtype(classes: npt.NDArray[Any]) -> np.dtype[Any]:
    return np.dtype(object) if classes.dtype.kind in "OUS" else classes.dtype


def _regression_outputs(estimator: Any, depth: int = 0) -> int:
    from sklearn.multioutput import MultiOutputRegressor, RegressorChain
    from sklearn.pipeline import Pipeline

    if depth > 8:
        return 1
    if isinstance(estimator, Pipeline):
        return _regression_outputs(estimator.steps[-1][1], depth + 1)
    if isinstance(estimator, MultiOutputRegressor | RegressorChain):
        return len(estimator.estimators_)
    if getattr(estimator, "_training_dim", None) == 1:  # TransformedTargetRegressor on a 1-D y
        return 1
    outputs = getattr(estimator, "n_outputs_", None)
    if isinstance(outputs, int | np.integer):
        return int(outputs)
    from sklearn.kernel_ridge import KernelRidge

    if isinstance(estimator, KernelRidge):  # (samples,) or (samples, targets); SVR's differs
        return _columns(estimator.dual_coef_)
    for attribute, axis in (("coef_", 0), ("_y", 1), ("y_train_", 1)):
        value = getattr(estimator, attribute, None)
        if isinstance(value, np.ndarray) and value.ndim == 2:
            return int(value.shape[axis])
        if isinstance(value, np.ndarray):
            return 1
    # Wrappers: ask a fitted inner estimator. Ensembles first: bagging's `estimator_` is the
    # unfitted template, its fitted copies are in `estimators_`.
    inner_list = getattr(estimator, "estimators_", None)
    if isinstance(inner_list, list) and inner_list and hasattr(inner_list[0], "predict"):
        return _regression_outputs(inner_list[0], depth + 1)
    for attribute in ("regressor_", "estimator_", "final_estimator_"):
        inner = getattr(estimator, attribute, None)
        if inner is not None:
            return _regression_outputs(inner, depth + 1)
    return 1


def _columns(array: Any) -> int:
    return int(array.shape[1]) if isinstance(array, np.ndarray) and array.ndim == 2 else 1


def schema_of(estimator: Any) -> InputSchema:
    names_attr = getattr(estimator, "feature_names_in_", None)
    width = int(getattr(estimator, "n_features_in_", 0) or (len(names_attr) if names_attr is not None else 0))
    names = None if names_attr is None else tuple(str(n) for n in names_attr)
    string_columns = _string_columns(estimator) | (_dropped_columns(estimator, names) if names else set())
    if names is None:
        return InputSchema(names=None, dtypes=(NUMBER,) * width, width=width)
    dtypes = tuple("string" if n in string_columns else NUMBER for n in names)
    # LightGBM's wrappers report the names their booster stored (spaces → underscores).
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    rule = "lightgbm" if type(final).__module__.split(".")[0] == "lightgbm" else None
    return InputSchema(names=names, dtypes=dtypes, width=len(names), name_rule=rule)


def _string_columns(estimator: Any) -> set[str]:
    """Input columns the model takes as text (so they are fed as text, not parsed as floats).

    scikit-learn does not record input dtypes. Two reliable signs, wherever they sit in the
    model (a ColumnTransformer selecting by name, index or mask, a pipeline nested in a
    pipeline, HistGradientBoosting's own categorical preprocessor, a meta-estimator):

    - a fitted encoder (``OneHotEncoder``, ``OrdinalEncoder``, ``TargetEncoder``…) whose
      ``categories_`` for a column hold strings. Judged column by column: an encoder over a
      text and an integer column must get the integers as numbers (``"1"`` is not the
      category ``1``; a ``handle_unknown="ignore"`` encoder would silently encode it as
      unknown and the predictions would change);
    - a ColumnTransformer column that goes to a text vectorizer (``TfidfVectorizer``…), or
      to an encoder behind a step that hid the names (an imputer), or an imputer that fills
      a column with a string.
    """
    from sklearn.compose import ColumnTransformer

    found: set[str] = set()
    for part in _sub_estimators(estimator):
        categories = getattr(part, "categories_", None)
        names = getattr(part, "feature_names_in_", None)
        if isinstance(categories, list) and names is not None and len(names) == len(categories):
            found.update(str(n) for n, c in zip(names, categories, strict=True) if _holds_text(c))
        # An imputer that fills a column with a string (most_frequent, constant) holds text.
        fills = getattr(part, "statistics_", None)
        if isinstance(fills, np.ndarray) and names is not None and fills.shape == (len(names),):
            found.update(str(n) for n, v in zip(names, fills, strict=True) if isinstance(v, str))
        if isinstance(part, ColumnTransformer):
            found.update(_column_transformer_text(part))
    return found


def _dropped_columns(estimator: Any, names: tuple[str, ...]) -> set[str]:
    """Input columns the model never looks at: fed as they are, text included.

    A model fitted on a frame with an id or a free-text column that its ColumnTransformer
    drops (``remainder="drop"``, the default) still asks for the column by name, but any
    value will do. Proven only when every part of the model that consumes the whole input
    is a ColumnTransformer dropping the column: a part that sees the whole input and holds
    another that sees it too (a Pipeline, a meta-estimator) hands it on, and any other
    consumer (a bare estimator, a FeatureUnion) may use the column.
    """
    from sklearn.compose import ColumnTransformer

    full = [p for p in _sub_estimators(estimator) if _names_of(p) == names]
    consumers = [p for p in full if not any(_names_of(q) == names for q in list(_sub_estimators(p))[1:])]
    if not consumers or not all(isinstance(p, ColumnTransformer) for p in consumers):
        return set()
    dropped = set(names)
    for transformer in consumers:
        for _, part, columns in transformer.transformers_:
            if not (isinstance(part, str) and part == "drop"):
                dropped -= set(_selected_names(columns, names))
    return dropped


def _names_of(part: Any) -> tuple[str, ...] | None:
    names = getattr(part, "feature_names_in_", None)
    return None if names is None else tuple(str(n) for n in names)


def _holds_text(categories: Any) -> bool:
    values = np.asarray(categories)
    if values.dtype.kind in "US":
        return True
    return values.dtype.kind == "O" and any(isinstance(v, str | bytes) for v in values.ravel())


def _column_transformer_text(transformer: Any) -> list[str]:
    """Names of the columns a fitted ColumnTransformer hands to a part that takes text.

    A text vectorizer takes its column as text; an encoder after a step that hides the
    names (an imputer giving a bare array) has ``categories_`` in the order of the columns
    selected, or, when the counts differ, marks all of them as before.
    """
    from sklearn.pipeline import Pipeline

    names = getattr(transformer, "feature_names_in_", None)
    found: list[str] = []
    for _, part, columns in getattr(transformer, "transformers_", []):
        selected = _selected_names(columns, names)
        steps = [s for _, s in part.steps] if isinstance(part, Pipeline) else [part]
        if steps and hasattr(steps[0], "build_analyzer"):  # CountVectorizer, TfidfVectorizer…
            found.extend(selected)
            continue
        for step in steps:
            categories = getattr(step, "categories_", None)
            if not isinstance(categories, list):
                continue
            if getattr(step, "feature_names_in_", None) is None:  # else judged by name
                if len(categories) == len(selected):
                    found.extend(n for n, c in zip(selected, categories, strict=True) if _holds_text(c))
                elif any(_holds_text(c) for c in categories):
                    found.extend(selected)
            break
    return found


def _selected_names(columns: Any, names: Any) -> list[str]:
    """A ColumnTransformer's column selection (name(s), index(es), mask, slice) as names."""
    if isinstance(columns, str):
        return [columns]
    if names is not None:
        try:
            return [str(c) for c in np.atleast_1d(np.asarray(names, dtype=object)[columns])]
        except (IndexError, TypeError, ValueError):
            pass
    try:
        return [c for c in columns if isinstance(c, str)]
    except TypeError:
        return []


#: Bounds of the walk over a model's parts: a forest of 10,000 trees is 10,000 parts, a
#: vectorizer's vocabulary a dict of a million words that is scanned, not walked.
_MAX_SCANNED = 2_000_000
_MAX_DEPTH = 16


def _sub_estimators(estimator: Any) -> Iterator[Any]:
    """``estimator`` and every scikit-learn object reachable from its attributes.

    Fitted parts live in attributes whose names vary by class (``steps``, ``transformers_``,
    ``_preprocessor``, ``calibrated_classifiers_``, ``best_estimator_``, ``estimators_``…):
    attributes of scikit-learn objects are followed, through lists, tuples and dicts; arrays
    and other objects are not. A large container whose first values hold no parts (a
    vectorizer's vocabulary of a million words) is not scanned: loading such a model took
    7 s more. Bounded in depth and in values scanned; each object once.
    """
    from sklearn.base import BaseEstimator

    def may_hold_parts(value: Any) -> bool:
        if isinstance(value, list | tuple | dict | BaseEstimator):
            return True
        return type(value).__module__.split(".")[0] == "sklearn"  # e.g. calibration's fitted parts

    seen: set[int] = set()
    scanned = 0
    stack: list[tuple[Any, int]] = [(estimator, 0)]
    while stack:
        item, depth = stack.pop()
        if id(item) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(item))
        if isinstance(item, list | tuple | dict):
            contents = item.values() if isinstance(item, dict) else item
            if len(item) > _SAMPLE and not any(
                may_hold_parts(v) for v in itertools.islice(contents, _SAMPLE)
            ):
                continue
            values = list(contents)
        else:
            yield item
            attributes = getattr(item, "__dict__", None)
            values = list(attributes.values()) if isinstance(attributes, dict) else []
        scanned += len(values)
        if scanned > _MAX_SCANNED:
            return
        stack.extend((v, depth + 1) for v in values if may_hold_parts(v))


#: A container longer than this is walked only when one of its first values may hold parts.
_SAMPLE = 64
