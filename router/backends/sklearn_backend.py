"""scikit-learn models saved with pickle or joblib.

Pickles execute code when loaded: load only files the operator chose (see the README). What
the estimator says about its inputs and outputs is read by
:mod:`~modelrouter.backends.sklearn_estimator`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
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
from modelrouter.backends.sklearn_estimator import output_spec, schema_of
from modelrouter.backends.sklearn_forest import direct_forest
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
        self._schema = schema_of(estimator)
        unique_input_names(path, self._schema.names)
        self._outputs = output_spec(estimator)
        # `classes` describes a single-output model; a multi-output one has per-output classes.
        self._classes = None if self._outputs.multi else self._outputs.classes[0]
        self._has_proba = self._outputs.has_classes and hasattr(estimator, "predict_proba")
        # The column index of the named matrices fed to the estimator, made once: a fresh one
        # per call, to build and for scikit-learn's feature-name check to read, cost about 5%
        # of a 50-tree forest's call on a few rows (the serve path's usual call).
        self._columns: pd.Index | None = None
        # A plain forest's trees called directly: its own numbers, without joblib's per-tree
        # wrapper (most of a served request's cost); None for every other estimator.
        self._forest = direct_forest(estimator)
        # A forest whose every input is a number, named as it was fitted (the schema is read
        # from it), is fed the bare matrix: its columns are the fitted features, in order.
        fitted = getattr(estimator, "feature_names_in_", None)
        self._bare_matrix = (
            self._forest is not None
            and all(d == NUMBER for d in self._schema.dtypes or (NUMBER,))
            and (self._schema.names is None) == (fitted is None)
            and (fitted is None or list(self._schema.names or ()) == [str(n) for n in fitted])
        )

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
        fitted_order = self._bare_matrix
        matrix = numeric_matrix(frame, features) if fitted_order else self._matrix(frame, features)
        try:
            if self._forest is not None:
                proba, label_values = self._forest_outputs(
                    matrix, labels=labels, probabilities=probabilities, fitted_order=fitted_order
                )
            else:
                proba = self.estimator.predict_proba(matrix) if probabilities else None
                label_values = self.estimator.predict(matrix) if labels else None
        except ValueError as exc:
            rejected = _rejected_values(exc, matrix, features)
            if rejected is None:
                raise  # the model's own code failed on valid input: a model error (base.run), exit 4
            raise rejected from exc
        return RawOutput(labels=label_values, probabilities=proba)

    def _forest_outputs(
        self,
        matrix: pd.DataFrame | npt.NDArray[Any],
        *,
        labels: bool,
        probabilities: bool,
        fitted_order: bool,
    ) -> tuple[npt.NDArray[Any] | None, npt.NDArray[Any] | None]:
        """Probabilities and labels from one pass over the trees (the forest's ``predict``
        computes the probabilities too: asking for both costs one pass, not two)."""
        forest = self._forest
        assert forest is not None
        if not forest.classifier:
            return None, forest.predict(matrix, fitted_order=fitted_order) if labels else None
        proba = forest.predict_proba(matrix, fitted_order=fitted_order) if probabilities or labels else None
        label_values = forest.labels(proba) if labels and proba is not None else None
        return (proba if probabilities else None), label_values

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
            index = self._columns if self._columns is not None else list(self._schema.names)
            named = pd.DataFrame(matrix, columns=index, copy=False)
            self._columns = named.columns  # immutable: each call's frame shares it
            return named
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
