"""Datasets in, datasets out (docs/specification.md §9) on the local and the Dask engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from modelrouter.batch.datasets import natural_key, plan_dataset

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pd.read_parquet(ROOT / "sample_data" / "wine.parquet")


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


def as_path(location: object) -> Path:
    """A local dataset's locations are paths (a URI dataset's would be storage.Uri)."""
    assert isinstance(location, Path)
    return location


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pq.read_table(path).to_pandas()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 files (CSV and Parquet, one sub-folder), ids shuffled within each file."""
    root = tmp_path_factory.mktemp("data") / "wine"
    (root / "2024").mkdir(parents=True)
    for i in range(9):
        part = WINE.sample(frac=1.0, random_state=i).copy()
        part["id"] = part["id"] + 1000 * i
        folder = root / "2024" if i % 3 == 0 else root
        if i % 2:
            part.to_csv(folder / f"part-{i}.csv", index=False)
        else:
            part.to_parquet(folder / f"part-{i}.parquet", index=False)
    return root


def test_natural_order_and_output_names(dataset: Path, tmp_path: Path) -> None:
    plan = plan_dataset(str(dataset), str(tmp_path / "out"), None)
    names = [str(as_path(p).relative_to(dataset)) for p in plan.inputs]
    assert names == sorted(names, key=lambda n: natural_key(Path(n)))
    assert names[:3] == ["2024/part-0.parquet", "2024/part-3.csv", "2024/part-6.parquet"]
    assert plan.outputs[0] == tmp_path / "out" / "2024" / "part-0.parquet"
    as_csv = plan_dataset(str(dataset), str(tmp_path / "out"), "csv")
    assert all(p.suffix == ".csv" for p in as_csv.outputs)
    assert sorted(natural_key(Path(p)) for p in ["p-10", "p-2", "p-1"]) == [
        natural_key(Path("p-1")),
        natural_key(Path("p-2")),
        natural_key(Path("p-10")),
    ]


