"""Hostile-tester findings on the tools, config and serve, each through the real command.

Every test here failed before its fix: a model path that is a device or a pipe (read without
end, or waited on forever); an unknown ``default_model_type`` that named neither the file nor
the key; a found ``./modelrouter.toml`` in a folder others can write to (they could swap the
model its relative path names); ``compare``/``convert --sample`` errors that gave a row within
the chunk and no file name. The serve findings are cases of ``test_serve.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE_CSV = ROOT / "sample_data" / "wine.csv"
SHIPPED_PKL = ROOT / "models" / "classifier.pkl"


def run(
    *args: str | Path, cwd: Path | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    environment.update(env or {})
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# -- a model path that is not a regular file -----------------------------------------------------


@pytest.fixture
def fifo_model(tmp_path: Path) -> Path:
    fifo = tmp_path / "model.pkl"
    os.mkfifo(fifo)
    return fifo


def test_model_that_is_a_named_pipe_is_refused_not_waited_on(fifo_model: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    scored = run("predict", WINE_CSV, "-m", fifo_model, "-o", output, "--no-stats", timeout=30)
    assert scored.returncode == 4, scored.stderr
    assert scored.stderr == f"error: {fifo_model}: is a named pipe (FIFO), not a regular model file\n"
    assert not output.exists()
    inspected = run("inspect", fifo_model, timeout=30)
    assert inspected.returncode == 4
    assert inspected.stderr == f"error: {fifo_model}: is a named pipe (FIFO), not a regular model file\n"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_model_that_is_a_device_is_refused_not_read_without_end(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[onnx]\npath = "/dev/zero"\n')
    listed = run("models", "-c", config, timeout=30)
    assert listed.returncode == 4, listed.stderr
    assert "/dev/zero: is a character device, not a regular model file" in listed.stderr
    inspected = run("inspect", "-t", "onnx", "/dev/zero", timeout=30)
    assert inspected.returncode == 4
    assert inspected.stderr == "error: /dev/zero: is a character device, not a regular model file\n"


def test_data_file_to_inspect_that_is_a_pipe_says_so(tmp_path: Path) -> None:
    fifo = tmp_path / "scored.parquet"
    os.mkfifo(fifo)
    result = run("inspect", fifo, timeout=30)
    assert result.returncode == 3
    assert result.stderr == f"error: {fifo}: is a named pipe (FIFO), not a regular file\n"


# -- config: errors name the file and key; a found config's folder must be safe ------------------


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        (
            'default_model_type = "foo"\n',
            {},
            "c.toml: default_model_type: unknown model type 'foo'",
        ),
        (
            "",
            {"MODELROUTER_DEFAULT_MODEL_TYPE": "tf"},
            "c.toml: MODELROUTER_DEFAULT_MODEL_TYPE: unknown model type 'tf'",
        ),
    ],
)
def test_unknown_default_model_type_names_the_file_and_key(
    tmp_path: Path, toml: str, env: dict[str, str], expected: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'{toml}[sklearn]\npath = "{SHIPPED_PKL.as_posix()}"\n')
    result = run("models", "-c", config, env=env)
    assert result.returncode == 4
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr


@pytest.fixture
def shared_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "modelrouter.toml").write_text('[sklearn]\npath = "model.pkl"\n')
    (folder / "modelrouter.toml").chmod(0o644)
    (folder / "model.pkl").write_bytes(SHIPPED_PKL.read_bytes())
    return folder


@pytest.mark.matrix
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_found_config_in_a_folder_others_can_write_is_refused(shared_folder: Path, mode: int) -> None:
    # Anyone who can write to the folder can swap model.pkl (named relative to the config)
    # for their own pickle: a cron job started there would run their code.
    shared_folder.chmod(mode)
    result = run("models", cwd=shared_folder)
    assert result.returncode == 4
    assert result.stderr.startswith(f"error: modelrouter.toml: refusing a config file in {shared_folder}, ")
    assert f"writable by group or others (mode {mode:04o}" in result.stderr
    assert result.stdout == ""
    assert run("models", "-c", "modelrouter.toml", cwd=shared_folder).returncode == 0  # chosen: used


@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_found_config_in_a_private_or_sticky_folder_is_used(shared_folder: Path, mode: int) -> None:
    shared_folder.chmod(mode)
    result = run("models", cwd=shared_folder)
    assert result.returncode == 0, result.stderr
    assert "model.pkl" in result.stdout


# -- compare / convert: a bad value is reported like the batch commands report it -----------------


@pytest.fixture
def bad_row_100(tmp_path: Path) -> Path:
    lines = WINE_CSV.read_text().splitlines(keepends=True)
    header = lines[0].split(",")
    ash = header.index("ash")
    cells = lines[100].split(",")
    cells[ash] = "oops"
    lines[100] = ",".join(cells)
    path = tmp_path / "bad100.csv"
    path.write_text("".join(lines))
    return path


def test_compare_names_the_file_and_the_row_in_the_file_not_in_its_chunk(bad_row_100: Path) -> None:
    result = run("compare", bad_row_100, "-t", "sklearn", "-t", "onnx", "--chunk-size", "64")
    assert result.returncode == 3
    assert result.stderr == (
        f"error: {bad_row_100}: row 100: column 'ash': cannot convert 'oops' to float64"
        " (scoring with sklearn)\n"
    )
    assert result.stdout == ""


def test_convert_names_the_sample_file_of_a_bad_value(bad_row_100: Path, tmp_path: Path) -> None:
    output = tmp_path / "converted.onnx"
    result = run("convert", SHIPPED_PKL, "-o", output, "--sample", bad_row_100)
    assert result.returncode == 3
    assert f"error: {bad_row_100}: row 100: column 'ash': cannot convert 'oops' to float64" in result.stderr
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [bad_row_100]


def test_convert_refuses_boolean_class_labels_saying_what_to_do(tmp_path: Path) -> None:
    """skl2onnx writes False/True as 0/1: the file would answer other labels than the
    pickle, so convert refuses before converting (it used to blame onnxruntime)."""
    import joblib
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y.astype(bool))
    joblib.dump(model, tmp_path / "bool.pkl")
    pd.DataFrame(X).head(20).to_csv(tmp_path / "sample.csv", index=False)
    output = tmp_path / "bool.onnx"
    result = run("convert", tmp_path / "bool.pkl", "-o", output, "--sample", tmp_path / "sample.csv")
    assert result.returncode == 4, result.stderr
    assert "class labels are booleans (False, True)" in result.stderr
    assert "y.astype(int)" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()
