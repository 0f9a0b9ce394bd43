"""Running the installed ``modelrouter`` command in a subprocess and measuring its own peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODELROUTER", "Run", "run"]

MODELROUTER = Path(sys.executable).parent / "modelrouter"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float

    def __str__(self) -> str:
        return f"exit {self.code} in {self.seconds:.1f} s, {self.peak_rss_mib:.0f} MiB\n{self.stderr[-2000:]}"


# Linux carries a process's peak RSS across exec(), and a child forked (or vforked) from this
# big pytest process starts with pytest's. A small launcher is exec'd first; the command it
# spawns starts from the launcher's small image, and wait4 gives that command's own peak.
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as handle:
    handle.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run(
    args: list[str | Path],
    cwd: Path,
    stdin: Path | bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Run:
    """Run the command in ``cwd``; measure its own peak RSS (see _LAUNCHER).

    ``stdin``: a file to read from, bytes to send, or nothing (``/dev/null``).
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    environment.update(env or {})
    peak = cwd.parent / f".{cwd.name}.peak"
    command = [sys.executable, "-c", _LAUNCHER, str(peak), str(MODELROUTER), *map(str, args)]
    started = time.monotonic()
    try:
        if isinstance(stdin, bytes):
            proc = subprocess.run(
                command, cwd=cwd, env=environment, input=stdin, capture_output=True, timeout=timeout
            )
        else:
            with open(stdin if stdin is not None else os.devnull, "rb") as source:
                proc = subprocess.run(
                    command, cwd=cwd, env=environment, stdin=source, capture_output=True, timeout=timeout
                )
        seconds = time.monotonic() - started
        rss = int(peak.read_text()) / 1024
    finally:
        peak.unlink(missing_ok=True)
    stdout, stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    return Run(proc.returncode, stdout, stderr, seconds, rss)
