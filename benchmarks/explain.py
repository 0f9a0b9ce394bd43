"""The ``predict --explain`` scenarios of ``make bench`` (:mod:`benchmarks.run`) and their goals.

    .venv/bin/python -m benchmarks.explain [--rows 5000] [--repeats 2]
    make bench-explain    # these groups alone, without the rest of make bench

Groups:

- explain: the naive shap script (``benchmarks/naive_shap.py``: ``joblib.load``,
  ``read_parquet``, ``shap.TreeExplainer(model).shap_values(X)`` on the whole frame) against
  ``predict --explain -t sklearn`` with its defaults (both cores), on the first
  ``--explain-rows`` rows (5,000) of the benchmark data with the benchmark forest. Goals: ≥ 3×
  its rows/s at ≤ 0.5× its peak RSS.
- explain-boosters: the XGBoost and LightGBM models of :mod:`benchmarks.boosters` on the same
  rows: the naive contribution script (``benchmarks/naive_contribs.py``) against
  ``predict --explain -t xgboost`` / ``-t lightgbm``. Goal: ≤ 1.2× its wall time. Not on the
  1M-row fixture: at the forest's size (100 trees per class, depth 10) the libraries' exact
  contributions cost ~6 ms of CPU per row (10,000 rows: 58 s of CPU for either library's own
  call), so 1M rows would be ~1.6 CPU-hours per run.

Every ``--explain`` output is compared with its reference after the group ran
(:func:`check_explanations`): the same ids in order and, per row, every contribution of the
explained class within 1e-5 of shap's (the forest) or of the library's own (the boosters,
with the same predicted class and base value). The fraction of rows that match is the
scenario's ``agreement``; ``agrees_with`` names the reference once compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.fixtures import DEFAULT_DATA_DIR, FEATURES, ID_COLUMN, Fixtures, build_fixtures
from benchmarks.run import (
    HERE,
    Check,
    Log,
    Measurer,
    Scenario,
    _ratio,
    render_checks,
    render_table,
    run_group,
)

__all__ = ["EXPLAIN_ROWS", "check_explanations", "explain_checks", "explain_groups", "main"]

#: Rows of the forest scenario: the naive script explains ~45 rows/s on 2 cores.
EXPLAIN_ROWS = 5_000
#: Largest difference from the reference, per contribution (docs/specification.md §13).
TOLERANCE = 1e-5
RF_NAIVE, RF_OURS = "baseline-rf-shap", "modelrouter-rf-explain"


def _booster_keys(library: str) -> tuple[str, str]:
    return f"baseline-{library}-contribs", f"modelrouter-{library}-explain"


def explain_groups(
    head: Fixtures | None, out: Path, modelrouter: Sequence[str], native: dict[str, Path]
) -> dict[str, list[Scenario]]:
    """The two groups; ``head``: their fixture (None: skipped), ``native``: library →
    booster file (:func:`benchmarks.boosters.booster_models`)."""
    py = sys.executable

    def ours(key: str, desc: str, data: Fixtures, kind: str, model: Path) -> Scenario:
        output = out / f"{key}.parquet"
        command = [*modelrouter, "predict", str(data.data), "-o", str(output), "-t", kind, "-m", str(model)]
        return Scenario(key, desc, [*command, "-k", ID_COLUMN, "-q", "--explain"], data.rows, output=output)

    n = f"{head.rows:,}" if head is not None else "0"
    if head is None:
        naive = Scenario(RF_NAIVE, "baseline: shap.TreeExplainer RF", [], 0, skipped="--explain-rows 0")
        mine = Scenario(RF_OURS, "modelrouter RF --explain", [], 0, skipped="--explain-rows 0")
    else:
        output = out / f"{RF_NAIVE}.npy"
        command = [py, str(HERE / "naive_shap.py"), str(head.rf.pickle), str(head.data), str(output)]
        naive = Scenario(RF_NAIVE, f"baseline: shap.TreeExplainer RF @{n}", command, head.rows, output=output)
        mine = ours(RF_OURS, f"modelrouter RF --explain @{n}", head, "sklearn", head.rf.pickle)
    mine.reference = naive.key

    boosters: list[Scenario] = []
    for library in ("xgboost", "lightgbm"):
        base_key, our_key = _booster_keys(library)
        base_desc, our_desc = (
            f"baseline: {library} contributions @{n}",
            f"modelrouter {library} --explain @{n}",
        )
        if head is not None and library in native:
            output = out / f"{base_key}.parquet"
            command = [py, str(HERE / "naive_contribs.py"), str(native[library]), str(head.data), str(output)]
            base = Scenario(base_key, base_desc, command, head.rows, output=output)
            mine_b = ours(our_key, our_desc, head, library, native[library])
        else:
            base, mine_b = Scenario(base_key, base_desc, [], 0), Scenario(our_key, our_desc, [], 0)
            base.skipped = mine_b.skipped = "--explain-rows 0" if head is None else f"{library} not installed"
        mine_b.reference = base.key
        boosters += [base, mine_b]
    return {"explain": [naive, mine], "explain-boosters": boosters}


def check_explanations(group: Sequence[Scenario], scenarios: dict[str, Scenario], log: Log) -> None:
    """Compare each ``--explain`` output of ``group`` with its reference's (see the module)."""
    for scenario in group:
        if not scenario.key.endswith("-explain") or not scenario.ok or scenario.reference is None:
            continue
        ref = scenarios[scenario.reference]
        if not ref.ok or ref.output is None or scenario.output is None:
            continue
        try:
            agreement, largest = _compare(scenario.output, ref.output, scenario.rows)
        except (OSError, KeyError, ValueError, IndexError) as exc:
            scenario.error = f"cannot compare {scenario.output} with {ref.output}: {exc}"
            continue
        scenario.agrees_with, scenario.agreement = ref.key, agreement
        log(
            f"{scenario.key}: {agreement:.2%} of rows within {TOLERANCE:g} of {ref.key} "
            f"(largest difference {largest:.1e})"
        )


