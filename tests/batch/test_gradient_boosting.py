"""XGBoost and LightGBM models end to end (issue 12, items 1-2), run as a user runs them.

Models are trained here on scikit-learn's bundled data (breast cancer: binary, with spaces in
its column names, which LightGBM stores as underscores; wine: three classes, with a ``/`` in a
column name) and saved natively (``.json``, ``.ubj``, ``.txt``) and as pickled scikit-learn
wrappers. The oracle is the library called directly on the whole frame: labels exact,
probabilities within 1e-6, for several chunk sizes and worker counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_cli(*args: str | Path | int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


class Trained:
    """One dataset, the fitted wrappers, and where their files are."""

    def __init__(self, frame: pd.DataFrame, models: dict[str, Any], files: dict[str, Path], data: Path):
        self.frame = frame
        self.models = models
        self.files = files
        self.data = data


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    folder = tmp_path_factory.mktemp("boosters")
    out: dict[str, Trained] = {}
    datasets = {
        "cancer": load_breast_cancer(return_X_y=True, as_frame=True),
        "wine": load_wine(return_X_y=True, as_frame=True),
    }
    for name, (frame, target) in datasets.items():
        models: dict[str, Any] = {
            "xgboost": xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(frame, target),
            "lightgbm": lgb.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1, n_jobs=1).fit(
                frame, target
            ),
        }
        files = {
            "xgboost.json": folder / f"{name}.json",
            "xgboost.ubj": folder / f"{name}.ubj",
            "lightgbm.txt": folder / f"{name}.txt",
            "xgboost.pkl": folder / f"{name}_xgb.pkl",
            "lightgbm.pkl": folder / f"{name}_lgbm.pkl",
        }
        models["xgboost"].get_booster().save_model(files["xgboost.json"])
        models["xgboost"].get_booster().save_model(files["xgboost.ubj"])
        models["lightgbm"].booster_.save_model(files["lightgbm.txt"])
        joblib.dump(models["xgboost"], files["xgboost.pkl"])
        joblib.dump(models["lightgbm"], files["lightgbm.pkl"])
        data = folder / f"{name}.parquet"
        frame.assign(id=np.arange(len(frame)) + 1).to_parquet(data, index=False, row_group_size=100)
        frame.assign(id=np.arange(len(frame)) + 1).to_csv(folder / f"{name}.csv", index=False)
        out[name] = Trained(frame, models, files, data)
    return out


def direct(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(model.predict(frame)), np.asarray(model.predict_proba(frame), dtype=np.float64)


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
        return frame
    return pd.read_csv(path)


# (dataset, file kind, chunk size, workers, pool size): a pairwise cover, not the full product;
# each library meets both datasets, both formats, native and pickled, one and several workers.
# One native run per library stays in `make test`; the rest of the cover runs in
# `make test-slow` (the whole suite must fit its 6-minute budget on 2 cores).
_SLOW = pytest.mark.slow
ORACLE_RUNS = [
    ("cancer", "xgboost.json", 65_536, 1, 1),
    pytest.param("wine", "xgboost.ubj", 7, 3, 2, marks=_SLOW),
    pytest.param("wine", "xgboost.pkl", 50, 2, 2, marks=_SLOW),
    pytest.param("cancer", "xgboost.pkl", 33, 1, 1, marks=_SLOW),
    ("wine", "lightgbm.txt", 64, 2, 2),
    pytest.param("cancer", "lightgbm.txt", 13, 1, 1, marks=_SLOW),
    pytest.param("cancer", "lightgbm.pkl", 100, 3, 2, marks=_SLOW),
    pytest.param("wine", "lightgbm.pkl", 65_535, 1, 1, marks=_SLOW),
]


@pytest.mark.matrix
@pytest.mark.parametrize(("dataset", "kind", "chunk", "workers", "pool"), ORACLE_RUNS)
def test_outputs_equal_the_library_called_directly(
    trained: dict[str, Trained], tmp_path: Path, dataset: str, kind: str, chunk: int, workers: int, pool: int
) -> None:
    t = trained[dataset]
    library = kind.split(".", maxsplit=1)[0]
    labels, proba = direct(t.models[library], t.frame)
    source = t.data if chunk % 2 else t.data.with_suffix(".csv")  # both formats get covered
    out_labels, out_proba = tmp_path / "labels.parquet", tmp_path / "proba.csv"
    common: list[str | Path | int] = [
        "-m",
        t.files[kind],
        "--chunk-size",
        chunk,
        "-w",
        workers,
        "--pool-size",
        pool,
        "-k",
        "id",
        "-q",
    ]
    if kind.endswith(".pkl"):
        common += ["-t", "sklearn"]
    first = run_cli("predict", source, "-o", out_labels, *common)
    assert first.returncode == 0, first.stderr
    second = run_cli("predict-proba", source, "-o", out_proba, *common)
    assert second.returncode == 0, second.stderr
    got_labels, got_proba = read(out_labels), read(out_proba)
    assert [str(i) for i in got_labels["id"]] == [str(i) for i in range(1, len(t.frame) + 1)]
    np.testing.assert_array_equal(got_labels["prediction"].to_numpy(), labels)
    classes = [str(c) for c in t.models[library].classes_]
    assert list(got_proba.columns) == ["id", *(f"proba_{c}" for c in classes)]
    np.testing.assert_allclose(got_proba.iloc[:, 1:].to_numpy(), proba, rtol=0, atol=1e-6)


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_regressors_give_the_library_values(tmp_path: Path) -> None:
    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    xgb_model = xgb.XGBRegressor(n_estimators=15, max_depth=3, n_jobs=1).fit(frame, target)
    lgb_model = lgb.LGBMRegressor(n_estimators=15, num_leaves=8, verbose=-1, n_jobs=1).fit(frame, target)
    xgb_model.get_booster().save_model(tmp_path / "reg.json")
    lgb_model.booster_.save_model(tmp_path / "reg.txt")
    frame.to_parquet(tmp_path / "diabetes.parquet", index=False)
    for model, file in ((xgb_model, "reg.json"), (lgb_model, "reg.txt")):
        out = tmp_path / f"{file}.parquet"
        result = run_cli("predict", tmp_path / "diabetes.parquet", "-m", tmp_path / file, "-o", out, "-q")
        assert result.returncode == 0, result.stderr
        got = pq.read_table(out).column("prediction").to_numpy()
        np.testing.assert_allclose(got, model.predict(frame), rtol=1e-6)
        # XGBoost predicts in float32: the values are written as such, not widened.
        assert got.dtype == (np.float32 if file.endswith(".json") else np.float64)
    refused = run_cli("predict-proba", tmp_path / "diabetes.parquet", "-m", tmp_path / "reg.txt", "-o", "-")
    assert refused.returncode == 4
    assert "regressor" in refused.stderr


def test_pickled_wrapper_without_its_library_is_exit_4_naming_the_package(
    trained: dict[str, Trained], tmp_path: Path
) -> None:
    # A package directory that fails to import exactly like an absent one.
    for package in ("xgboost", "lightgbm"):
        fake = tmp_path / "site" / package
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{package}'\", name='{package}')\n"
        )
    env = {"PYTHONPATH": str(tmp_path / "site")}
    t = trained["cancer"]
    for kind, package in (("xgboost.pkl", "xgboost"), ("lightgbm.pkl", "lightgbm")):
        out = tmp_path / "out.csv"
        result = run_cli("predict", t.data, "-m", t.files[kind], "-o", out, env=env)
        assert result.returncode == 4, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert f"needs the {package} package" in lines[0]
        assert f"pip install 'modelrouter[{package}]'" in lines[0]
        assert "Traceback" not in result.stderr and not out.exists()
    native = run_cli("predict", t.data, "-m", t.files["lightgbm.txt"], "-o", tmp_path / "o.csv", env=env)
    assert native.returncode == 4
    assert "needs the lightgbm package" in native.stderr and "modelrouter[lightgbm]" in native.stderr


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_corrupt_native_files_are_exit_4_with_one_line(tmp_path: Path, trained: dict[str, Trained]) -> None:
    for name, text in (
        ("bad.json", b'{"learner": 1'),
        ("bad.ubj", b"\x00\x01garbage"),
        ("bad.txt", b"tree\nnope"),
    ):
        (tmp_path / name).write_bytes(text)
        result = run_cli("predict", trained["wine"].data, "-m", tmp_path / name, "-o", tmp_path / "o.csv")
        assert result.returncode == 4, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / name}: "), lines
        # Checked before the native parser sees it, or refused by it: never a crash.
        assert "not a valid" in lines[0] or "cannot load as " in lines[0], lines
        assert not (tmp_path / "o.csv").exists()


def test_lightgbm_names_match_the_original_columns_and_misses_suggest(
    trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["cancer"]
    booster_names = lgb.Booster(model_file=t.files["lightgbm.txt"]).feature_name()
    assert "mean_radius" in booster_names  # what LightGBM stored for 'mean radius'
    # The input has the original names: matched by LightGBM's rule (the oracle test scores it).
    # Rename one column beyond recognition, another to a near miss: both named, with hints.
    frame = t.frame.rename(columns={"mean radius": "radius (mean)", "worst area": "worst_areas"})
    wide = frame.assign(**{f"extra column {i}": 0.0 for i in range(40)})
    wide.to_csv(tmp_path / "renamed.csv", index=False)
    out = tmp_path / "out.csv"
    result = run_cli("predict", tmp_path / "renamed.csv", "-m", t.files["lightgbm.txt"], "-o", out)
    assert result.returncode == 3, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "missing feature columns 'mean_radius' (did you mean 'radius (mean)'" in line
    assert "'worst_area' (did you mean 'worst_areas'" in line
    assert not out.exists()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_ambiguous_sanitised_names_are_missing_not_guessed(
    trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["cancer"]
    frame = t.frame.rename(columns={"mean radius": "mean  radius"}).assign(**{"mean_radius ": 1.0})
    frame["mean radius"] = frame["mean  radius"]  # exact 'mean radius' → 'mean_radius' wins
    frame.to_parquet(tmp_path / "ok.parquet", index=False)
    ok = run_cli("predict", tmp_path / "ok.parquet", "-m", t.files["lightgbm.txt"], "-o", "-", "-q")
    assert ok.returncode == 0, ok.stderr
    both = t.frame.rename(columns={"mean radius": "mean_radius"}).assign(**{"mean radius": 0.0})
    both.to_parquet(tmp_path / "both.parquet", index=False)
    exact = run_cli("predict", tmp_path / "both.parquet", "-m", t.files["lightgbm.txt"], "-o", "-", "-q")
    assert exact.returncode == 0, exact.stderr  # the exact name 'mean_radius' is used
    clash = t.frame.drop(columns=["mean radius"]).assign(**{"mean radius ": 1.0, " mean radius": 2.0})
    clash.to_parquet(tmp_path / "clash.parquet", index=False)
    result = run_cli("predict", tmp_path / "clash.parquet", "-m", t.files["xgboost.json"], "-o", "-")
    assert result.returncode == 3
    assert "missing feature column 'mean radius'" in result.stderr


@pytest.mark.matrix
@pytest.mark.parametrize("kind", ["xgboost.json", "lightgbm.txt", "xgboost.pkl", "lightgbm.pkl"])
def test_convert_to_onnx_with_parity(trained: dict[str, Trained], tmp_path: Path, kind: str) -> None:
    t = trained["wine"] if kind.startswith("lightgbm") else trained["cancer"]
    onnx_path = tmp_path / "model.onnx"
    args: list[str | Path] = ["convert", t.files[kind], "-o", onnx_path, "--sample", t.data, "--json"]
    if kind.endswith(".pkl"):
        args += ["-t", "sklearn"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["written"] and report["parity"]["passed"]
    assert report["parity"]["label_agreement"] == 1.0 and report["parity"]["max_abs_diff"] < 1e-5
    assert "onnxmltools" in report["versions"]
    # The converted model scores the original columns (names from its metadata).
    scored = run_cli("predict-proba", t.data, "-m", onnx_path, "-o", tmp_path / "p.parquet", "-q")
    assert scored.returncode == 0, scored.stderr
    library = kind.split(".", maxsplit=1)[0]
    _, proba = direct(t.models[library], t.frame)
    np.testing.assert_allclose(pq.read_table(tmp_path / "p.parquet").to_pandas().to_numpy(), proba, atol=1e-5)


def test_thread_budget_follows_the_onnx_rule(trained: dict[str, Trained]) -> None:
    from modelrouter import ModelPool

    cores = os.cpu_count() or 1
    for kind in ("xgboost.json", "lightgbm.txt"):
        pool = ModelPool.load(kind.split(".")[0], trained["wine"].files[kind], size=2)
        instance: Any = pool.prototype
        if kind.startswith("xgboost"):
            threads = int(json.loads(instance.booster.save_config())["learner"]["generic_param"]["nthread"])
        else:
            threads = instance._threads
        assert threads * pool.size <= max(cores, pool.size)
        pool.close()
    wrapper = ModelPool.load("sklearn", trained["wine"].files["xgboost.pkl"], size=2)
    estimator: Any = getattr(wrapper.prototype, "estimator")  # noqa: B009
    assert estimator.n_jobs * 2 <= max(cores, 2)
