"""Pick the exact method for a loaded model and explain frames with it.

:func:`explainer_for` looks at a model once (its kind, its pipeline's steps) and returns an
:class:`Explainer`, or raises :class:`ExplanationUnsupportedError` naming what it is and what
would work. The explainer is shared by every instance of a pool: :meth:`Explainer.explain`
takes the borrowed instance and a frame, and only reads the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from modelrouter.backends import Model
from modelrouter.errors import InvalidOptionError, ModelError
from modelrouter.explain.lineage import sources, split_pipeline
from modelrouter.explain.method import ExplanationUnsupportedError, Method, Space, Unsupported
from modelrouter.features import Frame, column_names, frame_length, numeric_matrix
from modelrouter.model_type import ModelType

if TYPE_CHECKING:
    from modelrouter.pool import BorrowedModel

__all__ = ["BackgroundRequiredError", "Explainer", "Explanation", "explain", "explainer_for"]

#: What has an exact method, for messages.
SUPPORTED = (
    "exact methods exist for decision trees, random forests, extra trees and gradient boosting "
    "(scikit-learn GradientBoosting and HistGradientBoosting, XGBoost, LightGBM), and for linear "
    "models given a background sample"
)


class BackgroundRequiredError(InvalidOptionError):
    """A linear model is explained against a background sample, and none was given
    (the CLI's usage error naming ``--background``, exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__("--background", message)


@dataclass(frozen=True)
class Explanation:
    """Per row: ``base + contributions.sum(axis=1)`` is the explained score.

    ``columns`` are the model's input columns (as named in the frame), in model order;
    ``explained_class`` the class each row's score is about (multi-class models only).
    """

    columns: tuple[str, ...]
    space: Space
    base: npt.NDArray[np.float64]
    contributions: npt.NDArray[np.float64]
    explained_class: npt.NDArray[Any] | None = None

    def reasons(self, k: int) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
        """The ``k`` columns with the largest absolute contribution per row, and their values.

        Ties are broken by input column order (the sort is stable). ``k`` is at most the
        number of columns.
        """
        if not 1 <= k <= len(self.columns):
            raise ValueError(f"k must be between 1 and the {len(self.columns)} input columns (got {k})")
        order = np.argsort(-np.abs(self.contributions), axis=1, kind="stable")[:, :k]
        names = np.asarray(self.columns, dtype=object)[order]
        return names, np.take_along_axis(self.contributions, order, axis=1)


@dataclass(frozen=True)
class Explainer:
    """An exact method bound to a model's structure (shared by all instances of a pool)."""

    method: Method
    #: The pipeline steps before the final estimator (transformed with the borrowed instance's).
    steps: int
    #: For each feature the final estimator sees, the input column it comes from (None: itself).
    lineage: npt.NDArray[np.int64] | None
    classes: npt.NDArray[Any] | None
    what: str

    @property
    def space(self) -> Space:
        return self.method.space

    @property
    def multiclass(self) -> bool:
        return self.classes is not None and len(self.classes) > 2

    def explain(
        self,
        model: Model | BorrowedModel,
        frame: Frame,
        *,
        exclude: Sequence[str] = (),
        labels: npt.NDArray[Any] | None = None,
    ) -> Explanation:
        """Explain ``frame`` with ``model`` (an instance of the model this was built for).

        ``labels``: the model's labels for these rows when already computed (multi-class
        models explain each row's predicted class). Raises like :meth:`Model.run`.
        """
        model = _unwrapped(model)
        features = model.schema.resolve(column_names(frame), exclude)
        rows = frame_length(frame)
        if rows == 0:
            empty = np.empty((0, len(features)))
            return Explanation(
                tuple(features), self.space, np.empty(0), empty, self._classes_of(np.empty(0, np.int64))
            )
        target = self._target(model, frame, exclude, labels, rows)
        matrix = self._matrix(model, frame, features)
        explained = self.method.explain(matrix, target, model)
        contributions = explained.contributions
        if self.lineage is not None:
            if contributions.shape[1] != len(self.lineage):
                raise ModelError(
                    f"{model.path}: the pipeline gave {contributions.shape[1]} features, "
                    f"its steps account for {len(self.lineage)}"
                )
            summed = np.zeros((rows, len(features)))
            for j, source in enumerate(self.lineage):
                summed[:, source] += contributions[:, j]
            contributions = summed
        # + 0.0 turns the -0.0 of a zero coefficient times a negative value into 0.0 (written "0").
        return Explanation(
            tuple(features), self.space, explained.base + 0.0, contributions + 0.0, self._classes_of(target)
        )

    def _classes_of(self, target: npt.NDArray[np.int64]) -> npt.NDArray[Any] | None:
        if not self.multiclass or self.classes is None:
            return None
        return np.asarray(self.classes)[target]

    def _target(
        self, model: Model, frame: Frame, exclude: Sequence[str], labels: npt.NDArray[Any] | None, rows: int
    ) -> npt.NDArray[np.int64]:
        if not self.method.classifier or self.classes is None:
            return np.zeros(rows, dtype=np.int64)
        if not self.multiclass:
            return np.full(rows, self.method.positive, dtype=np.int64)
        if labels is None:
            labels = model.run(frame, labels=True, exclude=exclude).labels
        index = {c: i for i, c in enumerate(np.asarray(self.classes).tolist())}
        return np.fromiter((index[v] for v in np.asarray(labels).tolist()), dtype=np.int64, count=rows)

    def _matrix(self, model: Model, frame: Frame, features: Sequence[str]) -> npt.NDArray[np.float64]:
        estimator = getattr(model, "estimator", None)
        if estimator is None:  # a native booster
            return numeric_matrix(frame, features, "float64")
        fed: Any = model.feature_matrix(frame, features)  # type: ignore[attr-defined]
        return _transformed(split_pipeline(estimator)[0][: self.steps], fed)


def _transformed(steps: Sequence[Any], fed: Any) -> npt.NDArray[np.float64]:
    for step in steps:
        fed = step.transform(fed)
    if hasattr(fed, "toarray"):  # a sparse matrix (one-hot encoders' default)
        fed = fed.toarray()
    return np.asarray(fed, dtype=np.float64)


# -- choosing the method ------------------------------------------------------------------------

Builder = Callable[[Model, "Frame | None", Sequence[str]], Explainer]


def _booster(model: Model, background: Frame | None, exclude: Sequence[str]) -> Explainer:
    from modelrouter.explain.booster_contribs import (
        LightGBMMethod,
        XGBoostMethod,
        lightgbm_space,
        xgboost_space,
    )

    booster: Any = getattr(model, "booster")  # noqa: B009 - the booster backends' attribute
    classifier = model.classes is not None
    method: Method
    if model.model_type is ModelType.XGBOOST:
        method = XGBoostMethod(
            booster=booster, space=xgboost_space(booster, classifier), classifier=classifier
        )
    else:
        space = lightgbm_space(booster, classifier)
        method = LightGBMMethod(booster=booster, space=space, classifier=classifier)
    return Explainer(method, 0, None, model.classes, type(booster).__name__)


def _sklearn(model: Model, background: Frame | None, exclude: Sequence[str]) -> Explainer:
    from modelrouter.explain.tree_models import tree_method

    estimator: Any = getattr(model, "estimator")  # noqa: B009 - the scikit-learn backends' attribute
    steps, final = split_pipeline(estimator)
    what = f"a {type(final).__name__}" + (" in a pipeline" if steps else "")
    lineage = sources(steps, model.schema.width or _width(final)) if steps else None
    classes = model.classes
    method: Method | None = tree_method(final)
    if method is not None:
        from modelrouter.backends.boosters import import_optional
        from modelrouter.explain.tree_kernel import warm_up

        import_optional("numba", f"{model.path}: explaining {what}")  # the TreeSHAP kernel's compiler
        warm_up()
    else:
        method = _wrapped_booster(final) or _linear(model, final, steps, background, exclude, what)
    if method is None:
        raise Unsupported(what, SUPPORTED)
    return Explainer(method, len(steps), lineage, classes, what)


def _width(final: Any) -> int:
    return int(getattr(final, "n_features_in_", 0))


def _wrapped_booster(final: Any) -> Method | None:
    """XGBoost's and LightGBM's scikit-learn wrappers (XGBClassifier, LGBMRegressor…)."""
    from modelrouter.explain.booster_contribs import (
        LightGBMMethod,
        XGBoostMethod,
        lightgbm_space,
        xgboost_space,
    )

    library = type(final).__module__.split(".")[0]
    classifier = hasattr(final, "classes_")
    if library == "xgboost":
        booster = final.get_booster()
        return XGBoostMethod(booster=booster, space=xgboost_space(booster, classifier), classifier=classifier)
    if library == "lightgbm":
        booster = final.booster_
        return LightGBMMethod(
            booster=booster, space=lightgbm_space(booster, classifier), classifier=classifier
        )
    return None


def _linear(
    model: Model, final: Any, steps: list[Any], background: Frame | None, exclude: Sequence[str], what: str
) -> Method | None:
    from modelrouter.explain.linear import LinearMethod, is_linear

    if not is_linear(final):
        return None
    coef = np.asarray(final.coef_)
    if coef.ndim == 2 and coef.shape[0] > 1 and not hasattr(final, "classes_"):
        raise Unsupported(f"{what} with {coef.shape[0]} targets", "a single-target model")
    if background is None:
        raise BackgroundRequiredError(
            f"{model.path}: {what} is explained against a background sample: pass --background FILE "
            "(a CSV or Parquet file of training rows)"
        )
    features = model.schema.resolve(column_names(background), exclude)
    fed = model.feature_matrix(background, features)  # type: ignore[attr-defined]
    return LinearMethod.build(final, _transformed(steps, fed))


def _onnx(model: Model, background: Frame | None, exclude: Sequence[str]) -> Explainer:
    raise Unsupported(
        "an ONNX model",
        "explain the model it was converted from instead (its scikit-learn pickle, XGBoost .json "
        "or LightGBM .txt file, with -m)",
    )


_BUILDERS: dict[ModelType, Builder] = {
    ModelType.SKLEARN: _sklearn,
    ModelType.SKOPS: _sklearn,
    ModelType.XGBOOST: _booster,
    ModelType.LIGHTGBM: _booster,
    ModelType.ONNX: _onnx,
}


def explainer_for(
    model: Model | BorrowedModel, background: Frame | None = None, *, exclude: Sequence[str] = ()
) -> Explainer:
    """The exact explainer for ``model``; ``background`` (rows like the input's) is needed
    for linear models (``exclude``: its columns that are not features, for a model that
    knows no feature names).

    Raises :class:`ExplanationUnsupportedError` when the model has no exact method (a
    multi-output model, k-NN, a kernel SVM, an ONNX file…) and
    :class:`BackgroundRequiredError` for a linear model without ``background``.
    """
    model = _unwrapped(model)
    spec = model.outputs
    if spec.multi:
        raise ExplanationUnsupportedError(
            f"{model.path}: cannot explain a model with {spec.describe()}: there is no single score "
            "per row to explain; explain one output's model at a time"
        )
    builder = _BUILDERS[ModelType(model.model_type)]
    try:
        return builder(model, background, exclude)
    except Unsupported as exc:
        raise ExplanationUnsupportedError(
            f"{model.path}: no exact explanation method for {exc.what}; {exc.instead}"
        ) from None


def _unwrapped(model: Model | BorrowedModel) -> Model:
    """The instance itself (a model borrowed from a pool is wrapped to count its rows)."""
    from modelrouter.pool import BorrowedModel

    return model.model if isinstance(model, BorrowedModel) else model


def explain(model: Model | BorrowedModel, frame: Frame, *, background: Frame | None = None) -> Explanation:
    """Explain ``frame`` with ``model`` (e.g. one borrowed from a pool) in one call."""
    return explainer_for(model, background).explain(model, frame)
