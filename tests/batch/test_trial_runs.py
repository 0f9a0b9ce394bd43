"""`--limit N`: a trial run scores the first N rows of each input file, with the same outputs
and checks as a full run (end to end through the real command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.matrix
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("limit", [1, 7, 100_000])
def test_the_first_n_rows_exactly_as_the_full_run_scores_them(
    tmp_path: Path, suffix: str, limit: int
) -> None:
    source = ROOT / "sample_data" / f"wine{suffix}"
    full, trial = tmp_path / "full.csv", tmp_path / "trial.csv"
    stats = tmp_path / "stats.json"
    assert run_cli("predict-proba", source, "-o", full, "-k", "id", "--no-stats").returncode == 0
    done = run_cli(
        "predict-proba", source, "-o", trial, "-k", "id", "--no-stats", "--limit", str(limit),
        "--chunk-size", "3", "--stats-json", stats,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = pd.read_csv(full).head(limit)
    pd.testing.assert_frame_equal(pd.read_csv(trial), expected, check_dtype=False)
    summary = json.loads(stats.read_text())["summary"]
    assert summary["rows_in"] == summary["rows_out"] == len(expected)


def test_a_trial_run_keeps_the_checks_of_a_full_one(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    frame = pd.read_csv(ROOT / "sample_data" / "wine.csv", dtype=str)
    frame.loc[2, "alcohol"] = "lots"  # data row 3
    frame.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    assert run_cli("predict", source, "-o", out, "--limit", "2", "--no-stats").returncode == 0
    done = run_cli("predict", source, "-o", out, "--limit", "3", "--no-stats")
    assert done.returncode == 3 and "row 3: column 'alcohol': cannot convert 'lots'" in done.stderr
    done = run_cli("predict", source, "-o", out, "--limit", "0")
    assert done.returncode == 2 and "Invalid value for --limit" in done.stderr


def test_a_dataset_trial_scores_n_rows_of_each_file(tmp_path: Path) -> None:
    folder = tmp_path / "day"
    folder.mkdir()
    wine = pd.read_csv(ROOT / "sample_data" / "wine.csv")
    wine.head(50).to_csv(folder / "a.csv", index=False)
    wine.tail(3).to_csv(folder / "b.csv", index=False)
    done = run_cli("predict", folder, "-o", tmp_path / "scored", "--limit", "5", "--no-stats")
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "scored" / "a.csv")) == 5
    assert len(pd.read_csv(tmp_path / "scored" / "b.csv")) == 3
    assert (tmp_path / "scored" / "_SUCCESS").exists()
