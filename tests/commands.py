"""Running the real ``modelrouter`` command from a test, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["MODELROUTER", "run_modelrouter"]

#: The command installed beside this Python (the project's venv).
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_modelrouter(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``modelrouter ARGS`` with no stdin, wide help output and no config from the
    environment; stdout and stderr captured as text."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
