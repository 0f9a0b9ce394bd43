"""``predict --explain`` through the real command equals the reference implementations.

scikit-learn trees, forests, GradientBoosting and HistGradientBoosting against
``shap.TreeExplainer(model).shap_values(X)``; XGBoost and LightGBM against their own
``pred_contribs`` / ``pred_contrib``; within 1e-5 absolute, for several chunk sizes and
worker counts (chunks are explained on the scoring pool's threads, in input order).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tests.explain.helpers import COLUMNS, frame, modelrouter, save, shap_values, target

ROWS = 41  # not a multiple of any chunk size below: the last chunk is short

#: (chunk size, workers): every combination is run by some model, all by the multi-class forest.
RUNS = [(7, 2), (64, 1), (5, 1), (16, 2)]

MODELS: dict[str, tuple[Callable[[], Any], int]] = {
    "tree regressor": (lambda: DecisionTreeRegressor(max_depth=5, random_state=0), 0),
    "tree 3 classes": (lambda: DecisionTreeClassifier(max_depth=4, random_state=0), 3),
    "forest binary": (lambda: RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0), 2),
    "forest regressor": (lambda: RandomForestRegressor(n_estimators=6, random_state=0), 0),
    "extra trees regressor": (lambda: ExtraTreesRegressor(n_estimators=5, max_depth=6, random_state=0), 0),
    "gradient boosting binary": (lambda: GradientBoostingClassifier(n_estimators=10, random_state=0), 2),
    "gradient boosting regressor": (lambda: GradientBoostingRegressor(n_estimators=10, random_state=0), 0),
    "hist gradient boosting regressor": (lambda: HistGradientBoostingRegressor(max_iter=10), 0),
    "hist gradient boosting binary": (lambda: HistGradientBoostingClassifier(max_iter=10), 2),
    "hist gradient boosting 3 classes": (lambda: HistGradientBoostingClassifier(max_iter=8), 3),
}


def _fit(name: str) -> Any:
    build, classes = MODELS[name]
    train = frame(300, seed=1)
    return build().fit(train, target(train, classes))


def _input(folder: Path) -> tuple[Path, pd.DataFrame]:
    data = frame(ROWS, seed=2)
    path = folder / "input.parquet"
    data.assign(id=np.arange(ROWS)).to_parquet(path)
    return path, data


def _explained_column(model: Any, output: pd.DataFrame, shap_3d: bool) -> np.ndarray:
    """Which of shap's output columns each row's explanation is about."""
    classes = getattr(model, "classes_", None)
    if classes is None or not shap_3d:
        return np.zeros(len(output), dtype=np.int64)
    if len(classes) == 2:
        return np.ones(len(output), dtype=np.int64)
    index = {c: i for i, c in enumerate(classes.tolist())}
    return np.array([index[c] for c in output["explained_class"]])


def _run_and_compare(
    model: Any, folder: Path, chunk: int, workers: int, command: bool = True
) -> pd.DataFrame:
    """Explain through the real command (``command``), or the same engine in this process."""
    source, data = _input(folder)
    model_path = save(model, folder)
    out = folder / "out.parquet"
    if command:
        run = modelrouter(
            "predict", source, "-m", model_path, "-o", out, "-k", "id", "--explain",
            "--chunk-size", chunk, "-w", workers, "--no-stats",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    else:
        from modelrouter.batch.run import RunOptions, score_file

        options = RunOptions(
            input=str(source),
            output=str(out),
            model_path=model_path,
            keep=("id",),
            explain=True,
            chunk_size=chunk,
            workers=workers,
        )
        score_file(options)
    output = pq.read_table(out).to_pandas()
    assert output["id"].tolist() == list(range(ROWS))  # input order
    assert output["prediction"].tolist() == model.predict(data).tolist()
    contributions = output[[f"contrib_{c}" for c in COLUMNS]].to_numpy()
    import shap

    raw = np.asarray(shap.TreeExplainer(model).shap_values(data))
    values, expected = shap_values(model, data, _explained_column(model, output, raw.ndim == 3))
    np.testing.assert_allclose(contributions, values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(output["contrib_base"], expected, rtol=0, atol=1e-5)
    result: pd.DataFrame = output
    return result


@pytest.mark.parametrize("name", list(MODELS))
def test_scikit_learn_trees_equal_shap_in_the_engine(name: str, tmp_path: Path) -> None:
    chunk, workers = RUNS[list(MODELS).index(name) % len(RUNS)]
    model = _fit(name)
    output = _run_and_compare(model, tmp_path, chunk, workers, command=False)
    multiclass = len(getattr(model, "classes_", ())) > 2
    assert ("explained_class" in output.columns) == multiclass
    if multiclass:  # the predicted class is the one explained
        assert output["explained_class"].tolist() == output["prediction"].tolist()


@pytest.mark.matrix
@pytest.mark.parametrize(("chunk", "workers"), RUNS)
def test_every_chunk_size_and_worker_count_through_the_command(
    chunk: int, workers: int, tmp_path: Path
) -> None:
    model = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)
    train = frame(300, seed=1)
    model.fit(train, target(train, 3))
    _run_and_compare(model, tmp_path, chunk, workers)


OwnContributions = Callable[[pd.DataFrame], np.ndarray]


def _booster(name: str, folder: Path) -> tuple[Path, OwnContributions]:
    """The model file, and its library's own contribution call: (rows, [classes,] features + 1)."""
    import lightgbm as lgb
    import xgboost as xgb

    train = frame(300, seed=1)
    if name == "xgboost native 3 classes":
        params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}
        booster = xgb.train(params, xgb.DMatrix(train, target(train, 3)), 6)
        booster.save_model(folder / "xgb.json")
        return folder / "xgb.json", lambda d: np.asarray(booster.predict(xgb.DMatrix(d), pred_contribs=True))
    if name == "xgboost wrapper regressor":
        regressor = xgb.XGBRegressor(n_estimators=6, max_depth=3).fit(train, target(train, 0))
        own = regressor.get_booster()
        return save(regressor, folder), lambda d: np.asarray(own.predict(xgb.DMatrix(d), pred_contribs=True))
    if name == "lightgbm native binary":
        params = {"objective": "binary", "verbose": -1, "num_leaves": 7}
        native = lgb.train(params, lgb.Dataset(train, target(train, 2)), 6)
        native.save_model(folder / "lgb.txt")
        return folder / "lgb.txt", lambda d: np.asarray(native.predict(d, pred_contrib=True))
    wrapper = lgb.LGBMClassifier(n_estimators=6, num_leaves=7, verbose=-1).fit(train, target(train, 3))
    return save(wrapper, folder), lambda d: np.asarray(
        wrapper.booster_.predict(d, pred_contrib=True)
    ).reshape(len(d), 3, -1)


