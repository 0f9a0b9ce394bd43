"""An interrupted run still records itself for cron (docs/reliability.md).

SIGTERM (a cron ``timeout``), SIGINT (^C) and SIGHUP (the terminal or SSH session closed)
end a run with 128 + the signal number, remove its temporary files, leave the previous output
as it was, and write the stats JSON and the metrics textfile with the exit code and the counts
known when it stopped: ``modelrouter_last_run_success`` must not keep reporting the previous
success.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from tests.slow_estimators import SlowForest
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
PREVIOUS = b"id,prediction\n1,yesterday\n"
PREVIOUS_METRICS = 'modelrouter_last_run_success{model_type="sklearn"} 1\n'
ROWS = 4_000
TEMP = re.compile(r"^\..+\.tmp$")
CHUNK = 100


def rows_written(proc: subprocess.Popen[str], folder: Path) -> int:
    """Rows in the run's temporary output so far (it writes each chunk as it goes, unbuffered).

    The run counts a chunk once it is written, before it writes the next: rows of a second
    chunk there mean the first is counted."""
    assert proc.poll() is None, proc.communicate()
    for temp in (p for p in folder.iterdir() if TEMP.match(p.name) and p.name.startswith(".out.csv")):
        try:
            return max(0, temp.read_bytes().count(b"\n") - 1)
        except FileNotFoundError:  # gone: the run failed (the next look says so)
            return 0
    return 0


@pytest.fixture(scope="module")
def slow_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("slow")
    data = load_wine(as_frame=True)
    model = SlowForest(n_estimators=3, max_depth=3, random_state=0).fit(data.data, data.target)
    model.delay_ = 0.25  # per chunk of 100 rows: 10 s for the file, on one worker
    joblib.dump(model, folder / "slow.pkl")
    frame = pd.concat([data.data] * (ROWS // len(data.data) + 1), ignore_index=True).head(ROWS)
    frame.insert(0, "id", np.arange(1, ROWS + 1))
    frame.to_csv(folder / "in.csv", index=False)
    return folder


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)],
    ids=["SIGTERM", "SIGINT", "SIGHUP"],
)
def test_interrupted_run_writes_stats_and_metrics(
    slow_folder: Path, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    out, stats, metrics = tmp_path / "out.csv", tmp_path / "stats.json", tmp_path / "run.prom"
    out.write_bytes(PREVIOUS)
    metrics.write_text(PREVIOUS_METRICS)
    args = [
        "predict", str(slow_folder / "in.csv"), "-m", str(slow_folder / "slow.pkl"), "-k", "id",
        "-o", str(out), "--chunk-size", str(CHUNK), "-w", "1", "--no-progress",
        "--stats-json", str(stats), "--metrics-textfile", str(metrics),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    env["PYTHONPATH"] = str(ROOT)  # tests.slow_estimators, as a user's own estimator module
    proc = subprocess.Popen(
        [str(MODELROUTER), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: rows_written(proc, tmp_path) > CHUNK, "a second chunk in the temporary output")
        proc.send_signal(signum)  # the first chunk is counted: its rows are the counts to report
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert stdout == ""
    assert f"interrupted by {signum.name}; no output was written" in stderr
    assert out.read_bytes() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.csv",
        "run.prom",
        "stats.json",
    ]  # no temporaries

    summary = json.loads(stats.read_text())["summary"]
    assert summary["exit_code"] == code
    assert signum.name in summary["error"]
    assert summary["model_type"] == "sklearn"
    assert isinstance(summary["rows_in"], int) and 0 < summary["rows_in"] < ROWS
    assert summary["rows_out"] == summary["rows_in"]
    assert summary["rows_rejected"] == 0

    text = metrics.read_text()
    assert 'modelrouter_last_run_success{model_type="sklearn"} 0\n' in text
    assert f'modelrouter_last_run_exit_code{{model_type="sklearn"}} {code}\n' in text
    assert f'modelrouter_rows_in{{model_type="sklearn"}} {summary["rows_in"]}\n' in text


@pytest.mark.matrix
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_interrupted_dataset_counts_the_output_files_it_keeps(
    slow_folder: Path, tmp_path: Path, fmt: str
) -> None:
    """The line counts the outputs a user finds, not the provenance sidecars beside CSV and
    JSON Lines outputs (it said 10 for 5 files)."""
    data, out = tmp_path / "day", tmp_path / "out"
    data.mkdir()
    whole = (slow_folder / "in.csv").read_text().splitlines(keepends=True)
    for name in ("a", "b"):  # one chunk each: done in a moment
        (data / f"{name}.csv").write_text("".join(whole[:CHUNK]))
    (data / "c.csv").write_text("".join(whole))  # 40 chunks of 0.25 s
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    env["PYTHONPATH"] = str(ROOT)  # tests.slow_estimators, as a user's own estimator module
    args = [
        "predict", str(data), "-m", str(slow_folder / "slow.pkl"), "-o", str(out), "--output-format", fmt,
        "--chunk-size", str(CHUNK), "-w", "1", "--no-progress", "-q",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [str(MODELROUTER), *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until((out / f"b.{fmt}").exists, "the second output in place")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, stderr
    assert stderr == (
        "error: interrupted by SIGTERM; the 2 output file(s) completed so far stay (rerun with --resume)\n"
    )
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [f"a.{fmt}", f"b.{fmt}"]
