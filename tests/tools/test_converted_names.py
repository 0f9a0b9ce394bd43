"""A converted model takes the columns its source takes, names changed by its library included.

LightGBM stores ``sepal length (cm)`` as ``sepal_length_(cm)``; the ``.txt`` and the pickle
score the original file, so the ONNX file ``convert`` makes from them must too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

lightgbm = pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

MODELROUTER = Path(sys.executable).parent / "modelrouter"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
@pytest.mark.matrix
@pytest.mark.parametrize("source_kind", ["txt", "pickle"])
def test_lightgbm_onnx_scores_the_columns_with_spaces(tmp_path: Path, source_kind: str) -> None:
    from sklearn.datasets import load_iris

    frame, target = load_iris(return_X_y=True, as_frame=True)  # names like 'sepal length (cm)'
    assert any(" " in name for name in frame.columns)
    classifier = lightgbm.LGBMClassifier(n_estimators=8, num_leaves=4, verbose=-1).fit(frame, target)
    if source_kind == "txt":
        source = tmp_path / "iris.txt"
        classifier.booster_.save_model(str(source))
    else:
        import joblib

        source = tmp_path / "iris.pkl"
        joblib.dump(classifier, source)
    data = tmp_path / "iris.csv"
    frame.assign(id=np.arange(len(frame))).to_csv(data, index=False)

    converted = tmp_path / "iris.onnx"
    conversion = _run("convert", source, "-o", converted, "--sample", data, "-q")
    assert conversion.returncode == 0, conversion.stderr

    from_source = _run("predict", data, "-m", source, "-o", tmp_path / "a.csv", "-k", "id", "-q")
    from_onnx = _run("predict", data, "-m", converted, "-o", tmp_path / "b.csv", "-k", "id", "-q")
    assert from_source.returncode == 0, from_source.stderr
    assert from_onnx.returncode == 0, from_onnx.stderr
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert a["id"].tolist() == b["id"].tolist()
    assert (a["prediction"] == b["prediction"]).all()


def test_an_unknown_name_rule_is_a_model_error(tmp_path: Path, forest_onnx_path: Path) -> None:
    import onnx

    model = onnx.load(str(forest_onnx_path))
    properties = {p.key: p.value for p in model.metadata_props}
    properties["feature_name_rule"] = "nonsense"
    onnx.helper.set_model_props(model, properties)
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    result = _run("inspect", bad)
    assert result.returncode == 4, result.stderr
    assert "feature_name_rule metadata 'nonsense'" in result.stderr


@pytest.fixture
def forest_onnx_path() -> Path:
    return Path(__file__).resolve().parents[2] / "models" / "classifier.onnx"


@pytest.mark.matrix
@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "gradient_boosting", "random_forest", "logistic"])
def test_every_scikit_learn_kind_the_docs_list_converts(tmp_path: Path, kind: str) -> None:
    """The project's own environment converts them (HistGradientBoosting needs protobuf < 7.34
    with skl2onnx 1.20, pinned in the convert extra)."""
    import joblib
    from sklearn.datasets import load_wine
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = load_wine(return_X_y=True, as_frame=True)
    estimator = {
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=10),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=10),
        "random_forest": RandomForestClassifier(n_estimators=10, random_state=0),
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    }[kind].fit(frame, target)
    source = tmp_path / f"{kind}.pkl"
    joblib.dump(estimator, source)
    data = tmp_path / "wine.csv"
    frame.to_csv(data, index=False)
    result = _run("convert", source, "-o", tmp_path / f"{kind}.onnx", "--sample", data, "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"{kind}.onnx").stat().st_size > 0
