"""A booster file checked in a child process is checked once per process and once per machine
(a cache entry per digest, listing the library versions it passed with); a cache that
cannot be written means checking every time, never an error (docs/security.md)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import pytest
import xgboost as xgb
from modelrouter import ModelType
from modelrouter.backends import backend_for, booster_probe

from tests.tools.test_native_model_files import MODELROUTER, booster_files


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return booster_files(tmp_path_factory.mktemp("boosters"))


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The child checks started in this process (where), each one run for real."""
    started: list[str] = []
    real: Callable[[ModelType, bytes, object], None] = booster_probe._check_in_child

    def counted(model_type: ModelType, payload: bytes, where: object) -> None:
        started.append(str(where))
        real(model_type, payload, where)

    monkeypatch.setattr(booster_probe, "_check_in_child", counted)
    monkeypatch.setattr(booster_probe, "_VERIFIED", {})
    return started


def _load(path: Path) -> None:
    kind = ModelType.XGBOOST if path.suffix in (".json", ".ubj") else ModelType.LIGHTGBM
    backend_for(kind).load(path, threads=1)


def test_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    env = booster_probe.CACHE_ENV
    assert booster_probe.cache_dir({env: str(tmp_path)}) == tmp_path
    assert booster_probe.cache_dir({env: "", "HOME": str(tmp_path)}) is None  # set and empty: off
    xdg = tmp_path / "xdg"
    assert booster_probe.cache_dir({"XDG_CACHE_HOME": str(xdg)}) == xdg / "modelrouter" / "verified-boosters"
    expected = tmp_path / ".cache" / "modelrouter" / "verified-boosters"
    assert booster_probe.cache_dir({"XDG_CACHE_HOME": "relative", "HOME": str(tmp_path)}) == expected
    assert booster_probe.cache_dir({"HOME": "relative"}) is None


def test_checked_once_per_process_then_once_per_machine_and_library_version(
    originals: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probes: list[str]
) -> None:
    monkeypatch.setenv(booster_probe.CACHE_ENV, str(tmp_path / "cache"))
    model = originals["json"]
    _load(model)
    _load(model)  # the same process: remembered
    assert probes == [str(model)]
    entry = tmp_path / "cache" / hashlib.sha256(model.read_bytes()).hexdigest()
    assert entry.read_text() == f"xgboost {xgb.__version__}\n"

    monkeypatch.setattr(booster_probe, "_VERIFIED", {})  # another process on this machine
    copy = tmp_path / "copy.json"  # the same bytes under another name: the same digest
    copy.write_bytes(model.read_bytes())
    _load(copy)
    assert probes == [str(model)]

    # Another library version checks the file again and adds its own line.
    booster_probe.verified_natively(ModelType.XGBOOST, model.read_bytes(), "next", "99.0")
    assert probes == [str(model), "next"]
    assert entry.read_text() == f"xgboost {xgb.__version__}\nxgboost 99.0\n"


def test_a_cached_file_is_not_checked_again_by_the_next_command(
    originals: dict[str, Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, booster_probe.CACHE_ENV: str(cache)}
    model = originals["txt"]
    entry = cache / hashlib.sha256(model.read_bytes()).hexdigest()
    first = subprocess.run(
        [str(MODELROUTER), "inspect", str(model)], capture_output=True, env=env, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert entry.read_text() == f"lightgbm {lgb.__version__}\n"
    before = entry.stat()
    second = subprocess.run(
        [str(MODELROUTER), "inspect", str(model)], capture_output=True, env=env, timeout=120
    )
    assert second.returncode == 0, second.stderr
    after = entry.stat()  # a new check rewrites the entry: another inode, another mtime
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert second.stdout == first.stdout


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_an_unwritable_cache_checks_every_time(
    originals: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probes: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(booster_probe.CACHE_ENV, str(blocker / "cache"))  # cannot be made, by anyone
    model = originals["txt"]
    _load(model)
    monkeypatch.setattr(booster_probe, "_VERIFIED", {})
    _load(model)
    assert probes == [str(model), str(model)]
    out = tmp_path / "out.csv"
    env = {**os.environ, booster_probe.CACHE_ENV: str(blocker / "cache")}
    done = subprocess.run(
        [str(MODELROUTER), "predict", str(originals["csv"]), "-m", str(model), "-o", str(out), "--no-stats"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(out.read_text().splitlines()) == 179


def test_a_damaged_cache_entry_is_checked_again_and_rewritten(
    originals: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probes: list[str]
) -> None:
    monkeypatch.setenv(booster_probe.CACHE_ENV, str(tmp_path))
    model = originals["json"]
    entry = tmp_path / hashlib.sha256(model.read_bytes()).hexdigest()
    entry.write_bytes(b"\xff\xfe garbage")
    _load(model)
    assert probes == [str(model)]
    assert entry.read_text() == f"xgboost {xgb.__version__}\n"
