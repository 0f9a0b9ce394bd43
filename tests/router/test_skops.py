"""The skops model type: a third type added as one backend file plus one registry line."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from modelrouter import ModelLoadError, ModelPool, ModelType, load_pool, load_settings
from modelrouter.backends import BACKENDS

from tests.custom_estimators import Doubler

Wine = tuple[pd.DataFrame, np.ndarray]


def test_skops_is_registered_and_inferred_from_the_suffix() -> None:
    assert ModelType.SKOPS in BACKENDS
    assert ModelType.from_path("model.skops") is ModelType.SKOPS


def test_skops_model_scores_like_the_pickle(tmp_path: Path, models_dir: Path, wine: Wine) -> None:
    frame, _ = wine
    forest = joblib.load(models_dir / "forest.pkl")
    sio.dump(forest, tmp_path / "forest.skops")
    with pytest.raises(ModelLoadError, match=r"refusing untrusted types sklearn\.tree\._tree\.Tree"):
        ModelPool.load(ModelType.SKOPS, tmp_path / "forest.skops")
    pool = ModelPool.load(ModelType.SKOPS, tmp_path / "forest.skops", trusted=["sklearn.tree._tree.Tree"])
    with pool.borrow() as model:
        assert list(model.predict(frame)) == list(forest.predict(frame))
        np.testing.assert_array_equal(model.predict_proba(frame), forest.predict_proba(frame))


def test_untrusted_types_are_refused_and_named(tmp_path: Path, wine: Wine) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, labels = wine
    pipeline = make_pipeline(Doubler(), StandardScaler(), LogisticRegression()).fit(frame, labels)
    path = tmp_path / "custom.skops"
    sio.dump(pipeline, path)
    with pytest.raises(ModelLoadError) as excinfo:
        ModelPool.load(ModelType.SKOPS, path)
    assert str(excinfo.value) == (
        f"{path}: refusing untrusted types tests.custom_estimators.Doubler; "
        "list them under [skops] trusted in the config if you trust this file"
    )
    config = tmp_path / "modelrouter.toml"
    config.write_text('[skops]\npath = "custom.skops"\ntrusted = ["tests.custom_estimators.Doubler"]\n')
    pool = load_pool(load_settings(config, env={}), ModelType.SKOPS)
    with pool.borrow() as model:
        assert list(model.predict(frame)) == list(pipeline.predict(frame))


def test_a_pickle_is_not_a_skops_file(tmp_path: Path, models_dir: Path) -> None:
    path = tmp_path / "forest.skops"
    path.write_bytes((models_dir / "forest.pkl").read_bytes())
    with pytest.raises(ModelLoadError, match="cannot load as a skops file"):
        ModelPool.load(ModelType.SKOPS, path)
