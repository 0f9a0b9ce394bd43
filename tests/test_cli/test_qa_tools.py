"""Hostile-tester findings on the tools, config and serve, each through the real command.

Every test here failed before its fix: a model path that is a device or a pipe (read without
end, or waited on forever), ...
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


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
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
