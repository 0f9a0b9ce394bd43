"""Edge cases found in review: each one failed before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tests.waiting import all_threads_asleep, unread_bytes, wait_until

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_cli(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env={**base, **(env or {})},
        cwd=cwd, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def string_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier with string labels on two features a, b (rejects NaN, like most models)."""
    path = tmp_path_factory.mktemp("model") / "str.pkl"
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 0, 1, 0]})
    joblib.dump(LogisticRegression().fit(frame, ["no", "yes", "no", "yes"]), path)
    return path


def test_chunk_with_every_row_rejected_keeps_string_label_type(tmp_path: Path, string_model: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n3,\n1,1\n")
    out = tmp_path / "out.csv"
    result = run_cli(
        "predict",
        tmp_path / "in.csv",
        "-m",
        string_model,
        "-o",
        out,
        "--on-error",
        "skip",
        "--chunk-size",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(out)["prediction"].tolist() == ["no"]
    assert pd.read_csv(tmp_path / "out.rejects.csv")["row"].tolist() == [1]


def test_predict_proba_keeping_a_column_named_prediction(tmp_path: Path, string_model: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b,prediction\n1,2,x\n")
    result = run_cli("predict-proba", tmp_path / "in.csv", "-m", string_model, "--keep-all", "-o", "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].replace('"', "") == "a,b,prediction,proba_no,proba_yes"


def test_header_only_csv_without_newline(tmp_path: Path, string_model: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b")
    result = run_cli("predict", tmp_path / "in.csv", "-m", string_model, "-o", "-", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.replace('"', "") == "prediction\n"


def test_failed_run_to_stdout_prints_nothing(tmp_path: Path, string_model: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,x\n")
    result = run_cli("predict", tmp_path / "in.csv", "-m", string_model, "-o", "-")
    assert result.returncode == 3
    assert result.stdout == ""


def test_missing_column_error_lists_the_real_columns(tmp_path: Path) -> None:
    pd.DataFrame({"Alcohol": [1.0], "id": [1]}).to_parquet(tmp_path / "in.parquet")
    result = run_cli("predict", tmp_path / "in.parquet", "-o", tmp_path / "o.parquet")
    assert result.returncode == 3
    assert "(input has: 'Alcohol', 'id')" in result.stderr


def test_dataset_outputs_that_would_collide_are_refused(tmp_path: Path, string_model: Path) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_csv(data / "a.csv", index=False)
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_parquet(data / "a.parquet")
    result = run_cli("predict", data, "-m", string_model, "--output-format", "csv")
    assert (
        result.returncode == 2
    )  # docs/specification.md §2: outputs colliding with each other are a usage error
    assert "both" in result.stderr and "a.csv" in result.stderr and "a.parquet" in result.stderr
    assert not (tmp_path / "ds.predictions" / "_SUCCESS").exists()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_glob_and_dot_inputs_write_beside_and_rerun_cleanly(tmp_path: Path, string_model: Path) -> None:
    data = tmp_path / "g"
    (data / "sub").mkdir(parents=True)
    for name in ("x.csv", "sub/y.csv"):
        pd.DataFrame({"a": [1.0, 3.0], "b": [0.0, 1.0]}).to_csv(data / name, index=False)
    for _ in range(2):  # a rerun must not pick up its own outputs
        result = run_cli("predict", f"{data}/**/*.csv", "-m", string_model, "-q")
        assert result.returncode == 0, result.stderr
    shown = sorted(p.name for p in (tmp_path / "g.predictions").iterdir() if not p.name.startswith("."))
    assert shown == ["_SUCCESS", "sub", "x.csv"]  # (hidden: the CSV outputs' provenance sidecars)
    result = run_cli("predict", ".", "-m", string_model, "-o", "out", "-q", cwd=data)
    assert result.returncode == 0, result.stderr
    result = run_cli("predict", ".", "-m", string_model, "-o", "out", "-q", cwd=data)
    assert result.returncode == 0, result.stderr  # out/ is inside the input folder: skipped
    assert sorted(p.name for p in (data / "out").iterdir() if not p.name.startswith(".")) == [
        "_SUCCESS",
        "sub",
        "x.csv",
    ]


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_model_path_from_the_environment_alone(tmp_path: Path, string_model: Path) -> None:
    config = tmp_path / "only.toml"
    config.write_text(f'[sklearn]\npath = "{string_model}"\n')
    (tmp_path / "in.csv").write_text("a,b\n1,1\n")
    env = {"MODELROUTER_ONNX_PATH": str(ROOT / "models" / "classifier.onnx")}
    result = run_cli("predict", tmp_path / "in.csv", "-c", config, "-o", "-", "-q", env=env)
    assert result.returncode == 0, result.stderr
    models = run_cli("models", "-c", config, "--json", env=env)
    assert models.returncode == 0, models.stderr
    assert '"onnx"' in models.stdout


def test_sigterm_while_stdin_stalls(tmp_path: Path, string_model: Path) -> None:
    """The main thread is stuck in pyarrow waiting for stdin: the watchdog still ends the run."""
    import signal
    import time

    out = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    process = subprocess.Popen(
        [str(MODELROUTER), "predict", "-", "-m", str(string_model), "-o", str(out)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(b"a,b\n1,1\n2,0\n")
    process.stdin.flush()  # and then nothing more: the producer has stalled
    stdin = process.stdin.fileno()

    def stuck_on_stdin() -> bool:  # the run took every byte and waits for more, doing nothing else
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        return unread_bytes(stdin) == 0 and all_threads_asleep(process.pid)

    wait_until(stuck_on_stdin, "the run waiting on stdin")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=15)
    elapsed = time.monotonic() - started
    process.stdin.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert code == 143
    assert elapsed < 6
    assert "interrupted by SIGTERM" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_reader_of_stdout_going_away_stops_quietly(tmp_path: Path) -> None:
    """`modelrouter predict … -o - | head -1`: exit 141 (as SIGPIPE would), no error line."""
    frame = pd.concat([pd.read_csv(ROOT / "sample_data" / "wine.csv")] * 300, ignore_index=True)
    frame.to_csv(tmp_path / "in.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    command = [str(MODELROUTER), "predict", str(tmp_path / "in.csv"), "-t", "onnx", "-o", "-"]
    process = subprocess.Popen(
        [*command, "--chunk-size", "100"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().strip() == b"prediction"
    process.stdout.close()
    code = process.wait(timeout=30)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert code == 141
    assert "error" not in stderr


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_models_command_table_and_json(tmp_path: Path) -> None:
    table = run_cli("models")
    assert table.returncode == 0, table.stderr
    assert table.stderr == ""  # the table is the command's product: stdout (docs/specification.md §2)
    for fact in (
        "sklearn (default)",
        "onnx",
        "skops",
        "classifier.pkl",
        "pinned",
        "pool size",
        "od280/od315",
    ):
        assert fact in table.stdout
    assert "…" not in table.stdout
    as_json = run_cli("models", "--json")
    import json

    described = json.loads(as_json.stdout)
    assert [m["model_type"] for m in described["models"]] == ["sklearn", "onnx", "skops"]
    assert all(m["loads"] and m["pinned"] for m in described["models"])
    assert {m["format"] for m in described["models"]} == {"pickle", "onnx", "skops"}
    # A configured model that does not load: reported, and the command exits 4.
    config = tmp_path / "broken.toml"
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    config.write_text('[onnx]\npath = "bad.onnx"\n')
    broken = run_cli("models", "-c", config)
    assert broken.returncode == 4
    assert "cannot load as an ONNX model" in broken.stderr


def test_version_and_help_go_to_stdout() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"modelrouter {version('modelrouter')}\n",
        "",
    )
    helped = run_cli("predict", "--help")
    assert helped.returncode == 0
    assert "--on-error" in helped.stdout and "Example: modelrouter predict" in helped.stdout
