"""scikit-learn models saved with pickle or joblib.

Pickles execute code when loaded: load only files the operator chose (see the README).
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from modelrouter.backends.base import (
    InputSchema,
    Model,
    OutputSpec,
    Prediction,
    RawOutput,
    read_model_bytes,
    unique_input_names,
)
from modelrouter.errors import DataError, ModelLoadError, RejectedValuesError
from modelrouter.features import NUMBER, Frame, column_as, numeric_matrix
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

__all__ = ["ModelVersionWarning", "SklearnModel"]


class ModelVersionWarning(UserWarning):
    """The model was pickled by another scikit-learn version than the one installed."""


class SklearnModel(Model):
    """A fitted scikit-learn estimator or pipeline."""

    model_type = ModelType.SKLEARN

    def __init__(self, path: ModelLocation, estimator: Any) -> None:
        super().__init__(path)
        if not hasattr(estimator, "predict"):
            raise ModelLoadError(
                f"{path}: the file holds a {type(estimator).__name__}, not a fitted estimator with predict()"
            )
        self.estimator = estimator
        self._schema = _schema_of(estimator)
        unique_input_names(path, self._schema.names)
        self._outputs = _output_spec(estimator)
        # `classes` describes a single-output model; a multi-output one has per-output classes.
        self._classes = None if self._outputs.multi else self._outputs.classes[0]
        self._has_proba = self._outputs.has_classes and hasattr(estimator, "predict_proba")

    @classmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> SklearnModel:
        import joblib
        from sklearn.exceptions import InconsistentVersionWarning

        raw = read_model_bytes(path, data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InconsistentVersionWarning)
            try:
                estimator = joblib.load(io.BytesIO(raw))
            except ModuleNotFoundError as exc:
                raise ModelLoadError(_missing_module(path, exc)) from exc
            except Exception as exc:  # unpickling can raise nearly anything
                raise ModelLoadError(
                    f"{path}: cannot load as a scikit-learn pickle ({type(exc).__name__}: {exc})"
                ) from exc
        mismatches = [w.message for w in caught if isinstance(w.message, InconsistentVersionWarning)]
        for w in caught:
            if not isinstance(w.message, InconsistentVersionWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if mismatches:
            first = mismatches[0]
            warnings.warn(
                ModelVersionWarning(
                    f"{path}: pickled with scikit-learn {first.original_sklearn_version}, "
                    f"running {first.current_sklearn_version}; predictions may differ — "
                    "rebuild the model or install the matching version"
                ),
                stacklevel=2,
            )
        _limit_threads(estimator, threads)
        return cls(path, estimator)

    @property
    def schema(self) -> InputSchema:
        return self._schema

    @property
    def classes(self) -> npt.NDArray[np.generic] | None:
        return self._classes

    @property
    def has_probabilities(self) -> bool:
        return self._has_proba

    @property
    def label_dtype(self) -> np.dtype[np.generic]:
        dtypes = set(self._outputs.dtypes)
        return dtypes.pop() if len(dtypes) == 1 else np.dtype(object)

    @property
    def outputs(self) -> OutputSpec:
        return self._outputs

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction | RawOutput:
        matrix = self._matrix(frame, features)
        try:
            proba = self.estimator.predict_proba(matrix) if probabilities else None
            label_values = self.estimator.predict(matrix) if labels else None
        except ValueError as exc:
            rejected = _rejected_values(exc, matrix, features)
            if rejected is None:
                raise  # the model's own code failed on valid input: a model error (base.run), exit 4
            raise rejected from exc
        return RawOutput(labels=label_values, probabilities=proba)

    def feature_matrix(self, frame: Frame, features: Sequence[str]) -> pd.DataFrame | npt.NDArray[Any]:
        """The ``features`` of ``frame`` as the estimator is fed them (see :meth:`_matrix`)."""
        return self._matrix(frame, features)

    def _matrix(self, frame: Frame, features: Sequence[str]) -> pd.DataFrame | npt.NDArray[Any]:
        """Feed what the model was fitted on: a named DataFrame, or a bare array."""
        dtypes = self._schema.dtypes or (NUMBER,) * len(features)
        if all(d == NUMBER for d in dtypes):
            # One matrix in the columns' own common dtype: what DataFrame.to_numpy() gives the
            # model when called directly, without pandas' per-column blocks and extra copies.
            matrix = numeric_matrix(frame, features)
            if self._schema.names is None:
                return matrix
            # Named as the model knows them (``features`` may be the input's spelling of them).
            return pd.DataFrame(matrix, columns=list(self._schema.names), copy=False)
        names = self._schema.names or features
        columns = {names[i]: column_as(frame, name, dtypes[i]) for i, name in enumerate(features)}
        return pd.DataFrame(columns, copy=False)


def _missing_module(path: ModelLocation, exc: ModuleNotFoundError) -> str:
    """Name the package the pickle needs (and its extra, for XGBoost/LightGBM wrappers)."""
    from modelrouter.backends.boosters import OPTIONAL_PACKAGES

    package = (exc.name or str(exc)).split(".")[0]
    extra = OPTIONAL_PACKAGES.get(package)
    how = f"pip install 'modelrouter[{extra}]'" if extra else f"install {package}"
    return (
        f"{path}: the pickled model needs the {package} package, which is not installed here "
        f"({how}; a pickle names the classes it is made of, and {package} provides some)"
    )


def _limit_threads(estimator: Any, threads: int | None) -> None:
    """Give XGBoost/LightGBM wrappers the pool's thread budget (instances × threads ≤ cores).

    Their default is every core per call, which oversubscribes the CPU with several
    instances (the ONNX rule, docs/performance.md).
    """
    if threads is None:
        return
    module = type(estimator).__module__.split(".")[0]
    if module in ("xgboost", "lightgbm") and "n_jobs" in estimator.get_params(deep=False):
        estimator.set_params(n_jobs=max(1, threads))


#: Packages whose ValueError during predict is input validation (the input's fault).
_VALIDATING_PACKAGES = frozenset({"sklearn", "numpy", "pandas", "scipy", "imblearn", "category_encoders"})
#: Where scikit-learn checks what it is given: a ValueError raised from here, or from what
#: they call (numpy's conversions), is about the input.
_VALIDATION_MODULES = frozenset(
    {
        "sklearn.utils.validation",
        "sklearn.utils._array_api",
        "sklearn.utils._set_output",
        "sklearn.preprocessing._encoders",
        "sklearn.compose._column_transformer",
    }
)
_VALIDATION_FUNCTIONS = frozenset(
    {"_check_n_features", "_check_feature_names", "_validate_data", "validate_data"}
)


def _is_input_validation(exc: ValueError) -> bool:
    """Whether input checks raised ``exc`` (wrong width or names, NaN or inf where not
    accepted, text that is no number, an unknown category): scikit-learn's validation is on
    the way to where it was raised, or a validating library raised it itself; otherwise the
    model's own code failed on input it accepted (a custom estimator's bug)."""
    traceback = exc.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if (
            frame.f_globals.get("__name__") in _VALIDATION_MODULES
            or frame.f_code.co_name in _VALIDATION_FUNCTIONS
        ):
            return True
        traceback = traceback.tb_next
    return _raised_in(exc) in _VALIDATING_PACKAGES


def _rejected_values(
    exc: ValueError, matrix: pd.DataFrame | npt.NDArray[Any], features: Sequence[str]
) -> DataError | None:
    """Turn an input validation error into a DataError pointing at the row and column of the
    first value of the kind it refused (NaN, or infinity), looking at each numeric column on
    its own: a pipeline fed a frame of text and number columns (a ColumnTransformer) names
    the cell as a plain estimator does. ``None`` when the error was not raised by input
    checks (:func:`_is_input_validation`): the model is at fault."""
    if not _is_input_validation(exc):
        return None
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    refused: Callable[[npt.NDArray[Any]], npt.NDArray[np.bool_]] = _nonfinite
    if "infinity" in lowered and "nan" not in lowered.replace("infinity", ""):
        refused = _infinite
    elif "nan" in lowered:
        refused = _nan
    first: tuple[int, int, float] | None = None
    for j in range(len(features)):
        column_values = (
            matrix.iloc[:, j].to_numpy() if isinstance(matrix, pd.DataFrame) else np.asarray(matrix)[:, j]
        )
        if column_values.dtype.kind != "f":
            continue
        rows = np.flatnonzero(refused(column_values))
        if len(rows) and (first is None or int(rows[0]) < first[0]):
            first = (int(rows[0]), j, float(column_values[rows[0]]))
    if first is not None:
        row, j, value = first
        column = str(features[j])
        return RejectedValuesError(
            f"column {column!r}: value {value} rejected by the model ({text})", column=column, row=row
        )
    return DataError(text)


def _nonfinite(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return np.asarray(~np.isfinite(values), dtype=bool)


def _infinite(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return np.asarray(np.isinf(values), dtype=bool)


def _nan(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return np.asarray(np.isnan(values), dtype=bool)


def _raised_in(exc: BaseException) -> str:
    """The top-level package of the function that raised ``exc``."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".", 1)[0]


def _output_spec(estimator: Any) -> OutputSpec:
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


def _schema_of(estimator: Any) -> InputSchema:
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
