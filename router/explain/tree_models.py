"""TreeSHAP for scikit-learn trees and forests, GradientBoosting and HistGradientBoosting.

Each model is flattened into an :class:`Ensemble` (node arrays of all its trees, leaf values
already weighted as the model sums them, the node covers), once per model; the compiled
kernel (:mod:`modelrouter.explain.tree_kernel`) walks it per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.explain.method import Explained, Method, Space, Unsupported

__all__ = ["Ensemble", "TreeMethod", "tree_method"]


@dataclass(frozen=True)
class Ensemble:
    """The trees of one model output, flattened; ``values`` has one column per class."""

    roots: npt.NDArray[np.int64]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    missing_left: npt.NDArray[np.uint8]
    cover: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    max_depth: int
    #: Per class: the cover-weighted mean of the leaf values, summed over the trees.
    expected: npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Tree:
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    missing_left: npt.NDArray[np.uint8]
    cover: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]  # (nodes, classes), weighted


def _flatten(trees: list[_Tree]) -> Ensemble:
    offsets = np.cumsum([0] + [len(t.left) for t in trees])
    shift = [np.where(t.left >= 0, t.left + o, -1) for t, o in zip(trees, offsets, strict=False)]
    shift_r = [np.where(t.right >= 0, t.right + o, -1) for t, o in zip(trees, offsets, strict=False)]
    left = np.concatenate(shift).astype(np.int64)
    expected = np.zeros(trees[0].values.shape[1])
    depth = 0
    for tree in trees:
        leaves = tree.left < 0
        expected += (tree.values[leaves] * tree.cover[leaves, None]).sum(axis=0) / tree.cover[0]
        depth = max(depth, _depth(tree.left, tree.right))
    return Ensemble(
        roots=offsets[:-1].astype(np.int64),
        left=left,
        right=np.concatenate(shift_r).astype(np.int64),
        feature=np.concatenate([np.maximum(t.feature, 0) for t in trees]).astype(np.int64),
        threshold=np.concatenate([t.threshold for t in trees]).astype(np.float64),
        missing_left=np.concatenate([t.missing_left for t in trees]).astype(np.uint8),
        cover=np.concatenate([t.cover for t in trees]).astype(np.float64),
        values=np.ascontiguousarray(np.concatenate([t.values for t in trees]), dtype=np.float64),
        max_depth=depth,
        expected=expected,
    )


def _depth(left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> int:
    depth = np.zeros(len(left), dtype=np.int64)
    for node in range(len(left)):  # children come after their parent in both libraries
        if left[node] >= 0:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    return int(depth.max())


def _sklearn_tree(estimator: Any, weight: float, classifier: bool) -> _Tree:
    tree = estimator.tree_
    if tree.n_outputs != 1:
        raise Unsupported("a multi-output tree model", "a single-output model")
    values = np.asarray(tree.value, dtype=np.float64)[:, 0, :]
    if classifier:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    missing = getattr(tree, "missing_go_to_left", None)
    return _Tree(
        left=np.asarray(tree.children_left, dtype=np.int64),
        right=np.asarray(tree.children_right, dtype=np.int64),
        feature=np.asarray(tree.feature, dtype=np.int64),
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        missing_left=np.zeros(tree.node_count, np.uint8)
        if missing is None
        else np.asarray(missing, np.uint8),
        cover=np.asarray(tree.weighted_n_node_samples, dtype=np.float64),
        values=values * weight,
    )


def _hgb_tree(predictor: Any, column: int, classes: int) -> _Tree:
    nodes = predictor.nodes
    if nodes["is_categorical"].any():
        raise Unsupported(
            "a HistGradientBoosting model with categorical splits",
            "one-hot or ordinal encoding in a pipeline before the model",
        )
    leaf = nodes["is_leaf"].astype(bool)
    values = np.zeros((len(nodes), classes))
    values[:, column] = nodes["value"]
    return _Tree(
        left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
        right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
        feature=np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(np.uint8),
        cover=nodes["count"].astype(np.float64),
        values=values,
    )


@dataclass(frozen=True, kw_only=True)
class TreeMethod(Method):
    """Path-dependent TreeSHAP over one ensemble per explained output column.

    ``ensembles[k]`` explains output column ``k`` (a boosted model's trees of class ``k``),
    or ``ensembles`` has one entry whose value columns are the classes (a forest).
    """

    ensembles: tuple[Ensemble, ...]
    offset: npt.NDArray[np.float64]  # per output column: what the model adds to the trees
    float32: bool  # scikit-learn trees compare float32 values with their thresholds
    chunk_rows: int | None = 1024
    name: str = "TreeSHAP (path-dependent)"

    def explain(
        self, matrix: npt.NDArray[np.float64], target: npt.NDArray[np.int64], model: Any = None
    ) -> Explained:
        from modelrouter.explain.tree_kernel import tree_shap

        x = matrix.astype(np.float32).astype(np.float64) if self.float32 else matrix.astype(np.float64)
        contributions = np.zeros(x.shape, dtype=np.float64)
        base = np.empty(len(x), dtype=np.float64)
        if len(self.ensembles) == 1:
            ensemble = self.ensembles[0]
            contributions[:] = tree_shap(x, target, ensemble)
            base[:] = ensemble.expected[target] + self.offset[target]
            return Explained(base, contributions)
        for column, ensemble in enumerate(self.ensembles):
            rows = np.flatnonzero(target == column)
            if len(rows):
                contributions[rows] = tree_shap(x[rows], np.zeros(len(rows), np.int64), ensemble)
                base[rows] = ensemble.expected[0] + self.offset[column]
        return Explained(base, contributions)


def tree_method(estimator: Any) -> TreeMethod | None:
    """The TreeSHAP method for a scikit-learn tree model, or None when it is not one."""
    from sklearn import ensemble as ens
    from sklearn import tree as trees

    if isinstance(estimator, trees.BaseDecisionTree):
        classifier = isinstance(estimator, trees.DecisionTreeClassifier)
        return _forest([estimator], classifier, Space.PROBABILITY if classifier else Space.VALUE)
    if isinstance(estimator, ens.RandomForestClassifier | ens.ExtraTreesClassifier):
        return _forest(list(estimator.estimators_), True, Space.PROBABILITY)
    if isinstance(estimator, ens.RandomForestRegressor | ens.ExtraTreesRegressor):
        return _forest(list(estimator.estimators_), False, Space.VALUE)
    if isinstance(estimator, ens.GradientBoostingClassifier | ens.GradientBoostingRegressor):
        return _gradient_boosting(estimator)
    if isinstance(estimator, ens.HistGradientBoostingClassifier | ens.HistGradientBoostingRegressor):
        return _hist_gradient_boosting(estimator)
    return None


def _forest(estimators: list[Any], classifier: bool, space: Space) -> TreeMethod:
    if getattr(estimators[0], "n_outputs_", 1) != 1:
        raise Unsupported("a multi-output tree model", "a single-output model")
    weight = 1.0 / len(estimators)
    ensemble = _flatten([_sklearn_tree(e, weight, classifier) for e in estimators])
    width = ensemble.values.shape[1]
    return TreeMethod(
        ensembles=(ensemble,),
        offset=np.zeros(width),
        float32=True,
        space=space,
        classifier=classifier,
        positive=1 if classifier and width == 2 else 0,
    )


def _gradient_boosting(model: Any) -> TreeMethod:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = model.init_
    if not (isinstance(init, str) and init == "zero") and not isinstance(
        init, DummyClassifier | DummyRegressor
    ):
        raise Unsupported(
            f"a GradientBoosting model with init={type(init).__name__}", "the default init (or 'zero')"
        )
    stages, columns = model.estimators_.shape
    offset = np.asarray(model._raw_predict_init(np.zeros((1, model.n_features_in_))), dtype=np.float64)[0]
    rate = float(model.learning_rate)
    ensembles = tuple(
        _flatten([_sklearn_tree(model.estimators_[s, k], rate, False) for s in range(stages)])
        for k in range(columns)
    )
    classifier = hasattr(model, "classes_")
    space = Space.MARGIN if classifier or _log_link(model) else Space.VALUE
    return TreeMethod(ensembles=ensembles, offset=offset, float32=True, space=space, classifier=classifier)


def _hist_gradient_boosting(model: Any) -> TreeMethod:
    columns = len(model._predictors[0])
    ensembles = tuple(
        _flatten([_hgb_tree(stage[k], 0, 1) for stage in model._predictors]) for k in range(columns)
    )
    offset = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    if offset.size == 1 and columns > 1:
        offset = np.repeat(offset, columns)
    classifier = hasattr(model, "classes_")
    space = Space.MARGIN if classifier or _log_link(model) else Space.VALUE
    return TreeMethod(ensembles=ensembles, offset=offset, float32=False, space=space, classifier=classifier)


def _log_link(model: Any) -> bool:
    """Whether a boosted regressor's trees add up to the log of its prediction (poisson, gamma)."""
    loss = getattr(model, "loss", "squared_error")
    return isinstance(loss, str) and loss in ("poisson", "gamma")
