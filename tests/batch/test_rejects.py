"""--on-error skip: bad rows go to the rejects file, every row is accounted for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.cli.main import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pd.read_csv(ROOT / "sample_data" / "wine.csv")
FEATURES = list(WINE.columns[1:])


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=60
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_bad_values_are_rejected_and_the_rest_scored_in_order(tmp_path: Path) -> None:
    frame = WINE.astype({"magnesium": object, "hue": object})
    frame.loc[3, "magnesium"] = "lots"
    frame.loc[100, "hue"] = "dark"
    frame.loc[101, "magnesium"] = "?"
    source = write_csv(tmp_path / "in.csv", frame)
    out = tmp_path / "out.csv"
    stats = tmp_path / "stats.json"
    result = run_cli(
        "predict", source, "-o", out, "-k", "id", "--on-error", "skip", "--chunk-size", "16",
        "-w", "3", "--stats-json", stats,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["row"].tolist() == [4, 101, 102]
    assert rejects["column"].tolist() == ["magnesium", "hue", "magnesium"]
    assert rejects["reason"].tolist() == [
        "cannot convert 'lots' to a number",
        "cannot convert 'dark' to a number",
        "cannot convert '?' to a number",
    ]
    assert rejects["id"].tolist() == [4, 101, 102]  # the original values come along
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == [i for i in WINE["id"] if i not in (4, 101, 102)]
    model = joblib.load(ROOT / "models" / "classifier.pkl")
    good = WINE[~WINE["id"].isin([4, 101, 102])]
    assert scored["prediction"].tolist() == list(model.predict(good[FEATURES]))
    summary = json.loads(stats.read_text())["summary"]
    assert (summary["rows_in"], summary["rows_out"], summary["rows_rejected"]) == (178, 175, 3)
    assert "3 rows rejected" in result.stderr


def test_nan_rejected_by_the_model_narrowed_to_the_rows(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=5000).fit(WINE[FEATURES], WINE["id"] % 2)
    joblib.dump(model, tmp_path / "lr.pkl")
    frame = WINE.copy()
    frame.loc[[10, 11, 50], "ash"] = np.nan
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)
    out = tmp_path / "out.parquet"
    rejects = tmp_path / "bad.parquet"
    result = run_cli("predict", source, "-m", tmp_path / "lr.pkl", "-o", out, "-k", "id",
                     "--on-error", "skip", "--rejects", rejects)  # fmt: skip
    assert result.returncode == 0, result.stderr
    bad = pq.read_table(rejects).to_pandas()
    assert bad["row"].tolist() == [11, 12, 51]
    assert set(bad["column"]) == {"ash"}
    assert pq.read_table(out).num_rows == 175


def test_fail_policy_is_the_default(tmp_path: Path) -> None:
    frame = WINE.astype({"magnesium": object})
    frame.loc[3, "magnesium"] = "lots"
    source = write_csv(tmp_path / "in.csv", frame)
    result = run_cli("predict", source, "-o", tmp_path / "out.csv")
    assert result.returncode == 3
    assert "row 4: column 'magnesium': cannot convert 'lots'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_error_budget_exceeded_writes_rejects_but_no_predictions(tmp_path: Path) -> None:
    frame = WINE.astype({"magnesium": object})
    frame.loc[0:19, "magnesium"] = "x"  # 20 of 178 = 11 %
    source = write_csv(tmp_path / "in.csv", frame)
    out = tmp_path / "out.csv"
    out.write_text("previous run\n")
    stats = tmp_path / "stats.json"
    result = run_cli(
        "predict", source, "-o", out, "--on-error", "skip", "--max-error-rate", "0.1", "--stats-json", stats
    )
    assert result.returncode == 3
    assert "20 of 178 rows rejected (11.24%), above --max-error-rate 0.1" in result.stderr
    assert out.read_text() == "previous run\n"
    assert len(pd.read_csv(tmp_path / "out.rejects.csv")) == 20
    # The failed run's stats name the rejects file it committed and report its pools.
    report = json.loads(stats.read_text())
    assert report["summary"]["rejects"] == str(tmp_path / "out.rejects.csv")
    assert (report["summary"]["rows_rejected"], report["summary"]["chunks"]) == (20, 1)
    assert report["pools"]["sklearn"]["rows"] == 158 and report["pools"]["sklearn"]["in_use"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_rejects_required_with_stdout(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", WINE)
    result = run_cli("predict", source, "-o", "-", "--on-error", "skip")
    assert result.returncode == 2
    assert "--rejects" in result.stderr


@st.composite
def damaged(draw: st.DrawFn) -> tuple[pd.DataFrame, set[int]]:
    rows = draw(st.integers(min_value=0, max_value=40))
    frame = WINE.head(rows).astype(dict.fromkeys(FEATURES, object)).reset_index(drop=True)
    bad_rows = draw(st.sets(st.integers(min_value=0, max_value=max(rows - 1, 0)), max_size=rows))
    for row in bad_rows:
        column = draw(st.sampled_from(FEATURES))
        frame.loc[row, column] = draw(st.sampled_from(["abc", "1,5", "--", "nan?", "١٢"]))
    return frame, bad_rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=damaged(), chunk=st.integers(min_value=1, max_value=50), workers=st.integers(1, 3))
def test_every_row_is_accounted_for(
    tmp_path: Path, case: tuple[pd.DataFrame, set[int]], chunk: int, workers: int
) -> None:
    frame, bad_rows = case
    source = write_csv(tmp_path / "in.csv", frame)
    out, stats = tmp_path / "out.csv", tmp_path / "stats.json"
    args = ["predict", str(source), "-o", str(out), "-k", "id", "--on-error", "skip", "-q"]
    args += ["--chunk-size", str(chunk), "-w", str(workers), "--stats-json", str(stats)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(stats.read_text())["summary"]
    assert summary["rows_in"] == len(frame) == summary["rows_out"] + summary["rows_rejected"]
    rejected = pd.read_csv(tmp_path / "out.rejects.csv")["row"].tolist() if bad_rows else []
    assert rejected == sorted(r + 1 for r in bad_rows)
    assert pd.read_csv(out)["id"].tolist() == [i for r, i in enumerate(frame["id"]) if r not in bad_rows]
