"""A direct call of a random forest's trees, without scikit-learn's per-call thread machinery.

A fitted ``RandomForestClassifier`` (or ``ExtraTrees…``, or a regressor) scores by handing
each tree to joblib's ``Parallel``, even with ``n_jobs=1``: every tree's call is wrapped in
a copy of the configuration and of the warning filters. On the few rows of a served request
that wrapper is most of the cost (a 50-tree forest on 5 rows: 3.0 ms, against 0.6 ms for the
same trees called in a loop; docs/models.md, "scikit-learn forests").

:class:`DirectForest` does what the forest's own ``predict_proba``/``predict`` do, in the
same order, with the same functions: validate the matrix once (feature names, width,
float32, NaN where the trees accept it), add each tree's
``predict_proba(X, check_input=False)`` (``predict`` for a regressor; both are the tree
structure's ``predict`` cut to the classes once the input is checked) into one float64
sum in the order of ``estimators_``, divide by the number of trees, and take the labels as
``classes_[argmax]``. (Input the forest's check would pass unchanged, finite numbers of
the fitted width and names, is converted to float32 directly; anything else goes through
that check.) The result is bit-for-bit the forest's sequential result, and the
forest's predictions are the contract, so the direct path is taken only where that holds:

- the estimator is a scikit-learn forest whose class overrides neither method;
- one output (``n_outputs_ == 1``), ``n_jobs`` of ``None`` or 1 (a model saved with more
  jobs keeps its threads: the order of its sums is then its own), ``verbose`` 0;
- every tree's method is scikit-learn's own;
- and, when the model is loaded, the two agree on a probe matrix (:func:`direct_forest`).

Anything else (a pipeline, a subclass, a forest scikit-learn restructured in a later
version) is scored by the estimator itself, as before.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DirectForest", "direct_forest"]


class DirectForest:
    """The trees of a qualifying forest, called one after another (see the module's text)."""

    def __init__(self, forest: Any, *, classifier: bool) -> None:
        self.forest = forest
        self.classifier = classifier
        self._trees = list(forest.estimators_)
        # Each tree's ``predict_proba``/``predict`` with ``check_input=False`` is its fitted
        # check, then ``tree_.predict(X)`` cut to the classes (the first column for a
        # regressor): the check is the forest's, done once, so the cut is all that remains.
        self._cuts = [(tree.tree_, int(tree.n_classes_) if classifier else 1) for tree in self._trees]
        self._width = int(forest.n_features_in_)
        names = getattr(forest, "feature_names_in_", None)
        self._names: list[str] | None = None if names is None else [str(n) for n in names]

    def _input(self, matrix: Any, fitted_order: bool) -> Any:
        """``matrix`` as the trees take it (C-ordered float32): converted directly when it
        is what the forest's check passes unchanged (finite numbers, the fitted width, the
        fitted names on a frame), else by the forest's own check, which raises its own
        errors or accepts NaN where its trees do. ``fitted_order``: ``matrix`` is an array
        whose columns are the fitted features in their order (the caller matched the names)."""
        fast = self._plain(matrix, fitted_order)
        if fast is not None:
            return fast
        if fitted_order and self._names is not None and isinstance(matrix, np.ndarray):
            import pandas as pd

            matrix = pd.DataFrame(matrix, columns=self._names, copy=False)  # as a caller names it
        return self.forest._validate_X_predict(matrix)

    def _plain(self, matrix: Any, fitted_order: bool) -> npt.NDArray[np.float32] | None:
        if isinstance(matrix, np.ndarray):
            if self._names is not None and not fitted_order:
                return None  # the forest warns that the names are missing: let it
            values = matrix
        elif self._names is not None and hasattr(matrix, "columns") and hasattr(matrix, "to_numpy"):
            if list(matrix.columns) != self._names:
                return None
            values = matrix.to_numpy()
        else:
            return None
        if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] != self._width:
            return None
        if values.dtype.kind not in "fiub":
            return None
        with np.errstate(over="ignore"):  # beyond float32: inf, refused below by the forest's check
            converted = np.ascontiguousarray(values, dtype=np.float32)
        return converted if bool(np.isfinite(converted).all()) else None

    def predict_proba(self, matrix: Any, *, fitted_order: bool = False) -> npt.NDArray[np.float64]:
        """The class probabilities ``forest.predict_proba`` gives for ``matrix``."""
        X = self._input(matrix, fitted_order)
        total = np.zeros((X.shape[0], int(self.forest.n_classes_)), dtype=np.float64)
        for tree, classes in self._cuts:
            total += tree.predict(X)[:, :classes]
        total /= len(self._trees)
        return total

    def labels(self, probabilities: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        """``forest.predict``'s labels, from the probabilities it would compute first."""
        result: npt.NDArray[Any] = self.forest.classes_.take(np.argmax(probabilities, axis=1), axis=0)
        return result

    def predict(self, matrix: Any, *, fitted_order: bool = False) -> npt.NDArray[Any]:
        """What ``forest.predict`` gives for ``matrix``: labels, or a regressor's values."""
        if self.classifier:
            return self.labels(self.predict_proba(matrix, fitted_order=fitted_order))
        X = self._input(matrix, fitted_order)
        total = np.zeros(X.shape[0], dtype=np.float64)
        for tree, _ in self._cuts:
            total += tree.predict(X)[:, 0]
        total /= len(self._trees)
        return total


def direct_forest(estimator: Any) -> DirectForest | None:
    """A :class:`DirectForest` for ``estimator`` when it qualifies, else ``None``."""
    if "sklearn.ensemble" not in sys.modules or "sklearn.tree" not in sys.modules:
        # Nothing unpickled is a forest: importing them (0.3 s) is not worth the question.
        return None
    try:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    # The methods every scikit-learn forest shares (ForestClassifier's, ForestRegressor's):
    # the same functions, not overridden by the estimator's class.
    kind = type(estimator)
    if (
        getattr(kind, "predict_proba", None) is RandomForestClassifier.predict_proba
        and getattr(kind, "predict", None) is RandomForestClassifier.predict
    ):
        classifier, tree_method = True, ("predict_proba", DecisionTreeClassifier.predict_proba)
    elif getattr(kind, "predict", None) is RandomForestRegressor.predict:
        classifier, tree_method = False, ("predict", DecisionTreeRegressor.predict)
    else:
        return None
    trees = getattr(estimator, "estimators_", None)
    if (
        not trees
        or getattr(estimator, "n_outputs_", None) != 1
        or getattr(estimator, "n_jobs", None) not in (None, 1)
        or getattr(estimator, "verbose", 0)
        or not hasattr(estimator, "_validate_X_predict")
        or any(getattr(type(tree), tree_method[0], None) is not tree_method[1] for tree in trees)
    ):
        return None
    direct = DirectForest(estimator, classifier=classifier)
    return direct if _agrees(direct, estimator) else None


def _agrees(direct: DirectForest, estimator: Any) -> bool:
    """Whether the direct path and the forest give the same numbers on a probe matrix: rows
    spread over each feature's split thresholds, so different leaves are reached."""
    width = int(getattr(estimator, "n_features_in_", 0))
    if width <= 0:
        return False
    thresholds = np.concatenate([tree.tree_.threshold for tree in direct._trees])
    features = np.concatenate([tree.tree_.feature for tree in direct._trees])
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(16, width))
    for j in range(width):
        cuts = thresholds[(features == j) & np.isfinite(thresholds)]  # inf: a split of NaN from the rest
        if len(cuts):
            probe[:, j] = rng.choice(cuts, size=len(probe)) + rng.normal(scale=1e-3, size=len(probe))
    matrix: Any = probe
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        import pandas as pd

        matrix = pd.DataFrame(probe, columns=list(names))
    try:
        if direct.classifier:
            return bool(
                np.array_equal(direct.predict_proba(matrix), estimator.predict_proba(matrix))
                and np.array_equal(direct.predict(matrix), estimator.predict(matrix))
            )
        return bool(np.array_equal(direct.predict(matrix), estimator.predict(matrix)))
    except Exception:  # a forest this check cannot feed (e.g. a dtype it refuses) keeps its own path
        return False
