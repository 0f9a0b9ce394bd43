"""Shared fixtures: tiny models fitted into a temporary folder, the wine sample frame."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings
from modelrouter import reset_router
from modelrouter.backends.booster_probe import CACHE_ENV as BOOSTER_CACHE_ENV
from sklearn.datasets import load_wine

from tests.tiers import mark_matrix_cells

# CI runs the same examples every time (a failure there must be reproducible, not a dice
# roll); locally hypothesis keeps exploring new ones and remembers failures in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Booster files checked in a child process are remembered in the user's cache folder: the
# tests' is their own (XDG_CACHE_HOME, which the commands' subprocesses inherit even where a
# test drops every MODELROUTER_ variable), made once by the process that loads this file
# first — xdist's workers inherit it — never the user's ~/.cache.
os.environ.pop(BOOSTER_CACHE_ENV, None)
if not os.environ.get("_MODELROUTER_TESTS_CACHE"):
    os.environ["_MODELROUTER_TESTS_CACHE"] = os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(
        prefix="modelrouter-test-cache-"
    )
    atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_router() -> Iterator[None]:
    """Every test starts and ends without a process-wide router."""
    reset_router()
    yield
    reset_router()


@pytest.fixture(scope="session")
def wine() -> tuple[pd.DataFrame, np.ndarray]:
    """The wine measurements (real column names) and their cultivar labels."""
    data = load_wine(as_frame=True)
    labels = np.asarray(data.target_names)[data.target.to_numpy()]
    return data.data, labels


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, wine: tuple[pd.DataFrame, np.ndarray]) -> Path:
    """A wine forest (pickle + ONNX with feature_names), a regressor, a mixed-type pipeline."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    folder = tmp_path_factory.mktemp("models")
    frame, labels = wine

    forest = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(frame, labels)
    joblib.dump(forest, folder / "forest.pkl")
    onx = to_onnx(
        forest,
        initial_types=[("input", FloatTensorType([None, frame.shape[1]]))],
        options={id(forest): {"zipmap": False}},
    )
    prop = onx.metadata_props.add()
    prop.key, prop.value = "feature_names", json.dumps(list(frame.columns))
    (folder / "forest.onnx").write_bytes(onx.SerializeToString())

    # The same forest with ZipMap on (probabilities as a list of dicts).
    zipped = to_onnx(forest, initial_types=[("input", FloatTensorType([None, frame.shape[1]]))])
    prop = zipped.metadata_props.add()
    prop.key, prop.value = "feature_names", json.dumps(list(frame.columns))
    (folder / "forest_zipmap.onnx").write_bytes(zipped.SerializeToString())

    regressor = LinearRegression().fit(frame, frame["alcohol"] * 2)
    joblib.dump(regressor, folder / "regressor.pkl")

    # A pipeline over one numeric and one string column, converted with one input per column.
    mixed = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 60),
            "colour": np.array(["red", "green", "blue"] * 20, dtype=object),
        }
    )
    target = np.where((mixed["x"] > 0.5) | (mixed["colour"] == "red"), "yes", "no")
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["colour"])]),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(mixed, target)
    joblib.dump(pipeline, folder / "mixed.pkl")
    mixed_onnx = to_onnx(
        pipeline,
        initial_types=[("x", FloatTensorType([None, 1])), ("colour", StringTensorType([None, 1]))],
        options={id(pipeline): {"zipmap": False}},
    )
    (folder / "mixed.onnx").write_bytes(mixed_onnx.SerializeToString())
    mixed.to_csv(folder / "mixed.csv", index=False)
    return folder


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_matrix_cells(items)
