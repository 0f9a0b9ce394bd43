"""Add scenarios measured by a partial run (``benchmarks.run --groups``) to a whole run's results.

    python -m benchmarks.merge docs/benchmarks/latest.json PARTIAL.json KEY [KEY ...]

For a scenario added to the benchmark when a whole ``make bench`` cannot be run (a busy
shared machine would skew every other figure): the partial run measures the new scenarios
alternately with their baselines, and this copies, unchanged, each named scenario (its
ratios are to that run's baselines, the figures to read) and the partial run's checks that
the whole result does not have yet, then records the merge (``merged``: date, load
average, keys, and the wall ratios of the partial run's other scenarios), which the
performance page states. The next whole ``make bench`` replaces
it all. The file is rewritten in place.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["merge"]

_AGREEMENT = "outputs agree with the baseline's (fraction of rows)"


def merge(whole: dict[str, Any], partial: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``whole`` with ``partial``'s scenarios ``keys`` (placed after the scenario that precedes
    each in the partial run) and its new checks."""
    found = partial["scenarios"]
    for key in keys:
        scenario = found.get(key)
        if scenario is None or scenario.get("skipped") or scenario.get("error") or not scenario.get("runs"):
            raise ValueError(f"{key}: not measured in the partial run")
    scenarios = dict(whole["scenarios"])
    order = list(found)
    for key in keys:
        scenarios.pop(key, None)
        before = [k for k in order[: order.index(key)] if k in scenarios]
        at = list(scenarios).index(before[-1]) + 1 if before else len(scenarios)
        items = list(scenarios.items())
        items.insert(at, (key, found[key]))
        scenarios = dict(items)
    # Checks an earlier merge of these scenarios added are that merge's: replaced, not kept.
    replaced = {
        name
        for m in whole.get("merged", [])
        if set(m["scenarios"]) & set(keys)
        for name in m.get("checks", [])
    }
    kept = [c for c in whole["checks"] if c["name"] not in replaced]
    known = {c["name"] for c in kept}
    added = [c for c in partial["checks"] if c["name"] not in known and c["value"] is not None]
    checks = kept + added
    agreements = [s["agreement"] for s in scenarios.values() if s.get("agreement") is not None]
    for check in checks:
        if check["name"] == _AGREEMENT and agreements:
            check["value"] = min(agreements)
            check["status"] = "PASS" if check["value"] >= check["limit"] else "FAIL"
    merged = [
        *[m for m in whole.get("merged", []) if not set(m["scenarios"]) & set(keys)],
        {
            "created": partial["created"],
            "loadavg_before": partial.get("loadavg_before"),
            "scenarios": keys,
            "checks": [c["name"] for c in added],
            # The same run's other ratios: what a busy machine did to the committed ones.
            "same_run": {
                k: s["wall_ratio"]
                for k, s in found.items()
                if k not in keys and s.get("wall_ratio") is not None
            },
        },
    ]
    return {**whole, "scenarios": scenarios, "checks": checks, "merged": merged}


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    target, partial, keys = Path(argv[1]), Path(argv[2]), argv[3:]
    result = merge(json.loads(target.read_text(encoding="utf-8")), json.loads(partial.read_text()), keys)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
