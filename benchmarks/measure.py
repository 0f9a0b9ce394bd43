"""Fallback timer for machines without ``/usr/bin/time``: run one command, record its cost.

    python benchmarks/measure.py RESULT.json -- COMMAND [ARG...]

Runs COMMAND (stdin/stdout/stderr inherited), then writes ``{"wall_s", "max_rss_kib", "user_s",
"sys_s", "exit"}`` to RESULT.json and exits with COMMAND's status. Wall time is
``time.perf_counter`` around the child; peak RSS is ``resource.getrusage(RUSAGE_CHILDREN)``,
which is per process tree of this wrapper, so one wrapper per measured command.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        print("usage: measure.py RESULT.json -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    result, command = args[0], args[2:]
    started = time.perf_counter()
    proc = subprocess.run(command)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss_kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    with open(result, "w", encoding="utf-8") as fh:
        json.dump(
            {
                "wall_s": wall,
                "max_rss_kib": int(rss_kib),
                "user_s": usage.ru_utime,
                "sys_s": usage.ru_stime,
                "exit": proc.returncode,
            },
            fh,
        )
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
