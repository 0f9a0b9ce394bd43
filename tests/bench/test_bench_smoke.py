"""Smoke test of the benchmark harness (``python -m benchmarks.run``) on a tiny size.

Not a timed test: it checks that every scenario runs and reports positive numbers, not that
modelrouter meets the targets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import postgres
from benchmarks.run import GROUPS, Measurer, parse_time_v

ROOT = Path(__file__).resolve().parents[2]

PG_SCENARIOS = ("baseline-pg", "modelrouter-pg-to-pg", "psql-copy-then-file", "modelrouter-pg-to-parquet")
SCENARIOS = {
    "baseline-rf",
    "modelrouter-rf-sklearn",
    "modelrouter-rf-onnx",
    "baseline-logreg",
    "pyarrow-io",
    "modelrouter-logreg-sklearn",
    "modelrouter-logreg-onnx",
    "modelrouter-logreg-sklearn-big",
    "modelrouter-startup",
    "modelrouter-version",
    "baseline-rf-small",
    "baseline-logreg-small",
    "modelrouter-rf-sklearn-small",
    "modelrouter-rf-onnx-small",
    "modelrouter-logreg-sklearn-small",
    "modelrouter-logreg-onnx-small",
    "baseline-rf-big",
    "modelrouter-rf-sklearn-big",
    "modelrouter-rf-sklearn-w1",
    "modelrouter-rf-sklearn-w2",
    "baseline-xgboost",
    "modelrouter-xgboost",
    "baseline-lightgbm",
    "modelrouter-lightgbm",
    "modelrouter-rf-onnx-plain",
    "modelrouter-logreg-onnx-plain",
    *PG_SCENARIOS,
    "baseline-rf-shap",
    "modelrouter-rf-explain",
    "baseline-xgboost-contribs",
    "modelrouter-xgboost-explain",
    "baseline-lightgbm-contribs",
    "modelrouter-lightgbm-explain",
}
CHECKS = 32
EXPLAIN_ROWS = 200
PG_CHECKS = [
    "PostgreSQL → PostgreSQL: wall vs naive read_sql + to_sql",
    "PostgreSQL → PostgreSQL: peak RSS vs naive read_sql + to_sql",
    "PostgreSQL → Parquet: wall vs psql \\copy to CSV + CSV → Parquet",
]


@pytest.mark.timeout(320)
@pytest.mark.slow  # ~30 s of real benchmark runs: `make test-slow`
def test_bench_runs_every_scenario(tmp_path: Path) -> None:
    results = tmp_path / "results" / "latest.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.run", "--rows", "3000", "--repeats", "1", "--big-rows", "0",
            "--quick", "--small-rows", "500", "--results", str(results), "--data-dir", str(tmp_path / "data"),
            "--explain-rows", str(EXPLAIN_ROWS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=315,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Targets (issues 4 and 15)" in proc.stdout
    assert "Where the fixed cost goes (500-row file" in proc.stdout
    data = json.loads(results.read_text(encoding="utf-8"))

    assert set(data["scenarios"]) == SCENARIOS
    assert data["errors"] == []
    for key, scenario in data["scenarios"].items():
        if key == "modelrouter-logreg-sklearn-big":
            assert scenario["skipped"] == "--quick"
            assert scenario["runs"] == []
            continue
        if key.endswith("rf-big") or key.endswith("rf-sklearn-big"):
            assert scenario["skipped"].startswith("BENCH_10M=1")
            continue
        if key in PG_SCENARIOS and postgres.missing():
            assert scenario["skipped"] == postgres.missing()
            continue
        assert scenario["error"] is None, key
        startup = key in ("modelrouter-startup", "modelrouter-version")
        assert len(scenario["runs"]) == (5 if startup else 1), key
        assert scenario["median_wall_s"] > 0, key
        assert scenario["peak_rss_mib"] > 0, key
        if not startup:
            explain = key.endswith(("-explain", "-shap", "-contribs"))
            assert scenario["rows"] == (
                500 if key.endswith("-small") else EXPLAIN_ROWS if explain else 3000
            ), key
            assert scenario["rows_per_s"] > 0, key
        if key.endswith(("-w1", "-w2")):
            assert scenario["scoring_rows_per_s"] > scenario["rows_per_s"], key
        if scenario["reference"] is not None:
            assert scenario["wall_ratio"] > 0, key
            assert scenario["rss_ratio"] > 0, key
        if scenario["agrees_with"] is not None:
            assert scenario["agreement"] >= 0.999, key
        if key.endswith("-explain"):  # every contribution checked against the reference's
            assert scenario["agreement"] == 1.0, key

    assert len(data["checks"]) == CHECKS
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert set(statuses.values()) <= {"PASS", "FAIL", "SKIP"}
    assert [name for name, status in statuses.items() if status == "SKIP"] == [
        "RF sklearn @big rows: wall vs baseline",
        "RF sklearn: peak RSS at big rows vs at 3,000",
        "logreg sklearn: peak RSS at --big-rows vs at 3,000",
        *(PG_CHECKS if postgres.missing() else []),
    ]
    for name in ("rf sklearn", "rf onnx", "logreg sklearn", "logreg onnx"):
        phases = data["fixed_cost"][name]["phases"]
        assert phases["total"] > 0 and phases["model load"] > 0, name
        assert sum(data["fixed_cost"][name]["imports_by_package"].values()) > 0, name
    machine = data["machine"]
    assert machine["nproc"] >= 1
    assert machine["cpu_model"]
    assert machine["packages"]["scikit-learn"]
    # Nothing was written into the repository.
    assert (tmp_path / "data" / "v1" / "features-3000.parquet").is_file()


def _scenario(description: str, agreement: float | None = None, ratio: float | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "runs": [{"wall_s": 1.0}],
        "agreement": agreement,
        "wall_ratio": ratio,
    }


def test_merge_adds_a_partial_runs_new_scenarios_and_checks() -> None:
    from benchmarks.merge import merge
    from benchmarks.report import render_page

    agree = "outputs agree with the baseline's (fraction of rows)"
    whole = {
        "created": "whole",
        "scenarios": {"base": _scenario("base"), "a": _scenario("A", 1.0), "z": _scenario("Z")},
        "checks": [{"name": agree, "value": 1.0, "op": ">=", "limit": 0.999, "status": "PASS"}],
    }
    partial = {
        "created": "2026-12-06T23:30:00+0000",
        "loadavg_before": [11.0, 10.0, 9.0],
        "scenarios": {
            "base": _scenario("base (partial run)"),
            "a": _scenario("A (partial run)", ratio=0.84),
            "new": _scenario("New thing", 0.5),
            "z": {"description": "Z", "runs": [], "skipped": "not in --groups"},
        },
        "checks": [
            {"name": agree, "value": 0.5, "op": ">=", "limit": 0.999, "status": "FAIL"},
            {"name": "new: wall vs base", "value": 0.4, "op": "<=", "limit": 0.6, "status": "PASS"},
            {"name": "z: wall vs base", "value": None, "op": "<=", "limit": 1.0, "status": "SKIP"},
        ],
    }
    merged = merge(whole, partial, ["new"])
    assert list(merged["scenarios"]) == ["base", "a", "new", "z"]
    assert merged["scenarios"]["a"]["description"] == "A"  # the whole run's own figures stay
    assert [c["name"] for c in merged["checks"]] == [agree, "new: wall vs base"]
    assert merged["checks"][0]["value"] == 0.5 and merged["checks"][0]["status"] == "FAIL"
    assert merged["merged"] == [
        {
            "created": partial["created"],
            "loadavg_before": [11.0, 10.0, 9.0],
            "scenarios": ["new"],
            "checks": ["new: wall vs base"],
            "same_run": {"a": 0.84},
        }
    ]
    assert (
        "- Measured on 2026-12-06T23:30:00+0000 in a run of their groups only (load average "
        "before it: 11.0, 10.0, 9.0), their ratios to that run's baselines: New thing. The same "
        "run's other wall ratios: A 0.84 ×"
    ) in render_page(merged)
    assert merge(merged, partial, ["new"])["merged"] == merged["merged"]  # merged again: replaced
    with pytest.raises(ValueError, match="z: not measured"):
        merge(whole, partial, ["z"])


@pytest.mark.timeout(240)
@pytest.mark.slow  # a server started, models fitted, ~20 s of CPU: `make test-slow`
@pytest.mark.skipif(postgres.missing() is not None, reason=str(postgres.missing()))
def test_bench_postgres_scenarios_alone(tmp_path: Path) -> None:
    """``--only postgres``: a throw-away server, the naive script and modelrouter table to
    table, psql's export + the file path and modelrouter table to Parquet; nothing else runs."""
    results = tmp_path / "latest.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.run", "--only", "postgres", "--rows", "2000", "--repeats", "1",
            "--results", str(results), "--data-dir", str(tmp_path / "data"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=235,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(results.read_text(encoding="utf-8"))
    assert data["args"]["only"] == ["postgres"]
    assert data["errors"] == []
    for key, scenario in data["scenarios"].items():
        if key not in PG_SCENARIOS:
            assert scenario["skipped"] == "not selected (--only postgres)", key
            assert scenario["runs"] == [], key
            continue
        assert scenario["error"] is None, key
        assert len(scenario["runs"]) == 1, key
        assert scenario["rows"] == 2000, key
        assert scenario["median_wall_s"] > 0 and scenario["peak_rss_mib"] > 0, key
        assert scenario["agreement"] is None if key == "baseline-pg" else scenario["agreement"] >= 0.999, key
    assert data["scenarios"]["modelrouter-pg-to-pg"]["reference"] == "baseline-pg"
    assert data["scenarios"]["modelrouter-pg-to-parquet"]["reference"] == "psql-copy-then-file"
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert all(statuses[name] in ("PASS", "FAIL") for name in PG_CHECKS)
    assert "\\copy" in data["scenarios"]["psql-copy-then-file"]["command"][-1]
    # The server was stopped and its cluster removed.
    assert data["postgres"]["server"].startswith("PostgreSQL ")
    assert not Path(data["postgres"]["folder"]).exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", data["postgres"]["port"])) != 0


def test_only_refuses_an_unknown_group() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--only", "postgres,nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--only takes groups among " + ", ".join(GROUPS) + " (not nope)" in proc.stderr


def test_groups_is_another_spelling_of_only() -> None:
    from benchmarks.run import parse_args

    assert parse_args(["--groups", "rf,logreg"]).only == ("rf", "logreg")
    assert parse_args(["--only", "postgres"]).only == ("postgres",)
    assert parse_args([]).only is None


def test_parse_time_v() -> None:
    report = (
        '\tCommand being timed: "x"\n'
        "\tUser time (seconds): 1.50\n"
        "\tSystem time (seconds): 0.25\n"
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.34\n"
        "\tMaximum resident set size (kbytes): 204800\n"
    )
    m = parse_time_v(report)
    assert m.wall_s == pytest.approx(62.34)
    assert m.rss_mib == pytest.approx(200.0)
    assert (m.user_s, m.sys_s) == (1.5, 0.25)
    assert parse_time_v(report.replace("1:02.34", "1:00:02")).wall_s == pytest.approx(3602)


def test_rusage_fallback_measures_a_child(tmp_path: Path) -> None:
    """The wrapper used without /usr/bin/time sees the child's wall time and peak RSS."""
    measure = Measurer("rusage", tmp_path)
    code = "import time; b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.2)"
    m = measure([sys.executable, "-c", code])
    assert m.wall_s >= 0.2
    assert m.rss_mib >= 80


def test_merging_the_same_scenarios_again_replaces_the_checks_the_first_merge_added() -> None:
    from benchmarks.merge import merge

    whole = {"created": "whole", "scenarios": {"base": _scenario("base")}, "checks": []}

    def partial(value: float) -> dict[str, Any]:
        return {
            "created": f"run {value}",
            "scenarios": {"base": _scenario("base"), "new": _scenario("New", ratio=value)},
            "checks": [{"name": "new: wall", "value": value, "op": "<=", "limit": 0.6, "status": "?"}],
        }

    first = merge(whole, partial(0.81), ["new"])
    again = merge(first, partial(0.54), ["new"])
    assert [(c["name"], c["value"]) for c in again["checks"]] == [("new: wall", 0.54)]
    assert [m["created"] for m in again["merged"]] == ["run 0.54"]
