"""Every command that loads a model checks the pin that applies, the same way, before
anything is unpickled; skops trust granted to a pinned file is bound to its digest.

A "model" that writes a marker file when unpickled stands for any hostile pickle: the pin
must refuse it before it runs, in predict, inspect and convert alike.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.datasets import load_wine
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SAMPLE = ROOT / "sample_data" / "wine.csv"
SHIPPED_SKOPS = ROOT / "models" / "classifier.skops"
EXIT_MODEL = 4


class _Marker:
    """Unpickling this creates ``path``: code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )


@pytest.fixture
def pinned_hostile(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A config pinning the shipped pickle's digest at a path that holds a hostile pickle."""
    marker = tmp_path / "code-ran"
    hostile = tmp_path / "model.pkl"
    hostile.write_bytes(pickle.dumps(_Marker(marker)))
    good = hashlib.sha256((ROOT / "models" / "classifier.pkl").read_bytes()).hexdigest()
    config = tmp_path / "modelrouter.toml"
    config.write_text(f'[sklearn]\npath = "model.pkl"\nsha256 = "{good}"\n')
    return hostile, config, marker


@pytest.mark.matrix
@pytest.mark.parametrize("command", ["predict", "inspect", "convert"])
def test_a_config_pin_is_checked_before_unpickling_in_every_command(
    pinned_hostile: tuple[Path, Path, Path], tmp_path: Path, command: str
) -> None:
    hostile, config, marker = pinned_hostile
    out = tmp_path / ("out.onnx" if command == "convert" else "out.csv")
    commands: dict[str, list[str | Path]] = {
        "predict": ["predict", SAMPLE, "-c", config, "-o", out],
        "inspect": ["inspect", hostile, "-c", config],
        "convert": ["convert", hostile, "-c", config, "-o", out],
    }
    args = commands[command]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL, result.stderr
    assert "sha256" in result.stderr and "model.pkl" in result.stderr, result.stderr
    assert not marker.exists(), "the pinned-out pickle was unpickled"
    assert not out.exists()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_convert_sha256_option(tmp_path: Path) -> None:
    model = ROOT / "models" / "classifier.pkl"
    out = tmp_path / "c.onnx"
    wrong = "0" * 64
    result = run("convert", model, "-o", out, "--sha256", wrong, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL, result.stderr
    assert f"expected {wrong}" in result.stderr
    assert not out.exists()
    right = hashlib.sha256(model.read_bytes()).hexdigest()
    result = run("convert", model, "-o", out, "--sha256", right, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.exists()
    result = run("convert", model, "-o", out, "--sha256", "nothex", cwd=tmp_path)
    assert result.returncode == 2


@pytest.fixture
def other_tree_skops(tmp_path: Path) -> Path:
    """A skops file holding a decision tree (type sklearn.tree._tree.Tree), not ours."""
    frame, target = load_wine(return_X_y=True, as_frame=True)
    path = tmp_path / "other.skops"
    sio.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(frame, target), path)
    return path


@pytest.mark.matrix  # make test runs predict (tests/tiers.py)
@pytest.mark.parametrize("command", ["predict", "inspect", "convert"])
def test_builtin_skops_trust_does_not_extend_to_other_files(
    other_tree_skops: Path, tmp_path: Path, command: str
) -> None:
    out = tmp_path / "out.csv"
    args = {
        "predict": ("predict", SAMPLE, "-m", other_tree_skops, "-o", out),
        "inspect": ("inspect", other_tree_skops),
        "convert": ("convert", other_tree_skops, "-o", tmp_path / "o.onnx"),
    }[command]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL, result.stderr
    assert "sklearn.tree._tree.Tree" in result.stderr + result.stdout
    assert not out.exists() and not (tmp_path / "o.onnx").exists()
    if command != "predict":
        return
    # Trusted on purpose, it loads.
    result = run(
        "predict",
        SAMPLE,
        "-m",
        other_tree_skops,
        "-o",
        out,
        "--trust",
        "sklearn.tree._tree.Tree",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_builtin_skops_trust_still_covers_the_shipped_file_and_its_copies(tmp_path: Path) -> None:
    copy = tmp_path / "copy.skops"
    copy.write_bytes(SHIPPED_SKOPS.read_bytes())
    for model in (SHIPPED_SKOPS, copy):
        result = run("predict", SAMPLE, "-m", model, "-o", tmp_path / "out.csv", "--no-stats", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        result = run("inspect", model, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    result = run("predict", SAMPLE, "-t", "skops", "-o", tmp_path / "out.csv", "--no-stats", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
