"""Running the real ``modelrouter`` command from a test, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["MODELROUTER", "run_modelrouter"]

#: The command installed beside this Python (the project's venv).
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_modelrouter(
    *args: str | Path, timeout: float = 90, cwd: Path | None = None, user_modules: bool = False
) -> subprocess.CompletedProcess[str]:
    """``modelrouter ARGS`` with no stdin, wide help output and no config from the
    environment; stdout and stderr captured as text. ``user_modules``: the repository root
    on ``PYTHONPATH``, so a pickle of a test estimator (``tests.misbehaving``…) loads, as a
    user's own estimator module would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    env["COLUMNS"] = "200"
    if user_modules:
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
