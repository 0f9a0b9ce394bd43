"""Where modelrouter's fixed cost goes: imports by package, model load, first chunk.

Two sources, both from real runs of the real command:

- ``python -X importtime`` of the run (one extra run per scenario, not timed otherwise):
  the self time of every module imported, summed by top-level package (``modelrouter.cli``
  apart from the library), so a new heavy import shows up by name;
- the run's ``--stats-json``: ``wall_seconds`` is the run from options parsed to commit,
  ``load_seconds`` its part until the first model instance is ready,
  ``first_chunk_seconds`` until the first chunk is written. The process's wall time minus
  ``wall_seconds`` is the interpreter, the imports and option parsing before the run.
"""

from __future__ import annotations

import collections
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["imports_by_package", "phases", "render_fixed_cost"]

#: Packages shown by name in the table; the rest are summed as "other".
SHOWN = 7


def _package(module: str) -> str:
    if module.startswith("modelrouter.cli"):
        return "modelrouter.cli"
    return module.split(".", maxsplit=1)[0]


def imports_by_package(command: Sequence[str], cwd: str | None = None) -> dict[str, float]:
    """Seconds of import (self time) per top-level package while ``command`` runs.

    ``command`` is the modelrouter console script and its arguments; it is run as
    ``python -X importtime`` with the script's entry point, so the same imports happen.
    """
    code = (
        "import sys\nsys.argv = ['modelrouter', *sys.argv[1:]]\n"
        "from modelrouter.cli.entry import main\nmain()"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *command[1:]],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: collections.Counter[str] = collections.Counter()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line.split("|")
        if len(parts) != 3:
            continue
        try:
            self_us = int(parts[0].split(":", 1)[1])
        except ValueError:
            continue
        totals[_package(parts[2].strip())] += self_us
    return {name: us / 1e6 for name, us in totals.most_common()}


def phases(wall_s: Sequence[float], summaries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Median seconds of each phase of a run, from its wall times and ``--stats-json`` summaries."""
    pairs = list(zip(wall_s, summaries, strict=False))
    if not pairs:
        return {}

    def median(values: list[float]) -> float:
        return statistics.median(values)

    before = median([w - float(s["wall_seconds"]) for w, s in pairs])
    load = median([float(s["load_seconds"]) for _, s in pairs])
    first = median([float(s["first_chunk_seconds"]) - float(s["load_seconds"]) for _, s in pairs])
    total = median([w for w, _ in pairs])
    return {
        "start-up + imports": before,
        "model load": load,
        "first chunk": max(0.0, first),
        "rest": max(0.0, total - before - load - max(0.0, first)),
        "total": total,
    }


def render_fixed_cost(rows: Mapping[str, tuple[dict[str, float], dict[str, float]]]) -> str:
    """One table: a column per scenario; phases, then the imports by package."""
    names = list(rows)
    packages: collections.Counter[str] = collections.Counter()
    for _, imports in rows.values():
        packages.update(imports)
    shown = [p for p, _ in packages.most_common(SHOWN)]
    lines: list[tuple[str, list[str]]] = []
    for phase in ("start-up + imports", "model load", "first chunk", "rest", "total"):
        lines.append((phase, [_s(rows[n][0].get(phase)) for n in names]))
    lines.append(("imports (importtime, self s):", ["" for _ in names]))
    for package in shown:
        lines.append((f"  {package}", [_s(rows[n][1].get(package)) for n in names]))
    lines.append(
        (
            "  other",
            [_s(sum(v for k, v in rows[n][1].items() if k not in shown)) for n in names],
        )
    )
    lines.append(("  all imports", [_s(sum(rows[n][1].values())) for n in names]))
    width = max(len(label) for label, _ in lines)
    widths = [max(len(n), 6) for n in names]
    out = [" " * width + "  " + "  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    for label, cells in lines:
        out.append(
            label.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        )
    return "\n".join(line.rstrip() for line in out)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
