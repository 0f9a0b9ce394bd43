"""Issue 16: what a new user tripped over — product tables on stdout, help text, failure
reports with the labels of a success, budget messages, --resume with nothing to do, -o DIR/,
and one source of truth for the default pool sizes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from modelrouter import ModelType
from modelrouter.config import default_pool_size, load_settings

MODELROUTER = Path(sys.executable).parent / "modelrouter"
ROOT = Path(__file__).resolve().parents[2]
WINE_CSV = ROOT / "sample_data" / "wine.csv"


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def run_on_terminal(*args: str, columns: int = 80) -> str:
    """Run with stdout on an 80-column pseudo-terminal, as a user at a shell sees it."""
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    env.update(COLUMNS=str(columns), LINES="50", TERM="dumb")
    proc = subprocess.Popen([str(MODELROUTER), *args], stdout=child, stderr=subprocess.DEVNULL, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO once the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


@pytest.mark.parametrize("command", [("models",), ("inspect", str(ROOT / "models" / "classifier.onnx"))])
def test_product_tables_go_to_stdout_and_pipe_into_grep(command: tuple[str, ...]) -> None:
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    digests = [line for line in result.stdout.splitlines() if line.startswith("sha256")]
    assert digests and all(len(line.split()[1]) == 64 for line in digests)


def test_digests_and_paths_are_never_broken_on_an_80_column_terminal() -> None:
    shown = run_on_terminal("models")
    for name in ("classifier.pkl", "classifier.onnx", "classifier.skops"):
        digest = load_settings().model(ModelType.from_path(name)).sha256
        assert digest is not None and digest in shown  # whole, on one line
        assert str(ROOT / "models" / name) in shown


def test_help_lists_exit_codes_and_never_cuts_descriptions() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    assert "..." not in top.stdout.split("Commands:")[1]
    assert "Exit codes: 0 ok" in top.stdout and "5" in top.stdout


@pytest.mark.parametrize(
    "command", ["predict", "predict-proba", "models", "convert", "compare", "inspect", "serve"]
)
def test_every_command_has_quiet_and_one_placeholder_style(command: str) -> None:
    helped = run_cli(command, "--help").stdout
    assert "-q, --quiet" in helped
    assert "range>" not in helped  # N / R / PATH placeholders, not Click's "<int range>"
    options = [line for line in helped.splitlines() if line.strip().startswith("-")]
    assert not any("<path>" in line for line in options)


def test_trust_is_accepted_by_predict() -> None:
    assert "--trust TYPE" in run_cli("predict", "--help").stdout


def test_model_type_completion_lists_the_backends() -> None:
    from modelrouter.cli.options import complete_model_type

    assert complete_model_type("") == ["sklearn", "onnx", "skops", "xgboost", "lightgbm"]
    assert complete_model_type("O") == ["onnx"]


def test_failed_run_reports_carry_the_labels_and_keys_of_a_success(tmp_path: Path) -> None:
    ok = run_cli(
        "predict", WINE_CSV, "-o", tmp_path / "ok.csv", "--stats-json", tmp_path / "ok.json",
        "--metrics-textfile", tmp_path / "ok.prom", "-q",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "bad.csv").write_text("id,alcohol\n1,2\n")  # feature columns missing
    failed = run_cli(
        "predict", tmp_path / "bad.csv", "-o", tmp_path / "bad.out.csv", "--stats-json",
        tmp_path / "bad.json", "--metrics-textfile", tmp_path / "bad.prom", "-q",
    )  # fmt: skip
    assert failed.returncode == 3
    success_labels = {line.split(" ")[0] for line in (tmp_path / "ok.prom").read_text().splitlines()}
    assert 'modelrouter_last_run_success{model_type="sklearn"}' in success_labels
    failure = (tmp_path / "bad.prom").read_text()
    assert 'modelrouter_last_run_success{model_type="sklearn"} 0' in failure
    assert 'modelrouter_last_run_exit_code{model_type="sklearn"} 3' in failure
    good, bad = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ok", "bad"))
    assert set(good["summary"]) <= set(bad["summary"])
    assert bad["summary"]["exit_code"] == 3
    assert "missing" in bad["summary"]["error"] and bad["summary"]["model_type"] == "sklearn"
    assert bad["summary"]["rows_out"] is None  # unknown, never a made-up count
    assert not (tmp_path / "bad.out.csv").exists()


def test_error_budget_message_shows_enough_digits(tmp_path: Path) -> None:
    rows = ["alcohol,malic_acid"] + [f"{i},1" for i in range(1, 100_001)]
    rows[5] = "x,1"  # one unconvertible value in 100,000 rows
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"alcohol": [1.0, 2, 3, 4], "malic_acid": [1.0, 0, 1, 0]})
    joblib.dump(LogisticRegression().fit(frame, [0, 1, 0, 1]), tmp_path / "m.pkl")
    result = run_cli(
        "predict", tmp_path / "in.csv", "-m", tmp_path / "m.pkl", "-o", tmp_path / "out.csv",
        "--on-error", "skip", "--max-error-rate", "0.000001", "-q",
    )  # fmt: skip
    assert result.returncode == 3
    assert "1 of 100,000 rows rejected (0.001%), above --max-error-rate 1e-06 (0.000%)" not in result.stderr
    assert "(0.0010%), above --max-error-rate 1e-06 (0.0001%)" in result.stderr


def test_resume_with_everything_done_loads_nothing(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    for name in ("a.csv", "b.csv"):
        (data / name).write_bytes(WINE_CSV.read_bytes())
    first = run_cli("predict", data, "-o", tmp_path / "out")
    assert first.returncode == 0, first.stderr
    # A model path that cannot load proves the second run never loads the model.
    again = run_cli("predict", data, "-o", tmp_path / "out", "--resume", "-m", tmp_path / "absent.pkl")
    assert again.returncode == 0, again.stderr
    assert "2 files skipped (output made from this very input), nothing to do" in again.stderr
    assert (tmp_path / "out" / "_SUCCESS").is_file()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_output_naming_an_existing_folder_gets_the_default_name(tmp_path: Path) -> None:
    (tmp_path / "scored").mkdir()
    for target in (tmp_path / "scored", f"{tmp_path / 'scored'}/"):
        result = run_cli("predict", WINE_CSV, "-o", target, "-q")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "scored" / "wine.predictions.csv").is_file()
    missing = run_cli("predict", WINE_CSV, "-o", f"{tmp_path / 'nowhere'}/", "-q")
    assert missing.returncode == 5 and "output folder does not exist" in missing.stderr


def test_default_pool_sizes_have_one_source_of_truth(tmp_path: Path) -> None:
    assert default_pool_size("onnx") == 1 and default_pool_size("sklearn") == 2
    config = tmp_path / "c.toml"
    config.write_text(
        f'[onnx]\npath = "{ROOT / "models" / "classifier.onnx"}"\n'
        f'[sklearn]\npath = "{ROOT / "models" / "classifier.pkl"}"\n'
    )
    settings = load_settings(config)
    assert settings.model("onnx").pool_size == 1
    assert settings.model("sklearn").pool_size == 2