def _compare(mine_path: Path, ref_path: Path, rows: int) -> tuple[float, float]:
    """(fraction of rows that match, largest difference of a contribution)."""
    import numpy as np
    import pyarrow.parquet as pq

    mine = pq.read_table(mine_path)
    if mine.num_rows != rows:
        raise ValueError(f"the output has {mine.num_rows:,} rows, expected {rows:,}")
    ids = mine[ID_COLUMN].to_numpy()
    contributions = np.column_stack([mine[f"contrib_{c}"].to_numpy() for c in FEATURES])
    same = np.ones(rows, dtype=bool)
    if ref_path.suffix == ".npy":  # shap: every class, (rows, features, classes) or per class
        values: Any = np.load(ref_path)
        if values.shape[-1] == len(FEATURES):
            values = np.moveaxis(values, 0, -1)
        # The fixtures' classes are 0, 1, 2: a class is its own index.
        expected = values[np.arange(rows), :, mine["explained_class"].to_numpy().astype(np.int64)]
        same &= ids == np.arange(rows)  # the head of the fixture: ids 0..rows-1 in order
    else:
        theirs = pq.read_table(ref_path)
        expected = np.column_stack(
            [theirs["contrib_base"].to_numpy(), *(theirs[f"contrib_{c}"].to_numpy() for c in FEATURES)]
        )
        contributions = np.column_stack([mine["contrib_base"].to_numpy(), contributions])
        same &= ids == theirs[ID_COLUMN].to_numpy()
        same &= mine["prediction"].to_numpy().astype(np.int64) == theirs["prediction"].to_numpy()
    difference = np.abs(contributions - expected).max(axis=1)
    same &= difference <= TOLERANCE
    return float(same.mean()), float(difference.max())


def explain_checks(s: dict[str, Scenario]) -> list[Check]:
    """The goals: the forest ≥ 3× the naive shap script's rows/s at ≤ 0.5× its peak RSS, the
    boosters ≤ 1.2× their own contribution call's wall time, every row exact. Only those of
    the scenarios in ``s``."""

    def check(name: str, ours: str, value: Any, op: Any, limit: float) -> Check | None:
        if ours not in s:
            return None
        a, b = s[ours], s[s[ours].reference or ""]
        return Check(
            name, value(a, b), op, limit, note=a.skipped or b.skipped or "", broken=bool(a.error or b.error)
        )

    checks: list[Check | None] = [
        check(
            "RF --explain: rows/s vs naive shap script",
            RF_OURS,
            lambda a, b: _ratio(a.rows_per_s, b.rows_per_s),
            ">=",
            3.0,
        ),
        check(
            "RF --explain: peak RSS vs naive shap script",
            RF_OURS,
            lambda a, b: _ratio(a.rss_mib, b.rss_mib),
            "<=",
            0.5,
        ),
    ]
    for library, call in (("xgboost", "pred_contribs"), ("lightgbm", "pred_contrib")):
        checks.append(
            check(
                f"{library} --explain: wall vs its own {call} script",
                _booster_keys(library)[1],
                lambda a, b: _ratio(a.wall_s, b.wall_s),
                "<=",
                1.2,
            )
        )
    explained = [x for x in s.values() if x.key.endswith("-explain")]
    picked = [c for c in checks if c is not None]
    picked.append(
        Check(
            f"--explain: rows within {TOLERANCE:g} of the reference (fraction)",
            min((x.agreement for x in explained if x.agreement is not None), default=None),
            ">=",
            1.0,
            unit="",
            broken=any(x.error for x in explained),
        )
    )
    return picked


def main(argv: Sequence[str] | None = None) -> int:
    """The explain groups alone (``make bench-explain``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.explain", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=EXPLAIN_ROWS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="fixture cache folder")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from benchmarks.boosters import booster_models

    head = build_fixtures(args.rows, args.data_dir, log)
    modelrouter = [str(Path(sys.executable).parent / "modelrouter")]
    with tempfile.TemporaryDirectory(prefix="modelrouter-bench-") as scratch:
        measure = Measurer(Measurer.pick("auto"), Path(scratch))
        groups = explain_groups(head, Path(scratch), modelrouter, booster_models(head.rf.pickle.parent))
        scenarios = {x.key: x for group in groups.values() for x in group}
        for name, group in groups.items():
            run_group(name, group, args.repeats, measure, log)
            check_explanations(group, scenarios, log)
    print(render_table(scenarios))
    print(render_checks(explain_checks(scenarios)))
    return 0 if not any(x.error for x in scenarios.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
