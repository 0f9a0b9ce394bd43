"""Process-wide settings belong to the command's entry point, never to the library."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from modelrouter.cli import process

ROOT = Path(__file__).resolve().parents[2]


class _FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.gnu_get_libc_version = object()

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.fixture
def fake_libc(monkeypatch: pytest.MonkeyPatch) -> _FakeLibc:
    libc = _FakeLibc()

    def cdll(name: Any) -> Any:
        return libc

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    return libc


def test_arena_cap_is_the_core_count(fake_libc: _FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    process.configure()
    assert fake_libc.calls == [(-8, 6), (-3, 1 << 20)]


def test_arena_cap_respects_the_users_setting(fake_libc: _FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "16")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    process.configure()
    assert fake_libc.calls == []


def test_arena_cap_skips_a_libc_that_is_not_glibc(
    fake_libc: _FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    del fake_libc.gnu_get_libc_version
    process.configure()
    assert fake_libc.calls == []


def test_the_library_changes_no_process_state(tmp_path: Path) -> None:
    """Scoring through the engine leaves the umask, the allocator choice and the signal
    handlers as the embedding program set them."""
    source = ROOT / "sample_data" / "wine.parquet"
    target = tmp_path / "out.parquet"
    code = f"""
import os, signal, sys
os.umask(0o027)
handler = lambda *a: None
signal.signal(signal.SIGTERM, handler)
from modelrouter.batch import RunOptions, score_file
summary = score_file(RunOptions(input={str(source)!r}, output={str(target)!r}, keep=["id"]))
assert summary.rows_out > 0
assert (os.stat({str(target)!r}).st_mode & 0o777) == 0o640, oct(os.stat({str(target)!r}).st_mode)
assert os.umask(0o027) == 0o027, "umask changed"
assert signal.getsignal(signal.SIGTERM) is handler, "SIGTERM handler replaced"
assert "ARROW_DEFAULT_MEMORY_POOL" not in os.environ, "allocator chosen by the library"
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(("setting", "hard"), [("", True), ("1", False), ("0", True)])
def test_hard_exit_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, setting: str, hard: bool) -> None:
    monkeypatch.setenv(process.NO_HARD_EXIT_ENV, setting)
    assert process.hard_exit_enabled() is hard


def test_without_hard_exit_the_interpreter_shuts_down_normally(tmp_path: Path) -> None:
    """atexit handlers run (coverage and profilers save their data there)."""
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('x'))\n"
        "sys.argv = ['modelrouter', 'models', '--json']\n"
        "from modelrouter.cli import entry\n"
        "entry.main()\n"
    )
    env = {**os.environ, process.NO_HARD_EXIT_ENV: "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert marker.exists()