def test_local_engine_directory_and_glob(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "scored"
    result = run_cli("predict", dataset, "-o", out, "-k", "id", "--chunk-size", "40", "-q")
    assert result.returncode == 0, result.stderr
    assert (out / "_SUCCESS").read_bytes() == b""
    for source in map(as_path, plan_dataset(str(dataset), str(out), None).inputs):
        target = out / source.relative_to(dataset)
        assert read(target)["id"].tolist() == read(source)["id"].tolist()
    globbed = tmp_path / "globbed"
    result = run_cli(
        "predict", f"{dataset}/*.csv", "-o", globbed, "-k", "id", "--output-format", "parquet", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in globbed.iterdir()) == [
        "_SUCCESS", "part-1.parquet", "part-5.parquet", "part-7.parquet",
    ]  # fmt: skip


def test_failing_file_keeps_completed_ones_and_resume_finishes(dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        WINE.to_parquet(data / f"f{i}.parquet", index=False)
    (data / "f2.parquet").write_bytes(b"not parquet")
    out = tmp_path / "out"
    out.mkdir()
    (out / "_SUCCESS").write_bytes(b"")  # stale marker from an earlier run
    result = run_cli("predict", data, "-o", out, "-q")
    assert result.returncode == 3
    assert f"{data / 'f2.parquet'}: not a readable Parquet file" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["f0.parquet", "f1.parquet"]
    first = (out / "f0.parquet").stat().st_mtime_ns
    WINE.to_parquet(data / "f2.parquet", index=False)  # repaired
    stats = tmp_path / "stats.json"
    result = run_cli("predict", data, "-o", out, "-q", "--resume", "--stats-json", stats)
    assert result.returncode == 0, result.stderr
    assert (out / "f0.parquet").stat().st_mtime_ns == first  # skipped, not redone
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS", "f0.parquet", "f1.parquet", "f2.parquet", "f3.parquet",
    ]  # fmt: skip
    summary = json.loads(stats.read_text())["summary"]
    assert (summary["files"], summary["files_skipped"], summary["rows_out"]) == (2, 2, 2 * len(WINE))


@pytest.mark.matrix  # the ONNX cell first: the engines are compared, at a third of the CPU
@pytest.mark.parametrize("model_type", ["onnx", "sklearn"])
def test_dask_engine_equals_local_engine(dataset: Path, tmp_path: Path, model_type: str) -> None:
    local, distributed = tmp_path / "local", tmp_path / "dask"
    common = ["-t", model_type, "-k", "id", "--chunk-size", "50", "-q"]
    assert run_cli("predict-proba", dataset, "-o", local, *common).returncode == 0
    stats = tmp_path / "dask.json"
    result = run_cli(
        "predict-proba", dataset, "-o", distributed, *common, "--engine", "dask", "--workers", "2",
        "--stats-json", stats,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (distributed / "_SUCCESS").exists()
    for source in plan_dataset(str(dataset), str(local), None).inputs:
        relative = as_path(source).relative_to(dataset)
        pd.testing.assert_frame_equal(read(local / relative), read(distributed / relative))
    report = json.loads(stats.read_text())
    assert len(report["workers"]) == 2
    for worker in report["workers"].values():
        assert list(worker["loads"].values()) == [1]  # each worker process loaded the model once
        assert worker["pools"][model_type]["available"] == worker["pools"][model_type]["size"]
    total = report["pools"][model_type]
    assert total["rows"] == report["summary"]["rows_out"] == 9 * len(WINE)
    assert total["borrows"] == report["summary"]["chunks"]


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_dask_bad_file_fails_the_run_with_its_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        WINE.to_parquet(data / f"f{i}.parquet", index=False)
    bad = WINE.drop(columns=["hue"])
    bad.to_parquet(data / "f1.parquet", index=False)
    out = tmp_path / "out"
    result = run_cli("predict", data, "-o", out, "--engine", "dask", "--workers", "2", "-q")
    assert result.returncode == 3
    assert f"{data / 'f1.parquet'}: missing feature column 'hue'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "f1.parquet").exists()
    assert not (out / "_SUCCESS").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert np.isin(["f0.parquet", "f2.parquet"], [p.name for p in out.iterdir()]).all()


@pytest.mark.parametrize("engine", ["local", pytest.param("dask", marks=pytest.mark.slow)])
def test_a_dataset_output_creates_only_the_last_folder_level(tmp_path: Path, engine: str) -> None:
    """As `mkdir`, not `mkdir -p`: a typo in a cron path must not create a new tree (a
    single file's -o into a missing folder is exit 5 too); nested input folders are mirrored."""
    source = tmp_path / "in"
    (source / "2026" / "12").mkdir(parents=True)
    wine = Path(__file__).resolve().parents[2] / "sample_data" / "wine.csv"
    (source / "2026" / "12" / "day.csv").write_bytes(wine.read_bytes())
    typo = tmp_path / "scroed" / "2026-12-06"
    done = run_cli("predict", source, "-o", typo, "--no-stats", "--engine", engine)
    assert done.returncode == 5, done.stderr
    assert done.stderr == (
        f"error: {typo}: cannot create the output directory: its parent {typo.parent} does not exist "
        "(only the last folder level is created; create the parents first)\n"
    )
    assert not typo.parent.exists()
    single = run_cli("predict", wine, "-o", typo / "day.csv", "--no-stats")
    assert single.returncode == 5 and not typo.parent.exists()
    out = tmp_path / "scored"
    done = run_cli("predict", source, "-o", out, "--no-stats", "--engine", engine)
    assert done.returncode == 0, done.stderr
    written = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]  # not sidecars
    assert sorted(str(p.relative_to(out)) for p in written) == [
        "2026/12/day.csv",
        "_SUCCESS",
    ]


def test_a_worker_dying_while_the_local_cluster_starts_is_a_named_output_error(tmp_path: Path) -> None:
    """Every worker process exits at once (a sitecustomize standing in for a kill or an OOM
    while the cluster starts): exit 5 naming the cluster, nothing written — never exit 1."""
    pytest.importorskip("distributed")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if any('multiprocessing' in a or 'forkserver' in a for a in sys.argv):\n"
        "    os._exit(9)\n"
    )
    data = tmp_path / "ds"
    data.mkdir()
    (data / "a.csv").write_bytes((ROOT / "sample_data" / "wine.csv").read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    env["PYTHONPATH"] = str(site)
    out = tmp_path / "out"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "modelrouter"), "predict", str(data), "-o", str(out),
         "--engine", "dask", "--workers", "1", "-q"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert result.stderr.startswith("error: the local Dask cluster of 1 worker process(es) did not start")
    assert "Traceback" not in result.stderr
    assert not out.exists() or (not (out / "_SUCCESS").exists() and not list(out.glob("*.csv")))
