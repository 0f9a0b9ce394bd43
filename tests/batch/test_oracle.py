"""Oracle tests: the CLI's output equals the model called directly on the whole frame.

A pairwise subset of (model type × format × chunk size × workers × pool size) runs the
installed ``modelrouter`` in a subprocess; a hypothesis property explores random frames and
chunkings through the same CLI code in-process (a subprocess per example would take minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter import ModelPool, ModelType
from modelrouter.cli.main import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SAMPLE_PARQUET = ROOT / "sample_data" / "wine.parquet"
MODEL_FILES = {
    ModelType.SKLEARN: ROOT / "models" / "classifier.pkl",
    ModelType.ONNX: ROOT / "models" / "classifier.onnx",
}


def run_cli(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    result = subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=60
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def direct(kind: ModelType, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """What the model says when called once on the whole frame."""
    pool = ModelPool.load(kind, MODEL_FILES[kind], size=1)
    with pool.borrow() as model:
        return model.predict(frame), model.predict_proba(frame)


def assert_same_proba(kind: ModelType, got: np.ndarray, expected: np.ndarray) -> None:
    """sklearn is bit-exact whatever the chunking; onnxruntime's float32 tree sums may differ
    in the last bit between batch sizes (measured: 6e-7), so ONNX gets float32 tolerance."""
    if kind is ModelType.SKLEARN:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def read_output(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
        return frame
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def shuffled_wine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample data with ids shuffled (so order mistakes show), as CSV and Parquet."""
    frame = pd.read_parquet(SAMPLE_PARQUET)
    frame["id"] = np.random.default_rng(7).permutation(len(frame)) + 1000
    folder = tmp_path_factory.mktemp("wine")
    frame.to_csv(folder / "wine.csv", index=False)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), folder / "wine.parquet", row_group_size=50
    )
    return {"csv": folder / "wine.csv", "parquet": folder / "wine.parquet"}


# (model type, input format, chunk size, workers, pool size): every value of each axis
# appears, and every pair of chunk size × workers.
MATRIX = [
    (ModelType.SKLEARN, "csv", 1, 1, 1),
    (ModelType.SKLEARN, "parquet", 7, 4, 3),
    (ModelType.SKLEARN, "parquet", 10_000, 1, 3),
    (ModelType.ONNX, "parquet", 1, 4, 1),
    (ModelType.ONNX, "csv", 7, 1, 3),
    (ModelType.ONNX, "csv", 10_000, 4, 1),
]


