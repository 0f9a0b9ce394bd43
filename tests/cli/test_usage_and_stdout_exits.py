"""Cases that used to end in exit 1 ("internal error") and are the user's or the system's:
a NaN timeout, a malformed or unreachable Dask scheduler, and a standard output that is
closed or whose reader left. A closed stdout is never an internal error, for any command.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SAMPLE = ROOT / "sample_data" / "wine.csv"
EXIT_USAGE, EXIT_OUTPUT, EXIT_BROKEN_PIPE = 2, 5, 141


def environment() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    return env


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_serve_timeout_nan_is_a_usage_error(tmp_path: Path) -> None:
    result = run("serve", "--timeout", "nan", "--port", "0", cwd=tmp_path, timeout=60)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "--timeout" in result.stderr and "nan" in result.stderr


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "ds"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.csv")
    return folder


@pytest.mark.parametrize("address", ["not a url", "tcp://host-without-port", "foo://127.0.0.1:8786"])
def test_malformed_scheduler_is_a_usage_error(dataset: Path, tmp_path: Path, address: str) -> None:
    result = run(
        "predict", dataset, "-o", tmp_path / "out", "--engine", "dask", "--scheduler", address, cwd=tmp_path
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "--scheduler" in result.stderr and address in result.stderr
    assert not (tmp_path / "out").exists()


# Slow (about 7 s, tests/tiers.py): make test checks --scheduler through the usage test above.
@pytest.mark.slow
def test_unreachable_scheduler_fails_quickly_naming_it(dataset: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.monotonic()
    result = run(
        "predict", dataset, "-o", tmp_path / "out", "--engine", "dask", "--scheduler", address, cwd=tmp_path
    )
    elapsed = time.monotonic() - started
    assert result.returncode == EXIT_OUTPUT, result.stderr
    assert result.stderr.startswith("error: ") and address in result.stderr and "scheduler" in result.stderr
    assert elapsed < 25, elapsed  # Dask's own default waited 30 s, then exit 1
    assert not list((tmp_path / "out").glob("*.csv")) if (tmp_path / "out").exists() else True


PRODUCT_COMMANDS = [
    ["models"],
    ["models", "--json"],
    ["inspect", str(ROOT / "models" / "classifier.pkl")],
    ["compare", str(SAMPLE)],
    ["predict", str(SAMPLE), "-o", "-"],
]


@pytest.mark.matrix
@pytest.mark.parametrize("args", PRODUCT_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_closed_stdout_is_an_output_error(tmp_path: Path, args: list[str]) -> None:
    command = " ".join(f"'{a}'" for a in [str(MODELROUTER), *args])
    result = subprocess.run(
        ["sh", "-c", f"exec {command} >&-"], capture_output=False, stderr=subprocess.PIPE, text=True,
        env=environment(), cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == EXIT_OUTPUT, result.stderr
    assert result.stderr.startswith("error: <stdout>"), result.stderr
    assert "internal error" not in result.stderr


@pytest.mark.matrix
@pytest.mark.parametrize("args", PRODUCT_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_reader_that_left_is_a_broken_pipe_not_an_internal_error(tmp_path: Path, args: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written (`| head -0`)
    try:
        result = subprocess.run(
            [str(MODELROUTER), *args], stdout=write_end, stderr=subprocess.PIPE, text=True,
            env=environment(), cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.returncode == EXIT_BROKEN_PIPE, result.stderr
    assert "error" not in result.stderr
