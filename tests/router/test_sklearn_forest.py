"""The direct forest path (docs/performance.md, "Forests"): the forest's own numbers, or its
own errors, for every input, and taken only by the forests it was written for."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.backends.sklearn_forest import DirectForest, direct_forest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FORESTS = (RandomForestClassifier, ExtraTreesClassifier, RandomForestRegressor, ExtraTreesRegressor)


def _fitted(kind: type, *, named: bool, classes: int, nan: bool, seed: int, **params: Any) -> Any:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 4))
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    target = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1])
    y: Any = target
    if kind in (RandomForestClassifier, ExtraTreesClassifier):
        y = np.array(["ant", "bee", "cat", "dog", "eel"])[
            np.digitize(target, np.linspace(-1, 1, classes - 1))
        ]
    data: Any = pd.DataFrame(X, columns=["a", "b", "c", "d"]) if named else X
    return kind(n_estimators=7, max_depth=5, random_state=seed, **params).fit(data, y)


def _outcome(call: Any, matrix: Any) -> tuple[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning the forest gives must not be skipped
        try:
            return "value", call(matrix)
        except Exception as exc:
            return "error", (type(exc), str(exc))


def _same(one: tuple[str, Any], other: tuple[str, Any]) -> bool:
    if one[0] != other[0]:
        return False
    if one[0] == "error":
        return bool(one[1] == other[1])
    return bool(np.array_equal(one[1], other[1]))


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-3, max_value=3),
    st.integers(-5, 5).map(float),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(FORESTS),
    named=st.booleans(),
    classes=st.integers(2, 5),
    nan=st.booleans(),
    seed=st.integers(0, 3),
    rows=st.lists(st.lists(cells, min_size=4, max_size=4), min_size=0, max_size=6),
    as_frame=st.booleans(),
    as_int=st.booleans(),
)
def test_direct_path_gives_the_forests_numbers_or_its_errors(
    kind: type,
    named: bool,
    classes: int,
    nan: bool,
    seed: int,
    rows: list[list[float]],
    as_frame: bool,
    as_int: bool,
) -> None:
    forest = _fitted(kind, named=named, classes=classes, nan=nan, seed=seed)
    direct = direct_forest(forest)
    assert direct is not None
    values = np.array(rows, dtype=np.float64).reshape(len(rows), 4)
    if as_int:
        values = np.nan_to_num(values, nan=0, posinf=7, neginf=-7).clip(-9, 9).astype(np.int64)
    matrix: Any = pd.DataFrame(values, columns=["a", "b", "c", "d"]) if as_frame else values
    assert _same(_outcome(direct.predict, matrix), _outcome(forest.predict, matrix))
    if direct.classifier:
        assert _same(_outcome(direct.predict_proba, matrix), _outcome(forest.predict_proba, matrix))
    # The backend's call: a bare array of the fitted columns, in order, for a named forest too.
    named_frame = pd.DataFrame(values, columns=["a", "b", "c", "d"]) if named else values
    assert _same(
        _outcome(lambda m: direct.predict(m, fitted_order=True), values),
        _outcome(forest.predict, named_frame),
    )
    if direct.classifier:
        assert _same(
            _outcome(lambda m: direct.predict_proba(m, fitted_order=True), values),
            _outcome(forest.predict_proba, named_frame),
        )


@pytest.mark.parametrize("kind", FORESTS)
def test_wrong_width_and_names_are_the_forests_errors(kind: type) -> None:
    forest = _fitted(kind, named=True, classes=3, nan=False, seed=1)
    direct = direct_forest(forest)
    assert direct is not None
    for matrix in (
        pd.DataFrame(np.zeros((2, 4)), columns=["a", "b", "d", "c"]),
        pd.DataFrame(np.zeros((2, 3)), columns=["a", "b", "c"]),
        np.zeros((2, 5)),
        pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0], "c": [1.0, 2.0], "d": [1.0, 2.0]}),
    ):
        assert _same(_outcome(direct.predict, matrix), _outcome(forest.predict, matrix))


@pytest.mark.parametrize(
    "estimator",
    [
        pytest.param(
            lambda: _fitted(RandomForestClassifier, named=False, classes=3, nan=False, seed=0, n_jobs=2),
            id="n_jobs=2",
        ),
        pytest.param(
            lambda: _fitted(RandomForestClassifier, named=False, classes=3, nan=False, seed=0, verbose=1),
            id="verbose",
        ),
        pytest.param(
            lambda: RandomForestClassifier(n_estimators=3, random_state=0).fit(
                np.random.default_rng(0).normal(size=(40, 3)),
                np.stack([np.arange(40) % 2, np.arange(40) % 3], axis=1),
            ),
            id="two outputs",
        ),
        pytest.param(lambda: RandomForestClassifier(n_estimators=3), id="not fitted"),
        pytest.param(
            lambda: make_pipeline(
                StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)
            ).fit(np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2),
            id="pipeline",
        ),
        pytest.param(
            lambda: GradientBoostingClassifier(n_estimators=3).fit(
                np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
            ),
            id="boosting",
        ),
    ],
)
def test_other_estimators_keep_their_own_path(estimator: Any) -> None:
    assert direct_forest(estimator()) is None


class _Calibrated(RandomForestClassifier):  # type: ignore[misc]
    """A subclass that changes what predict_proba means."""

    def predict_proba(self, X: Any) -> Any:
        return super().predict_proba(X) ** 2


def test_a_subclass_overriding_the_method_keeps_its_own_path() -> None:
    forest = _Calibrated(n_estimators=3, random_state=0).fit(
        np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    )
    assert direct_forest(forest) is None


def test_a_forest_that_disagrees_on_the_probe_keeps_its_own_path(monkeypatch: pytest.MonkeyPatch) -> None:
    forest = _fitted(RandomForestClassifier, named=False, classes=3, nan=False, seed=0)
    monkeypatch.setattr(DirectForest, "predict_proba", lambda self, matrix: np.zeros((len(matrix), 3)))
    assert direct_forest(forest) is None


def test_the_shipped_model_takes_the_direct_path_through_the_backend() -> None:
    import joblib
    from modelrouter.backends.sklearn_backend import SklearnModel

    model = SklearnModel(
        "classifier.pkl", joblib.load(Path(__file__).parents[2] / "models" / "classifier.pkl")
    )
    assert model._forest is not None
    frame = pd.read_csv(Path(__file__).parents[2] / "sample_data" / "wine.csv")
    features = list(model.schema.names or ())
    expected = model.estimator.predict_proba(frame[features])
    both = model.run(frame, labels=True, probabilities=True)
    assert np.array_equal(np.asarray(both.probabilities), expected)
    assert np.array_equal(np.asarray(both.labels), model.estimator.predict(frame[features]))
    assert np.array_equal(model.predict(frame), model.estimator.predict(frame[features]))


def test_a_model_that_is_no_forest_does_not_import_the_forests() -> None:
    """Asking costs nothing: scikit-learn's ensemble package takes 0.3 s to import."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression().fit(np.random.rand(20, 3), np.arange(20) % 2)\n"
        "from modelrouter.backends.sklearn_backend import SklearnModel\n"
        "assert SklearnModel('m.pkl', model)._forest is None\n"
        "print('sklearn.ensemble' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
