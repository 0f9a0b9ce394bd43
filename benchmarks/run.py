"""Benchmark modelrouter against the naive pandas script and check issues 4 and 15's targets.

    .venv/bin/python -m benchmarks.run [--rows 1000000] [--repeats 3] [--big-rows 10000000] [--quick]
                                       [--small-rows 1000] [--rf-big-rows N] [--only GROUP,…]
    make bench            # BENCH_10M=1 make bench adds the 10M-row RF scenario (~3 minutes more)

Builds the fixtures (``benchmarks.fixtures``, cached in ``benchmarks/data/``), then runs every
scenario as a subprocess under ``/usr/bin/time -v`` (or, without it, under
``benchmarks/measure.py``), the members of a group alternately (A B C A B C ...) so that drift
on a noisy machine hits all of them alike. modelrouter runs with its default settings
(``-t TYPE -m MODEL -k id -q``, no ``--workers`` / ``--chunk-size``) except in the scaling group.

Groups:

- rf: the baseline script with the forest pickle; modelrouter ``-t sklearn`` and ``-t onnx``
  (the file ``convert`` writes, and a plain skl2onnx file: no metadata);
- logreg: the baseline with the logistic pipeline; a bare pyarrow read + write of the same
  columns (the I/O floor); modelrouter ``-t sklearn``, ``-t onnx`` and ``-t onnx`` on a plain
  skl2onnx file;
- scaling: modelrouter RF sklearn with ``--workers 1 --pool-size 1`` and with 2 / 2;
- boosters: XGBoost and LightGBM models of the forest's size (native files), the naive script
  with that library (``benchmarks/boosters.py``) vs modelrouter ``-t xgboost`` / ``-t lightgbm``;
- startup: ``modelrouter --help``, median of 5;
- big: modelrouter logreg sklearn on ``--big-rows`` rows, peak RSS, one run (not with --quick);
- small: a ``--small-rows`` file (1,000) for every model and type against the naive script on
  the same file, with a table of where the fixed cost goes (:mod:`benchmarks.fixedcost`);
- rf-big: RF sklearn and the naive script on ``--rf-big-rows`` rows (``BENCH_10M=1``: 10M),
  one run each: start-up amortised, the parallel scoring itself;
- postgres: the main fixture's rows as a table of a throw-away PostgreSQL server
  (``benchmarks/postgres.py``), scored with the logistic pipeline: the naive ``read_sql`` →
  ``predict`` → ``to_sql`` script (``benchmarks/baseline_sql.py``, one run) vs modelrouter
  table to table; ``psql \\copy`` to CSV + modelrouter on the CSV vs modelrouter table to
  Parquet. Skipped without the server binaries or the ``bench`` extra.
- explain, explain-boosters: ``predict --explain`` on ``--explain-rows`` rows (5,000): the
  forest against the naive shap script, the XGBoost / LightGBM models against their own
  contribution calls (:mod:`benchmarks.explain`).

``--only postgres,logreg`` (or ``--groups``) runs those groups only: the others' scenarios
are recorded as skipped and their checks SKIP (``benchmarks/merge.py`` adds a partial run's
new scenarios to a whole run's results).

Every modelrouter output is compared with the baseline's (row count, ids, predictions).
Prints a table (median wall, median peak RSS, rows/s, ratios) and the target checks, and writes
everything, with the machine, to ``benchmarks/results/latest.json``. Exit status: 0 when every
scenario ran and the outputs agree (whatever the targets say), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from benchmarks import postgres
from benchmarks.fixedcost import imports_by_package, phases, render_fixed_cost
from benchmarks.fixtures import DEFAULT_DATA_DIR, FEATURES, ID_COLUMN, Fixtures, build_fixtures, plain_onnx

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "latest.json"
TIME_BIN = Path("/usr/bin/time")
STARTUP_RUNS = 5
#: Groups whose modelrouter scenarios get a ``--before`` twin (the others would only lengthen the run).
TWINNED = ("startup", "small", "rf", "logreg", "rf-big")
#: Every group, in the order they run (``--only`` picks some).
GROUPS = (
    "startup", "small", "rf", "logreg", "scaling", "boosters", "big", "rf-big", "postgres", "explain",
    "explain-boosters",
)  # fmt: skip
#: The database scenarios' input table (in the run's own throw-away server).
PG_TABLE = "features"
#: Fraction of rows whose prediction must equal the baseline's (ONNX runs the forest in float32).
MIN_AGREEMENT = 0.999
PACKAGES = (
    "modelrouter",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "onnxruntime",
    "onnx",
    "skl2onnx",
    "xgboost",
    "lightgbm",
    "joblib",
    "threadpoolctl",
    "scipy",
)
#: Environment variables that change native thread pools; recorded with the machine.
THREAD_ENV = re.compile(r"^(OMP_|OPENBLAS_|MKL_|NVPL_|BLIS_|GOTO_|VECLIB_|NUMEXPR_|ORT_|KMP_)")

MeasureMethod = Literal["time", "rusage"]


class BenchError(RuntimeError):
    """A measured command failed."""


# ---------------------------------------------------------------------------------------------
# Measuring one command


@dataclass(frozen=True)
class Measurement:
    """One run of one command."""

    wall_s: float
    max_rss_kib: int
    user_s: float
    sys_s: float

    @property
    def rss_mib(self) -> float:
        return self.max_rss_kib / 1024

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall_s, 4),
            "max_rss_mib": round(self.rss_mib, 1),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
        }


def _parse_clock(text: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` → seconds."""
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_time_v(report: str) -> Measurement:
    """Parse GNU ``/usr/bin/time -v`` output."""
    fields: dict[str, str] = {}
    for line in report.splitlines():
        key, sep, value = line.strip().rpartition(": ")
        if sep:
            fields[key] = value
    try:
        return Measurement(
            wall_s=_parse_clock(fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"]),
            max_rss_kib=int(fields["Maximum resident set size (kbytes)"]),
            user_s=float(fields["User time (seconds)"]),
            sys_s=float(fields["System time (seconds)"]),
        )
    except (KeyError, ValueError) as exc:
        raise BenchError(f"cannot parse /usr/bin/time -v output ({exc}):\n{report}") from exc


class Measurer:
    """Runs commands under ``/usr/bin/time -v`` or the ``measure.py`` wrapper."""

    def __init__(self, method: MeasureMethod, scratch: Path) -> None:
        self.method = method
        self._report = scratch / "measure.txt"

    @staticmethod
    def pick(requested: str) -> MeasureMethod:
        if requested == "time" or (
            requested == "auto" and TIME_BIN.is_file() and os.access(TIME_BIN, os.X_OK)
        ):
            return "time"
        return "rusage"

    def describe(self) -> str:
        if self.method == "time":
            return f"{TIME_BIN} -v (wall clock, maximum resident set size)"
        return "benchmarks/measure.py (time.perf_counter, resource.getrusage(RUSAGE_CHILDREN))"

    def __call__(self, command: Sequence[str]) -> Measurement:
        self._report.unlink(missing_ok=True)
        if self.method == "time":
            wrapped = [str(TIME_BIN), "-v", "-o", str(self._report), *command]
        else:
            wrapped = [sys.executable, str(HERE / "measure.py"), str(self._report), "--", *command]
        proc = subprocess.run(
            wrapped, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BenchError(f"exit status {proc.returncode}: {' '.join(command)}\n{tail}")
        try:
            report = self._report.read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchError(f"no measurement for {' '.join(command)}: {exc}") from exc
        if self.method == "time":
            return parse_time_v(report)
        raw = json.loads(report)
        return Measurement(
            wall_s=float(raw["wall_s"]),
            max_rss_kib=int(raw["max_rss_kib"]),
            user_s=float(raw["user_s"]),
            sys_s=float(raw["sys_s"]),
        )


# ---------------------------------------------------------------------------------------------
# Scenarios


@dataclass
class Scenario:
    """One command measured ``repeats`` times; ``reference`` names the scenario it is compared to."""

    key: str
    description: str
    command: list[str]
    rows: int
    reference: str | None = None
    output: Path | None = None
    #: Scenario whose output this one's predictions must equal.
    agrees_with: str | None = None
    runs: list[Measurement] = field(default_factory=list)
    agreement: float | None = None
    error: str | None = None
    skipped: str | None = None
    #: modelrouter's --stats-json for this scenario: its own scoring throughput is read from it.
    stats_json: Path | None = None
    scoring_rates: list[float] = field(default_factory=list)
    #: The ``summary`` of each run's --stats-json (fixed-cost phases).
    summaries: list[dict[str, Any]] = field(default_factory=list)
    #: A database table the command writes: exported to ``output`` (Parquet) after the group
    #: ran, so that its rows are compared like a file's.
    output_table: str | None = None
    #: Fewer runs than the group's rounds (a baseline many times slower than what it is
    #: compared to: its noise does not move the ratio, its minutes would).
    max_runs: int | None = None

    @property
    def scoring_rate(self) -> float | None:
        """Median rows/s from model loaded to output committed (startup excluded)."""
        return statistics.median(self.scoring_rates) if self.ok and self.scoring_rates else None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and bool(self.runs)

    @property
    def wall_s(self) -> float | None:
        return statistics.median(r.wall_s for r in self.runs) if self.ok else None

    @property
    def rss_mib(self) -> float | None:
        return statistics.median(r.rss_mib for r in self.runs) if self.ok else None

    @property
    def rows_per_s(self) -> float | None:
        wall = self.wall_s
        return self.rows / wall if wall and self.rows else None

    def as_dict(self, scenarios: dict[str, Scenario]) -> dict[str, Any]:
        ref = scenarios.get(self.reference) if self.reference else None
        return {
            "description": self.description,
            "command": self.command,
            "rows": self.rows,
            "runs": [r.as_dict() for r in self.runs],
            "median_wall_s": _round(self.wall_s, 4),
            "peak_rss_mib": _round(self.rss_mib, 1),
            "max_peak_rss_mib": round(max(r.rss_mib for r in self.runs), 1) if self.runs else None,
            "rows_per_s": _round(self.rows_per_s, 1),
            "scoring_rows_per_s": _round(self.scoring_rate, 1),
            "reference": self.reference,
            "wall_ratio": _round(_ratio(self.wall_s, ref.wall_s if ref else None), 4),
            "rss_ratio": _round(_ratio(self.rss_mib, ref.rss_mib if ref else None), 4),
            "agrees_with": self.agrees_with,
            "agreement": self.agreement,
            "error": self.error,
            "skipped": self.skipped,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


Log = Callable[[str], None]


def run_group(name: str, group: Sequence[Scenario], repeats: int, measure: Measurer, log: Log) -> None:
    """Run the group's scenarios alternately, ``repeats`` rounds; a failing scenario drops out."""
    for round_ in range(1, repeats + 1):
        for scenario in group:
            if scenario.error is not None or scenario.skipped is not None:
                continue
            if scenario.max_runs is not None and len(scenario.runs) >= scenario.max_runs:
                continue
            if scenario.output is not None:
                scenario.output.unlink(missing_ok=True)
            try:
                result = measure(scenario.command)
            except BenchError as exc:
                scenario.error = str(exc)
                log(f"{name} {round_}/{repeats} {scenario.key}: FAILED\n{exc}")
                continue
            scenario.runs.append(result)
            if scenario.stats_json is not None and scenario.stats_json.is_file():
                summary = json.loads(scenario.stats_json.read_text())["summary"]
                scenario.scoring_rates.append(float(summary["scoring_rows_per_second"]))
                scenario.summaries.append(summary)
            log(f"{name} {round_}/{repeats} {scenario.key}: {result.wall_s:.2f} s, {result.rss_mib:.0f} MiB")


def check_outputs(group: Sequence[Scenario], scenarios: dict[str, Scenario], log: Log) -> None:
    """Compare each output with its reference's: same ids in order, same predictions."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    for scenario in group:
        if not scenario.ok or scenario.agrees_with is None or scenario.output is None:
            continue
        ref = scenarios[scenario.agrees_with]
        if not ref.ok or ref.output is None:
            continue
        try:
            mine = pq.read_table(scenario.output, columns=[ID_COLUMN, "prediction"])
            theirs = pq.read_table(ref.output, columns=[ID_COLUMN, "prediction"])
        except (OSError, KeyError, ValueError) as exc:
            scenario.error = f"cannot read output {scenario.output}: {exc}"
            continue
        if mine.num_rows != scenario.rows or theirs.num_rows != ref.rows:
            scenario.error = f"output has {mine.num_rows:,} rows, expected {scenario.rows:,}"
            continue
        ids, their_ids = mine[ID_COLUMN], theirs[ID_COLUMN]
        if ids.type != their_ids.type:  # a kept column read from CSV is text
            ids, their_ids = ids.cast(pa.string()), their_ids.cast(pa.string())
        if not ids.equals(their_ids):
            scenario.error = f"output ids differ from {ref.key}'s (order or values)"
            continue
        a = mine["prediction"].to_numpy()
        b = theirs["prediction"].to_numpy()
        if a.dtype != b.dtype:
            a, b = a.astype(str), b.astype(str)
        scenario.agreement = round(float(np.mean(a == b)), 6) if len(a) else 1.0
        if scenario.agreement < MIN_AGREEMENT:
            log(f"WARNING: {scenario.key} agrees with {ref.key} on {scenario.agreement:.2%} of rows")


# One flat list: splitting it would hide which scenarios a run measures.
def build_scenarios(  # noqa: C901
    fx: Fixtures,
    big: Fixtures | None,
    out: Path,
    modelrouter: Sequence[str],
    small: Fixtures | None = None,
    rf_big: Fixtures | None = None,
    before: Sequence[str] | None = None,
    pg_url: str | None = None,
    fit_boosters: bool = True,
    explain: Fixtures | None = None,
) -> dict[str, list[Scenario]]:
    """The scenario groups, in the order they run.

    ``before``: another modelrouter command (an older version) run as a twin of every
    modelrouter scenario, right after it in its group (``<key>@before``), so a before/after
    comparison comes from the same run. ``pg_url``: the server holding ``fx``'s rows as
    table :data:`PG_TABLE` (``None``: the database scenarios get no command).
    ``fit_boosters``: False when the boosters group does not run (their models take minutes
    to fit on a busy machine).
    """
    py = sys.executable

    def mr(key: str, desc: str, data: Fixtures, kind: str, model: Path, *extra: str) -> Scenario:
        output = out / f"{key}.parquet"
        command = [*modelrouter, "predict", str(data.data), "-o", str(output), "-t", kind, "-m", str(model)]
        command += ["-k", ID_COLUMN, "-q", *extra]
        return Scenario(key, desc, command, data.rows, output=output)

    def baseline(key: str, desc: str, model: Path, data: Fixtures = fx) -> Scenario:
        output = out / f"{key}.parquet"
        command = [py, str(HERE / "baseline.py"), str(data.data), str(model), str(output)]
        return Scenario(key, desc, command, data.rows, output=output)

    base_rf = baseline("baseline-rf", "baseline: pandas + sklearn RF", fx.rf.pickle)
    rf_sk = mr("modelrouter-rf-sklearn", "modelrouter RF -t sklearn", fx, "sklearn", fx.rf.pickle)
    rf_onnx = mr("modelrouter-rf-onnx", "modelrouter RF -t onnx", fx, "onnx", fx.rf.onnx)
    for s in (rf_sk, rf_onnx):
        s.reference = s.agrees_with = base_rf.key

    base_lr = baseline("baseline-logreg", "baseline: pandas + sklearn logreg", fx.logreg.pickle)
    arrow_out = out / "pyarrow-io.parquet"
    arrow = Scenario(
        "pyarrow-io",
        "bare pyarrow read + write",
        [
            py,
            str(HERE / "arrow_io.py"),
            str(fx.data),
            str(arrow_out),
            "--read",
            ",".join([ID_COLUMN, *FEATURES]),
            "--write",
            f"{ID_COLUMN},{FEATURES[0]}",
        ],
        fx.rows,
        output=arrow_out,
    )
    lr_sk = mr("modelrouter-logreg-sklearn", "modelrouter logreg -t sklearn", fx, "sklearn", fx.logreg.pickle)
    lr_sk.reference = lr_sk.agrees_with = base_lr.key

    w1 = mr(
        "modelrouter-rf-sklearn-w1", "modelrouter RF sklearn, 1 worker", fx, "sklearn", fx.rf.pickle,
        "--workers", "1", "--pool-size", "1",
    )  # fmt: skip
    w2 = mr(
        "modelrouter-rf-sklearn-w2", "modelrouter RF sklearn, 2 workers", fx, "sklearn", fx.rf.pickle,
        "--workers", "2", "--pool-size", "2",
    )  # fmt: skip
    w1.agrees_with = w2.agrees_with = base_rf.key
    w2.reference = w1.key
    for scaled in (w1, w2):
        scaled.stats_json = out / f"{scaled.key}.json"
        scaled.command += ["--stats-json", str(scaled.stats_json)]

    lr_onnx = mr("modelrouter-logreg-onnx", "modelrouter logreg -t onnx", fx, "onnx", fx.logreg.onnx)
    lr_onnx.reference = lr_onnx.agrees_with = base_lr.key
    # skl2onnx's own output, no metadata: labels read from the graph, columns by position.
    plain = ", plain skl2onnx file"
    rf_plain = mr(
        "modelrouter-rf-onnx-plain", f"modelrouter RF -t onnx{plain}", fx, "onnx", plain_onnx(fx.rf)
    )
    lr_plain = mr(
        "modelrouter-logreg-onnx-plain",
        f"modelrouter logreg -t onnx{plain}",
        fx,
        "onnx",
        plain_onnx(fx.logreg),
    )
    rf_plain.reference = rf_plain.agrees_with = base_rf.key
    lr_plain.reference = lr_plain.agrees_with = base_lr.key

    startup = Scenario("modelrouter-startup", "modelrouter --help", [*modelrouter, "--help"], 0)
    version = Scenario("modelrouter-version", "modelrouter --version", [*modelrouter, "--version"], 0)

    # Fixed cost: a small file of every type against the naive script on the same file.
    small_group: list[Scenario] = []
    if small is not None:
        n = f"{small.rows:,} rows"
        base_rf_s = baseline("baseline-rf-small", f"baseline: RF @{n}", small.rf.pickle, small)
        base_lr_s = baseline("baseline-logreg-small", f"baseline: logreg @{n}", small.logreg.pickle, small)
        small_group = [base_rf_s, base_lr_s]
        for model_name, models, base in (("rf", small.rf, base_rf_s), ("logreg", small.logreg, base_lr_s)):
            for kind in ("sklearn", "onnx"):
                path = models.pickle if kind == "sklearn" else models.onnx
                key = f"modelrouter-{model_name}-{kind}-small"
                scenario = mr(key, f"modelrouter {model_name} -t {kind} @{n}", small, kind, path)
                scenario.reference = scenario.agrees_with = base.key
                scenario.stats_json = out / f"{key}.json"
                scenario.command += ["--stats-json", str(scenario.stats_json)]
                small_group.append(scenario)

    # Start-up amortised: the parallel scoring itself (BENCH_10M=1 / --rf-big-rows).
    base_rf_big = Scenario("baseline-rf-big", "baseline: RF (big)", [], 0)
    rf_sk_big = Scenario("modelrouter-rf-sklearn-big", "modelrouter RF -t sklearn (big)", [], 0)
    if rf_big is not None:
        n = f"{rf_big.rows:,}"
        base_rf_big = baseline("baseline-rf-big", f"baseline: RF @{n}", rf_big.rf.pickle, rf_big)
        rf_sk_big = mr(
            "modelrouter-rf-sklearn-big",
            f"modelrouter RF -t sklearn @{n}",
            rf_big,
            "sklearn",
            rf_big.rf.pickle,
        )
    rf_sk_big.reference = rf_sk_big.agrees_with = base_rf_big.key

    # XGBoost / LightGBM models of the forest's size vs the naive script with that library.
    from benchmarks.boosters import LIBRARIES, booster_models

    boosters: list[Scenario] = []
    native = booster_models(fx.rf.pickle.parent) if fit_boosters else {}
    # A machine's first load of a booster file checks it in a child process (cached by digest,
    # docs/security.md): done once here, so the rounds measure the runs a user repeats.
    for model in native.values():
        subprocess.run([*modelrouter, "inspect", str(model)], capture_output=True, check=False, timeout=600)
    for library in LIBRARIES:
        base = Scenario(f"baseline-{library}", f"baseline: pandas + {library}", [], fx.rows)
        mine = Scenario(f"modelrouter-{library}", f"modelrouter {library} -t {library}", [], fx.rows)
        if library in native:
            base.output = out / f"{base.key}.parquet"
            base.command = [
                py,
                "-m",
                "benchmarks.boosters",
                str(fx.data),
                str(native[library]),
                str(base.output),
            ]
            mine = mr(mine.key, mine.description, fx, library, native[library])
        else:
            base.skipped = mine.skipped = f"{library} not installed"
        mine.reference = mine.agrees_with = base.key
        boosters += [base, mine]

    if big is not None:
        big_lr = mr(
            "modelrouter-logreg-sklearn-big", f"modelrouter logreg -t sklearn @{big.rows:,}", big, "sklearn",
            big.logreg.pickle,
        )  # fmt: skip
        big_lr.reference = lr_sk.key
    else:
        big_lr = Scenario("modelrouter-logreg-sklearn-big", "modelrouter logreg -t sklearn (big)", [], 0)
        big_lr.reference = lr_sk.key
    groups = {
        "startup": [startup, version],
        "small": small_group,
        "rf": [base_rf, rf_sk, rf_onnx, rf_plain],
        "logreg": [base_lr, arrow, lr_sk, lr_onnx, lr_plain],
        "scaling": [w1, w2],
        "boosters": boosters,
        "big": [big_lr],
        "rf-big": [base_rf_big, rf_sk_big],
        "postgres": postgres_scenarios(fx, out, modelrouter, pg_url),
    }
    from benchmarks.explain import explain_groups  # predict --explain: the forest and the boosters

    groups.update(explain_groups(explain, out, modelrouter, native))
    if before:
        for name, members in groups.items():
            if name not in TWINNED:
                continue
            twinned: list[Scenario] = []
            for scenario in members:
                twinned.append(scenario)
                if scenario.key.startswith("modelrouter-") and scenario.command:
                    twinned.append(_twin(scenario, modelrouter, before))
            groups[name] = twinned
    return groups


def postgres_scenarios(
    fx: Fixtures, out: Path, modelrouter: Sequence[str], url: str | None
) -> list[Scenario]:
    """The logistic pipeline on table :data:`PG_TABLE` (``fx``'s rows) of the server at ``url``:

    - PostgreSQL → PostgreSQL: the naive pandas script (``benchmarks/baseline_sql.py``) and
      ``modelrouter predict URL --table … -o URL --to-table …``;
    - PostgreSQL → Parquet: ``psql \\copy`` of the table to CSV, then modelrouter on that
      CSV (the two-step path, in one shell), and modelrouter reading the table directly.

    Output tables are replaced on every run and exported to Parquet after the group (ordered
    by id) for the comparison with the baseline. Without ``url`` the scenarios have no command
    (the caller marks them skipped).
    """
    n = fx.rows
    model = str(fx.logreg.pickle)
    base = Scenario("baseline-pg", "baseline: read_sql + to_sql(multi), PostgreSQL → PostgreSQL", [], n)
    to_pg = Scenario("modelrouter-pg-to-pg", "modelrouter logreg, PostgreSQL → PostgreSQL", [], n)
    two_step = Scenario("psql-copy-then-file", "psql \\copy to CSV + modelrouter CSV → Parquet", [], n)
    to_file = Scenario("modelrouter-pg-to-parquet", "modelrouter logreg, PostgreSQL → Parquet", [], n)
    to_pg.reference = base.key
    to_file.reference = two_step.key
    to_pg.agrees_with = two_step.agrees_with = to_file.agrees_with = base.key
    # ~20× modelrouter's time (4 minutes at 1M rows): one run, against a ≤ 0.3× goal.
    base.max_runs = 1
    group = [base, to_pg, two_step, to_file]
    if url is None:
        return group
    for scenario, table in ((base, "scores_baseline"), (to_pg, "scores_modelrouter")):
        scenario.output_table = table
        scenario.output = out / f"{scenario.key}.parquet"
    base.command = [sys.executable, str(HERE / "baseline_sql.py"), url, PG_TABLE, model, "scores_baseline"]
    mr_args = ["-t", "sklearn", "-m", model, "-k", ID_COLUMN, "-q"]
    to_pg.command = [
        *modelrouter, "predict", url, "--table", PG_TABLE, "-o", url, "--to-table", "scores_modelrouter",
        "--if-exists", "replace", *mr_args,
    ]  # fmt: skip
    to_file.output = out / f"{to_file.key}.parquet"
    to_file.command = [*modelrouter, "predict", url, "--table", PG_TABLE, "-o", str(to_file.output), *mr_args]
    csv = out / f"{PG_TABLE}.csv"
    two_step.output = out / f"{two_step.key}.parquet"
    copy = [
        *postgres.Cluster.psql_for(url),
        "-c",
        f"\\copy \"{PG_TABLE}\" TO '{csv}' WITH (FORMAT csv, HEADER)",
    ]
    score = [*modelrouter, "predict", str(csv), "-o", str(two_step.output), *mr_args]
    # One shell: wall time and peak RSS (the larger of the two steps') of the whole path.
    two_step.command = ["sh", "-c", f"{shlex.join(copy)} && exec {shlex.join(score)}"]
    return group


def _twin(scenario: Scenario, modelrouter: Sequence[str], before: Sequence[str]) -> Scenario:
    """``scenario`` run with the ``before`` command instead (own output and stats file)."""
    key = f"{scenario.key}@before"
    swap = {
        str(p): str(p.with_name(p.name.replace(scenario.key, key)))
        for p in (scenario.output, scenario.stats_json)
        if p
    }
    rest = [swap.get(arg, arg) for arg in scenario.command[len(modelrouter) :]]
    twin = Scenario(key, f"{scenario.description} (before)", [*before, *rest], scenario.rows)
    twin.output = Path(swap[str(scenario.output)]) if scenario.output else None
    twin.stats_json = Path(swap[str(scenario.stats_json)]) if scenario.stats_json else None
    twin.reference, twin.agrees_with = scenario.reference, scenario.agrees_with
    return twin


# ---------------------------------------------------------------------------------------------
# Targets


@dataclass(frozen=True)
class Check:
    """One target from issue 4: ``value op limit``; ``value`` None means not measured."""

    name: str
    value: float | None
    op: Literal["<=", ">="]
    limit: float
    unit: str = "×"
    note: str = ""
    #: A scenario it depends on failed: FAIL rather than SKIP when there is no value.
    broken: bool = False

    @property
    def status(self) -> str:
        if self.value is None:
            return "FAIL" if self.broken else "SKIP"
        passed = self.value <= self.limit if self.op == "<=" else self.value >= self.limit
        return "PASS" if passed else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _round(self.value, 4),
            "op": self.op,
            "limit": self.limit,
            "unit": self.unit,
            "status": self.status,
            "note": self.note,
        }


def target_checks(s: dict[str, Scenario]) -> list[Check]:
    """Issue 4's targets. A check whose scenarios failed is a FAIL; one whose were skipped a SKIP."""
    from benchmarks.explain import explain_checks

    def check(
        name: str, keys: tuple[str, str], ratio_of: str, op: Literal["<=", ">="], limit: float
    ) -> Check:
        a, b = s[keys[0]], s[keys[1]]
        value = {
            "wall": lambda: _ratio(a.wall_s, b.wall_s),
            "rss": lambda: _ratio(a.rss_mib, b.rss_mib),
            "rate": lambda: _ratio(a.rows_per_s, b.rows_per_s),
            "scoring": lambda: _ratio(a.scoring_rate, b.scoring_rate),
        }[ratio_of]()
        return Check(
            name,
            value,
            op,
            limit,
            note=a.skipped or b.skipped or "",
            broken=a.error is not None or b.error is not None,
        )

    rf_sk, rf_onnx, base_rf = "modelrouter-rf-sklearn", "modelrouter-rf-onnx", "baseline-rf"
    lr, base_lr = "modelrouter-logreg-sklearn", "baseline-logreg"
    w1, w2 = "modelrouter-rf-sklearn-w1", "modelrouter-rf-sklearn-w2"
    big, startup = s["modelrouter-logreg-sklearn-big"], s["modelrouter-startup"]
    version = s["modelrouter-version"]
    at = f"{big.rows:,} rows" if big.rows else "--big-rows"
    big_name = f"logreg sklearn: peak RSS at {at} vs at {s[lr].rows:,}"
    rf_big = s["modelrouter-rf-sklearn-big"]
    rf_at = f"{rf_big.rows:,} rows" if rf_big.rows else "big rows"
    small = [k for k in s if k.startswith("modelrouter-") and k.endswith("-small")]
    pg_base, pg_mr = "baseline-pg", "modelrouter-pg-to-pg"
    pg_copy, pg_file = "psql-copy-then-file", "modelrouter-pg-to-parquet"
    small_checks = [
        check(f"{s[k].description}: wall vs baseline", (k, s[k].reference or ""), "wall", "<=", 1.0)
        for k in small
    ]
    return [
        check("RF sklearn: wall vs baseline", (rf_sk, base_rf), "wall", "<=", 0.60),
        check("RF onnx: wall vs baseline (sklearn)", (rf_onnx, base_rf), "wall", "<=", 0.55),
        check("logreg sklearn: wall vs baseline", (lr, base_lr), "wall", "<=", 0.90),
        check(f"RF sklearn @{rf_at}: wall vs baseline", (rf_big.key, "baseline-rf-big"), "wall", "<=", 0.55),
        check(
            f"RF sklearn: peak RSS at {rf_at} vs at {s[rf_sk].rows:,}", (rf_big.key, rf_sk), "rss", "<=", 1.1
        ),
        *small_checks,
        Check(
            "startup: modelrouter --version",
            version.wall_s,
            "<=",
            0.15,
            "s",
            broken=version.error is not None,
        ),
        check("logreg sklearn: wall vs bare pyarrow read + write", (lr, "pyarrow-io"), "wall", "<=", 1.3),
        check("RF sklearn: peak RSS vs baseline", (rf_sk, base_rf), "rss", "<=", 0.5),
        check("RF onnx: peak RSS vs baseline", (rf_onnx, base_rf), "rss", "<=", 0.5),
        check("logreg sklearn: peak RSS vs baseline", (lr, base_lr), "rss", "<=", 0.5),
        check(big_name, (big.key, lr), "rss", "<=", 1.1),
        Check(
            "startup: modelrouter --help", startup.wall_s, "<=", 0.15, "s", broken=startup.error is not None
        ),
        check("scaling: rows/s with 2 workers vs 1 (RF sklearn)", (w2, w1), "rate", ">=", 1.7),
        check("scaling, scoring only (startup excluded)", (w2, w1), "scoring", ">=", 1.7),
        check(
            "logreg onnx: wall vs baseline (sklearn)", ("modelrouter-logreg-onnx", base_lr), "wall", "<=", 1.0
        ),
        check(
            "logreg onnx: wall vs bare pyarrow read + write",
            ("modelrouter-logreg-onnx", "pyarrow-io"),
            "wall",
            "<=",
            1.3,
        ),
        check("logreg onnx: peak RSS vs baseline", ("modelrouter-logreg-onnx", base_lr), "rss", "<=", 0.5),
        check(
            "logreg onnx, plain skl2onnx file: wall vs baseline",
            ("modelrouter-logreg-onnx-plain", base_lr),
            "wall",
            "<=",
            0.6,
        ),
        check(
            "RF onnx, plain skl2onnx file: wall vs baseline",
            ("modelrouter-rf-onnx-plain", base_rf),
            "wall",
            "<=",
            0.55,
        ),
        # The database tables (docs/database-tables.md): against the naive pandas script, and
        # reading the table directly against exporting it with psql first.
        check(
            "PostgreSQL → PostgreSQL: wall vs naive read_sql + to_sql", (pg_mr, pg_base), "wall", "<=", 0.3
        ),
        check(
            "PostgreSQL → PostgreSQL: peak RSS vs naive read_sql + to_sql", (pg_mr, pg_base), "rss", "<=", 0.5
        ),
        check(
            "PostgreSQL → Parquet: wall vs psql \\copy to CSV + CSV → Parquet",
            (pg_file, pg_copy),
            "wall",
            "<=",
            1.2,
        ),
        *explain_checks(s),
    ]


# ---------------------------------------------------------------------------------------------
# Machine and report


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Hardware", "Processor", "cpu model", "uarch"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def _mem_total_mib() -> int | None:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) // 1024 if match else None


def _git() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = git("status", "--porcelain", "--", "cli", "router")
    return {
        "commit": git("rev-parse", "HEAD"),
        # modelrouter's own code changed since that commit (benchmarks/ is not counted).
        "modelrouter_dirty": bool(status) if status is not None else None,
    }


def machine_info() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": affinity or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "mem_total_mib": _mem_total_mib(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": versions,
        "thread_env": {k: v for k, v in sorted(os.environ.items()) if THREAD_ENV.match(k)},
        "git": _git(),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(scenarios: dict[str, Scenario]) -> str:
    header = ("scenario", "runs", "wall s", "RSS MiB", "rows/s", "vs", "wall ×", "RSS ×")
    rows: list[tuple[str, ...]] = []
    notes: dict[int, str] = {}  # row index → text replacing the numeric cells
    for s in scenarios.values():
        ref = scenarios.get(s.reference) if s.reference else None
        if s.skipped is not None or s.error is not None:
            notes[len(rows)] = f"skipped: {s.skipped}" if s.skipped is not None else "FAILED (see JSON)"
            rows.append((s.description, str(len(s.runs))))
            continue
        rows.append(
            (
                s.description,
                str(len(s.runs)),
                _fmt(s.wall_s, ".2f"),
                _fmt(s.rss_mib, ".0f"),
                _fmt(s.rows_per_s, ",.0f"),
                ref.key if ref else "",
                _fmt(_ratio(s.wall_s, ref.wall_s) if ref else None, ".2f"),
                _fmt(_ratio(s.rss_mib, ref.rss_mib) if ref else None, ".2f"),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows] if i < len(r)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [f"{line(r)}  {notes[i]}" if i in notes else line(r) for i, r in enumerate(rows)]
    return "\n".join(out)


def render_checks(checks: Sequence[Check]) -> str:
    width = max(len(c.name) for c in checks)
    out = []
    for c in checks:
        value = (
            "-"
            if c.value is None
            else f"{c.value:.{4 if not c.unit else 2}f}{' ' + c.unit if c.unit else ''}"
        )
        target = f"{c.op.replace('<=', '≤').replace('>=', '≥')} {c.limit:g}{' s' if c.unit == 's' else ''}"
        note = f"  ({c.note})" if c.note else ""
        out.append(f"{c.status:4}  {c.name.ljust(width)}  {value:>8}  target {target}{note}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def _fixed_cost(group: Sequence[Scenario], log: Log) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """Phases (from the runs' --stats-json) and imports by package (one importtime run) of
    each modelrouter scenario of the small-file group, keyed ``<model> <type>``."""
    out: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    for scenario in group:
        if not scenario.ok or not scenario.summaries or "first_chunk_seconds" not in scenario.summaries[0]:
            continue  # a --before version may not report the phases
        name = scenario.key.removeprefix("modelrouter-").replace("-small", "").replace("-", " ")
        imports = imports_by_package(scenario.command, cwd=str(ROOT))
        out[name] = (phases([r.wall_s for r in scenario.runs], scenario.summaries), imports)
        log(f"fixed cost {name}: imports {sum(imports.values()):.2f} s")
    return out


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _warm(path: Path) -> None:
    """Read the file once so the first measured run does not pay for a cold page cache."""
    with path.open("rb") as fh:
        while fh.read(8 << 20):
            pass


def _modelrouter_command(raw: str | None) -> list[str]:
    if raw:
        return raw.split()
    beside = Path(sys.executable).parent / "modelrouter"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("modelrouter")
    if found:
        return [found]
    raise SystemExit("modelrouter not found beside this Python or on PATH (pip install -e .)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark modelrouter against the naive pandas script (issue 4).",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the main fixture")
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario (median reported)")
    parser.add_argument(
        "--big-rows", type=int, default=10_000_000, help="rows for the peak-RSS run (0: skip)"
    )
    parser.add_argument("--quick", action="store_true", help="skip the big-rows run")
    parser.add_argument(
        "--small-rows", type=int, default=1_000, help="rows of the fixed-cost scenarios (0: skip)"
    )
    parser.add_argument(
        "--rf-big-rows",
        type=int,
        default=10_000_000 if os.environ.get("BENCH_10M") == "1" else 0,
        help="rows of the RF sklearn run with start-up amortised, against the naive script "
        "(default 0: skipped; 10,000,000 with BENCH_10M=1; ~3 more minutes)",
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON results path")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="fixture cache folder")
    parser.add_argument(
        "--measure",
        choices=("auto", "time", "rusage"),
        default="auto",
        help="auto: /usr/bin/time -v when present, else the resource.getrusage wrapper",
    )
    parser.add_argument(
        "--before",
        metavar="CMD",
        help="an older modelrouter command, run as a twin of every modelrouter scenario "
        "(before/after from the same run)",
    )
    parser.add_argument(
        "--modelrouter",
        metavar="CMD",
        help="modelrouter command to benchmark (default: the one beside this Python)",
    )
    from benchmarks.explain import EXPLAIN_ROWS

    parser.add_argument(
        "--explain-rows",
        type=int,
        default=EXPLAIN_ROWS,
        help="rows of the --explain scenarios (0: skip them)",
    )
    parser.add_argument(
        "--only",
        "--groups",
        dest="only",
        metavar="GROUP[,GROUP…]",
        type=lambda text: tuple(g.strip() for g in text.split(",") if g.strip()),
        help=f"run only these groups ({', '.join(GROUPS)}); the others are reported as skipped",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1 or min(args.big_rows, args.small_rows, args.rf_big_rows) < 0:
        parser.error("--rows and --repeats must be ≥ 1, --big-rows ≥ 0")
    unknown = [g for g in args.only or () if g not in GROUPS]
    if unknown or args.only == ():
        parser.error(f"--only takes groups among {', '.join(GROUPS)} (not {', '.join(unknown) or 'none'})")
    return args


@dataclass
class PgServer:
    """The database scenarios' server: its URL, or why there is none (skipped or failed)."""

    url: str | None = None
    skipped: str | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _start_postgres(fx: Fixtures, only: Sequence[str], stack: ExitStack, log: Log) -> PgServer:
    """A throw-away server holding ``fx``'s rows as :data:`PG_TABLE`, stopped when ``stack``
    closes."""
    if "postgres" not in only:
        return PgServer()
    reason = postgres.missing()
    if reason is not None:
        log(f"postgres: skipped: {reason}")
        return PgServer(skipped=reason)
    started = time.perf_counter()
    try:
        server = stack.enter_context(postgres.cluster())
        postgres.load_parquet(server.url, fx.data, PG_TABLE)
    except (RuntimeError, OSError) as exc:
        log(f"postgres: FAILED: {exc}")
        return PgServer(error=f"PostgreSQL server: {exc}")
    load_s = time.perf_counter() - started
    log(f"postgres: server on port {server.port}, {fx.rows:,} rows loaded in {load_s:.1f} s")
    info = {
        "server": postgres.version(),
        "settings": postgres.SETTINGS,
        "folder": str(server.folder),
        "port": server.port,
        "start_and_load_seconds": round(load_s, 2),
    }
    return PgServer(server.url, info=info)


def _export_tables(group: Sequence[Scenario], url: str | None, log: Log) -> None:
    """Each written table to its scenario's ``output`` file, for :func:`check_outputs`."""
    for scenario in group:
        if url is None or not scenario.ok or scenario.output_table is None or scenario.output is None:
            continue
        try:
            postgres.export_table(
                url, scenario.output_table, ID_COLUMN, [ID_COLUMN, "prediction"], scenario.output
            )
        except Exception as exc:  # any driver error: the output cannot be checked
            scenario.error = f"cannot read table {scenario.output_table}: {exc}"
            log(f"{scenario.key}: {scenario.error}")


def _mark_skipped(
    groups: dict[str, list[Scenario]],
    only: Sequence[str],
    skip_big: str | None,
    no_rf_big: bool,
    pg: PgServer,
) -> None:
    """Why each scenario that will not run does not (the table and the JSON say it)."""
    scenarios = {s.key: s for group in groups.values() for s in group}
    for scenario in groups["postgres"]:
        scenario.skipped, scenario.error = pg.skipped, pg.error
    for key in ("modelrouter-logreg-sklearn-big", "modelrouter-logreg-sklearn-big@before"):
        if skip_big and key in scenarios:
            scenarios[key].skipped = skip_big
    for key in ("baseline-rf-big", "modelrouter-rf-sklearn-big", "modelrouter-rf-sklearn-big@before"):
        if no_rf_big and key in scenarios:
            scenarios[key].skipped = "BENCH_10M=1 or --rf-big-rows N to run"
    for name, group in groups.items():
        if name not in only:
            for scenario in group:
                scenario.skipped = f"not selected (--only {','.join(only)})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    modelrouter = _modelrouter_command(args.modelrouter)
    machine = machine_info()
    log(f"{machine['cpu_model']}, {machine['nproc']} cores; building fixtures in {args.data_dir}")
    load_before = _loadavg()
    if load_before and load_before[0] > 0.5 * (machine["nproc"] or 1):
        log(f"note: load average {load_before[0]:.1f} — other work on this machine will skew the numbers")
    only: tuple[str, ...] = args.only or GROUPS
    fx = build_fixtures(args.rows, args.data_dir, log)
    skip_big = "--quick" if args.quick else "--big-rows 0" if args.big_rows == 0 else None
    big = None if skip_big or "big" not in only else build_fixtures(args.big_rows, args.data_dir, log)
    small = (
        build_fixtures(args.small_rows, args.data_dir, log) if args.small_rows and "small" in only else None
    )
    rf_big = (
        build_fixtures(args.rf_big_rows, args.data_dir, log)
        if args.rf_big_rows and "rf-big" in only
        else None
    )
    explain = (
        build_fixtures(args.explain_rows, args.data_dir, log)
        if args.explain_rows > 0 and {"explain", "explain-boosters"} & set(only)
        else None
    )
    fixture_s = time.perf_counter() - started
    from benchmarks.explain import check_explanations

    with tempfile.TemporaryDirectory(prefix="modelrouter-bench-") as scratch_dir, ExitStack() as stack:
        scratch = Path(scratch_dir)
        measure = Measurer(Measurer.pick(args.measure), scratch)
        before = args.before.split() if args.before else None
        pg = _start_postgres(fx, only, stack, log)
        groups = build_scenarios(
            fx, big, scratch, modelrouter, small, rf_big, before, pg.url,
            fit_boosters=bool({"boosters", "explain-boosters"} & set(only)), explain=explain,
        )  # fmt: skip
        scenarios = {s.key: s for group in groups.values() for s in group}
        _mark_skipped(groups, only, skip_big, rf_big is None, pg)
        _warm(fx.data)
        for name, group in groups.items():
            if name not in only:
                continue
            if name == "big" and big is not None:
                _warm(big.data)
            if name == "rf-big" and rf_big is not None:
                _warm(rf_big.data)
            repeats = STARTUP_RUNS if name == "startup" else 1 if name in ("big", "rf-big") else args.repeats
            run_group(name, group, repeats, measure, log)
            _export_tables(group, pg.url, log)
            check_outputs(group, scenarios, log)
            check_explanations(group, scenarios, log)
        fixed_cost = _fixed_cost(groups.get("small", []), log)

    checks = target_checks(scenarios)
    disagree = [s.key for s in scenarios.values() if s.agreement is not None and s.agreement < MIN_AGREEMENT]
    checks.append(
        Check(
            "outputs agree with the baseline's (fraction of rows)",
            min((s.agreement for s in scenarios.values() if s.agreement is not None), default=None),
            ">=",
            MIN_AGREEMENT,
            unit="",
            note=", ".join(disagree),
        )
    )
    failed = [s.key for s in scenarios.values() if s.error is not None]
    total_s = time.perf_counter() - started
    load_after = _loadavg()
    results = {
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {
            "rows": args.rows,
            "repeats": args.repeats,
            "big_rows": 0 if skip_big else args.big_rows,
            "quick": args.quick,
            "startup_runs": STARTUP_RUNS,
            "only": list(only),
            "explain_rows": args.explain_rows,
        },
        "measured_with": measure.describe(),
        "modelrouter_command": modelrouter,
        "machine": machine,
        "fixtures": fx.as_dict(),
        "big_fixtures": big.as_dict() if big else None,
        "postgres": pg.info or None,
        "fixed_cost": {
            key: {"phases": phase, "imports_by_package": {k: round(v, 4) for k, v in imports.items()}}
            for key, (phase, imports) in fixed_cost.items()
        },
        "scenarios": {k: s.as_dict(scenarios) for k, s in scenarios.items()},
        "checks": [c.as_dict() for c in checks],
        "errors": failed,
        # 1/5/15-minute load averages: a busy machine (e.g. a test suite alongside) skews the numbers.
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "fixture_seconds": round(fixture_s, 2),
        "total_seconds": round(total_s, 2),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.results.with_name(f".{args.results.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.results)

    print(
        f"\nmodelrouter benchmark: {args.rows:,} rows × {len(FEATURES)} float32 features, "
        f"{args.repeats} run(s) per scenario (median), {machine['cpu_model']}, {machine['nproc']} cores"
    )
    print(render_table(scenarios))
    if fixed_cost:
        print(f"\nWhere the fixed cost goes ({args.small_rows:,}-row file, median seconds):")
        print(render_fixed_cost(fixed_cost))
    print("\nTargets (issues 4 and 15):")
    print(render_checks(checks))
    load_note = ""
    if load_before and load_after:
        load_note = f", load average {load_before[0]:.1f} → {load_after[0]:.1f}"
    print(f"\nTotal {total_s:.0f} s (fixtures {fixture_s:.0f} s{load_note}). Results: {args.results}")
    for key in failed:
        print(f"\n{key} FAILED: {scenarios[key].error}", file=sys.stderr)
    return 1 if failed or disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
