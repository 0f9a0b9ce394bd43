"""Extracting and running the shell examples of README.md and docs/ (see test_docs.py).

The examples are split over a few test files (``test_examples_<n>.py``) so that pytest-xdist,
which keeps each file on one worker, runs them on every core.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
RUNNABLE = {"bash", "console", "sh", "shell"}


def blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            language, body = match.group(1), match.group(2)
            if language in RUNNABLE:
                line = text.count("\n", 0, match.start()) + 1
                found.append((str(page.relative_to(ROOT)), line, language, body))
    return found


def script_of(language: str, body: str) -> str:
    if language != "console":
        return body
    commands: list[str] = []
    continuing = False
    for line in body.splitlines():
        if line.startswith("$ ") or continuing:
            command = line[2:] if line.startswith("$ ") and not continuing else line
            commands.append(command)
            continuing = command.rstrip().endswith("\\")
    return "\n".join(commands) + "\n"


GROUPS = 3


#: The pages whose examples ``make test`` runs: what a newcomer runs first. The examples of
#: the other pages (one real command each, most of them a few seconds) run in
#: ``make test-slow``, which CI runs too (docs/development.md).
FIRST_READ = {"README.md", "docs/getting-started.md"}


def group(n: int) -> list[Any]:
    """The examples of test file ``n`` as pytest parameters: whole pages, dealt out in turn."""
    pages = sorted({page for page, _, _, _ in blocks()})
    mine = {page for i, page in enumerate(pages) if i % GROUPS == n}
    return [
        pytest.param(*b, id=f"{b[0]}:{b[1]}", marks=() if b[0] in FIRST_READ else (pytest.mark.slow,))
        for b in blocks()
        if b[0] in mine
    ]


def run_example(tmp_path: Path, page: str, line: int, language: str, body: str) -> None:
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    (tmp_path / "models").symlink_to(ROOT / "models")  # read-only use: as from the repository's root
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MODELROUTER_CONFIG", None)
    script = "set -euo pipefail\n" + script_of(language, body)
    # Output to files, not pipes, and the example in a session of its own: a step failing
    # after a server was started in the background ends the script, and that server, still
    # holding the pipes, would keep the test waiting; whatever is left is killed.
    with (tmp_path / ".stderr").open("w+") as errors:
        process = subprocess.Popen(
            ["bash", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=errors,
            start_new_session=True,
        )  # fmt: skip
        try:
            code = process.wait(timeout=100)
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        errors.seek(0)
        stderr = errors.read()
    assert code == 0, f"{page}:{line} failed ({code}):\n{script}\n{stderr[-3000:]}"