@pytest.mark.matrix
@pytest.mark.parametrize("kind,fmt,chunk,workers,pool", MATRIX)
def test_cli_equals_direct_call(
    tmp_path: Path,
    shuffled_wine: dict[str, Path],
    kind: ModelType,
    fmt: str,
    chunk: int,
    workers: int,
    pool: int,
) -> None:
    source = shuffled_wine[fmt]
    frame = pd.read_parquet(shuffled_wine["parquet"])
    labels, proba = direct(kind, frame)
    out_labels = tmp_path / f"labels.{fmt}"
    out_proba = tmp_path / "proba.parquet"
    stats = tmp_path / "stats.json"
    common = ["-t", str(kind), "-k", "id", "--chunk-size", str(chunk), "-w", str(workers)]
    common += ["--pool-size", str(pool)]
    run_cli("predict", source, "-o", out_labels, *common, "--stats-json", stats, "-q")
    run_cli("predict-proba", source, "-o", out_proba, *common, "-q")

    got = read_output(out_labels)
    assert list(got.columns) == ["id", "prediction"]
    assert got["id"].tolist() == frame["id"].tolist()
    assert got["prediction"].tolist() == list(labels)

    got_proba = read_output(out_proba)
    assert list(got_proba.columns) == ["id", "proba_class_0", "proba_class_1", "proba_class_2"]
    assert_same_proba(kind, got_proba.iloc[:, 1:].to_numpy(), proba)

    report = json.loads(stats.read_text())
    chunks = -(-len(frame) // chunk)
    summary, pool_stats = report["summary"], report["pools"][str(kind)]
    assert summary["rows_in"] == summary["rows_out"] == len(frame)
    assert summary["rows_rejected"] == 0
    assert summary["chunks"] == chunks == pool_stats["borrows"] == pool_stats["chunks"]
    assert pool_stats["rows"] == len(frame)
    assert pool_stats["available"] == pool_stats["size"] == pool
    assert pool_stats["in_use"] == 0 and pool_stats["errors"] == 0


def test_sklearn_and_onnx_outputs_agree_through_the_cli(
    tmp_path: Path, shuffled_wine: dict[str, Path]
) -> None:
    from modelrouter import load_settings

    outputs = {}
    for kind in load_settings(ROOT / "models" / "default.toml").models:  # the shipped models
        out = tmp_path / f"{kind}.parquet"
        run_cli("predict-proba", shuffled_wine["parquet"], "-t", kind, "-o", out, "-q")
        outputs[kind] = pq.read_table(out).to_pandas()
    np.testing.assert_allclose(
        outputs[ModelType.SKLEARN].to_numpy(), outputs[ModelType.ONNX].to_numpy(), atol=1e-5, rtol=0
    )


def test_stdout_carries_only_csv(shuffled_wine: dict[str, Path]) -> None:
    result = run_cli("predict", shuffled_wine["csv"], "-o", "-", "-k", "id")
    lines = result.stdout.splitlines()
    assert lines[0].replace('"', "") == "id,prediction"
    assert len(lines) == 179
    assert "pool stats" in result.stderr and "pool stats" not in result.stdout


def test_stats_table_is_not_truncated_off_a_terminal(shuffled_wine: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli("predict", shuffled_wine["parquet"], "-o", tmp_path / "o.parquet", "-w", "3")
    for label in ("pool size", "available", "in use", "borrows", "wait mean (s)", "utilisation", "errors"):
        assert label in result.stderr
    assert "…" not in result.stderr


# -- property: random frames, random chunkings, in-process --------------------------------

FEATURES = list(pd.read_parquet(SAMPLE_PARQUET).columns[1:])


@st.composite
def frames(draw: Any) -> pd.DataFrame:
    rows = draw(st.integers(min_value=0, max_value=60))
    values = draw(
        st.lists(
            st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32),
            min_size=rows * len(FEATURES),
            max_size=rows * len(FEATURES),
        )
    )
    matrix = np.asarray(values, dtype=np.float64).reshape(rows, len(FEATURES))
    frame = pd.DataFrame(matrix, columns=FEATURES)
    frame.insert(0, "id", np.arange(rows, dtype=np.int64)[::-1])
    return frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frame=frames(),
    kind=st.sampled_from([ModelType.SKLEARN, ModelType.ONNX]),
    fmt=st.sampled_from(["csv", "parquet"]),
    chunk=st.integers(min_value=1, max_value=70),
    workers=st.integers(min_value=1, max_value=4),
    pool=st.integers(min_value=1, max_value=3),
)
def test_property_cli_equals_direct(
    tmp_path: Path, frame: pd.DataFrame, kind: ModelType, fmt: str, chunk: int, workers: int, pool: int
) -> None:
    source = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        frame.to_csv(source, index=False, float_format="%.9g")
        frame = pd.read_csv(source, dtype=dict.fromkeys(FEATURES, np.float64))  # what the file holds
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)
    out = tmp_path / "out.parquet"
    args = ["predict-proba", str(source), "-t", str(kind), "-o", str(out), "-k", "id"]
    args += ["--chunk-size", str(chunk), "-w", str(workers), "--pool-size", str(pool), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    got = pq.read_table(out).to_pandas()
    assert got["id"].astype(np.int64).tolist() == frame["id"].tolist()
    if len(frame):
        _, proba = direct(kind, frame)
        assert_same_proba(kind, got.iloc[:, 1:].to_numpy(), proba)
    else:
        assert list(got.columns) == ["id", "proba_class_0", "proba_class_1", "proba_class_2"]