@pytest.mark.matrix
@pytest.mark.parametrize(
    "name",
    [
        "xgboost native 3 classes",
        "xgboost wrapper regressor",
        "lightgbm native binary",
        "lightgbm wrapper 3 classes",
    ],
)
def test_boosters_equal_their_own_contributions(name: str, tmp_path: Path) -> None:
    path, own = _booster(name, tmp_path)
    source, data = _input(tmp_path)
    chunk, workers = RUNS[len(name) % len(RUNS)]
    out = tmp_path / "out.csv"
    run = modelrouter(
        "predict", source, "-m", path, "-o", out, "-k", "id", "--explain",
        "--chunk-size", chunk, "-w", workers, "--no-stats",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    output = pd.read_csv(out)
    expected = np.asarray(own(data), dtype=np.float64)
    if expected.ndim == 3:  # the predicted class's row of contributions
        expected = expected[np.arange(ROWS), output["explained_class"].to_numpy()]
        assert output["explained_class"].tolist() == output["prediction"].tolist()
    contributions = output[["contrib_base", *(f"contrib_{c}" for c in COLUMNS)]].to_numpy()
    np.testing.assert_allclose(contributions[:, 1:], expected[:, :-1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(contributions[:, 0], expected[:, -1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["xgboost native 3 classes", "lightgbm native binary"])
def test_boosters_explain_in_small_chunks_so_every_worker_gets_some(name: str, tmp_path: Path) -> None:
    """Each instance calls its library with one thread: a file explained in one default-size
    chunk would run on one core (docs/explanations.md, "Speed")."""
    path, _ = _booster(name, tmp_path)
    source = tmp_path / "input.parquet"
    frame(2_500, seed=2).assign(id=np.arange(2_500)).to_parquet(source)
    stats = tmp_path / "stats.json"
    run = modelrouter(
        "predict", source, "-m", path, "-o", tmp_path / "out.parquet", "-k", "id", "--explain",
        "-w", 2, "--stats-json", stats, "-q",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(stats.read_text(encoding="utf-8"))["summary"]
    assert (summary["chunk_size"], summary["chunks"]) == (1024, 3)
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 2_500
