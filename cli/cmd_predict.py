"""``modelrouter predict`` and ``modelrouter predict-proba``: options in, the engine's run out.

The parameters carry the names of :class:`~modelrouter.batch.run.RunOptions` fields and are
handed to it as they are: the engine normalises and checks them (an
:class:`~modelrouter.errors.InvalidOptionError` becomes a usage error, exit 2). What stays
here is the shell's own part: the progress bar, the stats table, writing the failure reports
of a run that did not finish. The checks made before a run
(:mod:`~modelrouter.batch.preflight`) and its reports (:mod:`~modelrouter.batch.run_reports`)
are the engine's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from modelrouter.cli import render
from modelrouter.cli.exits import (
    Failed,
    errors_to_exit,
    interrupted_message,
    report_interruptions,
    warnings_to_stderr,
)
from modelrouter.cli.options import (
    AllowEmptyOpt,
    BackgroundOpt,
    ChunkOpt,
    ClassesOpt,
    CompressionOpt,
    ConfigOpt,
    DebugOpt,
    DecimalChoice,
    DecimalOpt,
    DelimiterOpt,
    EngineChoice,
    EngineOpt,
    ExplainOpt,
    IfExistsOpt,
    InputArg,
    InputFormatOpt,
    KeepAllOpt,
    KeepGoingOpt,
    KeepOpt,
    LimitOpt,
    MaxErrorRateOpt,
    MetricsOpt,
    ModelOpt,
    ModelTypeOpt,
    OnErrorChoice,
    OnErrorOpt,
    OutputFormatOpt,
    OutputOpt,
    PoolSizeOpt,
    ProgressOpt,
    QueryOpt,
    QuietOpt,
    ReasonsOpt,
    RejectsOpt,
    ResumeOpt,
    SchedulerOpt,
    Sha256Opt,
    StatsJsonOpt,
    StatsOpt,
    TableOpt,
    ThresholdOpt,
    ToTableOpt,
    TrustOpt,
    WithProbaOpt,
    WorkersOpt,
)

if TYPE_CHECKING:
    from modelrouter.batch.datasets import DatasetPlan, DatasetSummary
    from modelrouter.batch.run import RunOptions, RunSummary

__all__ = ["predict", "predict_proba"]

PREDICT_HELP = (
    "Predict labels (regressors: values) into a 'prediction' column.\n\n"
    "Example: modelrouter predict input.parquet -t onnx -o scored.parquet -k id"
)
PROBA_HELP = (
    "Predict class probabilities into 'proba_<class>' columns (model's class order).\n\n"
    "Example: modelrouter predict-proba input.csv -o - -k id"
)


@dataclass(frozen=True)
class Shell:
    """The options that shape what a person sees, not what the run does."""

    stats: bool
    progress: bool | None
    quiet: bool
    debug: bool

    @property
    def shows_progress(self) -> bool:
        return (sys.stderr.isatty() if self.progress is None else self.progress) and not self.quiet


def predict(
    input: InputArg,
    output: OutputOpt = None,
    model_type: ModelTypeOpt = None,
    model_path: ModelOpt = None,
    sha256: Sha256Opt = None,
    classes: ClassesOpt = None,
    config: ConfigOpt = None,
    keep: KeepOpt = None,
    keep_all: KeepAllOpt = False,
    chunk_size: ChunkOpt = 32_768,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    pool_size: PoolSizeOpt = None,
    input_format: InputFormatOpt = None,
    output_format: OutputFormatOpt = None,
    engine: EngineOpt = EngineChoice.local,
    scheduler: SchedulerOpt = None,
    resume: ResumeOpt = False,
    stats: StatsOpt = True,
    stats_json: StatsJsonOpt = None,
    progress: ProgressOpt = None,
    on_error: OnErrorOpt = OnErrorChoice.fail,
    rejects: RejectsOpt = None,
    max_error_rate: MaxErrorRateOpt = 1.0,
    metrics_textfile: MetricsOpt = None,
    trust: TrustOpt = None,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = DecimalChoice.point,
    compression: CompressionOpt = None,
    with_proba: WithProbaOpt = False,
    threshold: ThresholdOpt = None,
    explain: ExplainOpt = False,
    reasons: ReasonsOpt = None,
    background: BackgroundOpt = None,
    allow_empty: AllowEmptyOpt = False,
    keep_going: KeepGoingOpt = False,
    table: TableOpt = None,
    query: QueryOpt = None,
    to_table: ToTableOpt = None,
    if_exists: IfExistsOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    shell = Shell(stats=stats, progress=progress, quiet=quiet, debug=debug)
    run(shell, mode="predict", **_engine_fields(locals()))


def predict_proba(
    input: InputArg,
    output: OutputOpt = None,
    model_type: ModelTypeOpt = None,
    model_path: ModelOpt = None,
    sha256: Sha256Opt = None,
    classes: ClassesOpt = None,
    config: ConfigOpt = None,
    keep: KeepOpt = None,
    keep_all: KeepAllOpt = False,
    chunk_size: ChunkOpt = 32_768,
    limit: LimitOpt = None,
    workers: WorkersOpt = None,
    pool_size: PoolSizeOpt = None,
    input_format: InputFormatOpt = None,
    output_format: OutputFormatOpt = None,
    engine: EngineOpt = EngineChoice.local,
    scheduler: SchedulerOpt = None,
    resume: ResumeOpt = False,
    stats: StatsOpt = True,
    stats_json: StatsJsonOpt = None,
    progress: ProgressOpt = None,
    on_error: OnErrorOpt = OnErrorChoice.fail,
    rejects: RejectsOpt = None,
    max_error_rate: MaxErrorRateOpt = 1.0,
    metrics_textfile: MetricsOpt = None,
    trust: TrustOpt = None,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = DecimalChoice.point,
    compression: CompressionOpt = None,
    allow_empty: AllowEmptyOpt = False,
    keep_going: KeepGoingOpt = False,
    table: TableOpt = None,
    query: QueryOpt = None,
    to_table: ToTableOpt = None,
    if_exists: IfExistsOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    shell = Shell(stats=stats, progress=progress, quiet=quiet, debug=debug)
    run(shell, mode="proba", **_engine_fields(locals()))


_SHELL_FIELDS = frozenset({"stats", "progress", "quiet", "debug", "shell"})


def _engine_fields(parameters: dict[str, Any]) -> dict[str, Any]:
    """A command's parameters minus the shell's own: exactly the ``RunOptions`` fields."""
    return {name: value for name, value in parameters.items() if name not in _SHELL_FIELDS}


def run(shell: Shell, **fields: Any) -> None:
    """Check the options, run, render; every failure becomes its exit code and one line."""
    from types import SimpleNamespace

    from modelrouter.batch.preflight import check_file_options, check_stdin
    from modelrouter.batch.run_reports import known_counts
    from modelrouter.storage import inflight

    inflight.start_run()
    started = time.time()
    recorded: list[str] = []
    # The options as given until the engine has checked them (an interruption during the
    # checks, or during the imports they need, is recorded too), then the checked ones.
    given: list[Any] = [SimpleNamespace(**fields)]
    live: list[RunSummary] = []  # a single file's summary once it has one: its counts so far
    partial: list[DatasetSummary] = []  # a dataset's summary, filled in as its files finish

    def counts() -> tuple[dict[str, Any], dict[str, Any] | None]:
        return (known_counts(live[-1]) if live else {}), (partial[0].as_dict() if partial else None)

    def interrupted(code: int) -> None:
        """An interrupted run still records itself for cron (stats JSON, metrics)."""
        known, finished = counts()
        message = interrupted_message(code - 128)
        wall = time.time() - started
        _write_failure_reports(given[-1], shell, code, message, wall, recorded, finished, known)

    with report_interruptions(interrupted):
        with errors_to_exit(shell.debug):  # a bug in a check is exit 1 with one line, too
            options = _checked_options(fields)
            given.append(options)
            # A refused value (InvalidOptionError) is a usage error, exit 2 (errors_to_exit).
            check_stdin(options)
            check_file_options(options)
        try:
            with errors_to_exit(shell.debug), warnings_to_stderr(shell.quiet, into=recorded):
                _score_and_report(options, shell, recorded, partial, live.append)
        except typer.Exit as exc:
            if exc.exit_code:
                message = exc.message if isinstance(exc, Failed) else f"exit {exc.exit_code}"
                known, finished = counts()
                wall = time.time() - started
                _write_failure_reports(
                    options, shell, exc.exit_code, message, wall, recorded, finished, known
                )
            raise


def _checked_options(fields: dict[str, Any]) -> RunOptions:
    from modelrouter.batch.run import RunOptions

    with usage_errors():
        return RunOptions(**fields)


@contextmanager
def usage_errors() -> Iterator[None]:
    """The engine's refusal of an option value, as Click's usage error (exit 2)."""
    from modelrouter.errors import InvalidOptionError

    try:
        yield
    except InvalidOptionError as exc:
        raise typer.BadParameter(exc.reason, param_hint=exc.option) from None


def _write_failure_reports(
    options: RunOptions,
    shell: Shell,
    code: int,
    message: str,
    wall: float,
    recorded_warnings: list[str],
    finished: dict[str, Any] | None = None,
    known: dict[str, Any] | None = None,
) -> None:
    """A failed run still writes its stats JSON and metrics
    (:func:`~modelrouter.batch.run_reports.failure_reports`).

    Best effort: the run already failed with its own error; a second one is only a warning.
    """
    from modelrouter.batch.dataio import write_text_atomically
    from modelrouter.batch.run_reports import failure_reports
    from modelrouter.errors import OutputError

    for path, text in failure_reports(options, code, message, wall, recorded_warnings, finished, known):
        try:
            write_text_atomically(path, text)
        except OutputError as exc:
            if not shell.quiet:
                render.warning(str(exc))


def _score_and_report(
    options: RunOptions,
    shell: Shell,
    recorded_warnings: list[str],
    partial: list[DatasetSummary],
    on_summary: Callable[[RunSummary], None] | None = None,
) -> None:
    from modelrouter import reset_router
    from modelrouter.batch import run_reports
    from modelrouter.batch.preflight import (
        check_output_format,
        check_paths,
        check_side_folders,
        dataset_plan,
        is_dataset_run,
    )
    from modelrouter.batch.run import require_input

    if options.input_location.is_stream:
        from modelrouter.storage.run_paths import stdin_is_closed

        if stdin_is_closed():
            from modelrouter.errors import DataError

            raise DataError("<stdin>: cannot read: standard input is closed")
    require_input(options.input_location)  # before an output folder or a format is judged from the name
    plan = dataset_plan(options) if is_dataset_run(options) else None
    if plan is not None and plan.not_read and not shell.quiet:
        shown = ", ".join(map(str, plan.not_read))
        render.note(
            f"{shown}: the output folder, inside the input; its files are outputs, not read as inputs"
        )
    check_side_folders(options)
    check_paths(options, plan)
    if plan is None:
        check_output_format(options)  # after the paths: "-o model.onnx" is the model first
    side_files = run_reports.side_files(options, recorded_warnings)
    try:
        if plan is not None:
            report = _score_dataset(options, shell, plan, side_files, partial)
            if not plan.inputs and not shell.quiet:
                render.note(f"{options.input}: 0 files matched; wrote {plan.out_dir / '_SUCCESS'}")
        else:
            from modelrouter.batch.run import score_file

            total = _known_rows(options) if shell.shows_progress else None
            with render.progress(shell.shows_progress, "scoring", total) as sink:
                summary = score_file(
                    options,
                    sink,
                    side_files=lambda s: side_files(s.as_dict()),
                    on_summary=on_summary,
                    checked=True,  # above, with the dataset's and the stdin's checks
                )
            report = summary.as_dict()
        if shell.stats and not shell.quiet:
            _render_stats(report)
        elif options.resume and plan is not None and not shell.quiet:
            totals = report["summary"]
            skipped, done, stale = totals["files_skipped"], totals["files"], totals["files_stale"]
            render.note(
                f"--resume: {skipped} file{'s' * (skipped != 1)} skipped (output made from this very "
                f"input), {done} scored ({stale} of them stale output{'s' * (stale != 1)} rescored)"
            )
    finally:
        reset_router()


def _render_stats(report: dict[str, Any]) -> None:
    columns = dict(report["pools"])
    workers = report.get("workers", {})
    if workers:  # Dask: the total, then one column per worker process
        columns = {f"{kind} (total)": stats for kind, stats in report["pools"].items()}
        for address, worker in workers.items():
            columns.update({f"{kind} @ {address}": s for kind, s in worker["pools"].items()})
    render.stats_table(columns, report["summary"])


def _score_dataset(
    options: RunOptions,
    shell: Shell,
    plan: DatasetPlan,
    side_files: Callable[[dict[str, Any]], list[tuple[Any, str]]],
    partial: list[DatasetSummary],
) -> dict[str, Any]:
    from modelrouter.batch.datasets import DatasetSummary, score_dataset_locally

    filled = DatasetSummary(input=options.input, output=str(plan.out_dir), engine=options.engine)
    partial.append(filled)

    enabled = shell.shows_progress
    total = sum(_parquet_rows(str(p)) or 0 for p in plan.inputs) if enabled else None
    with render.progress(enabled, f"scoring {len(plan.inputs)} files", total or None) as sink:
        if options.engine == "dask":
            from modelrouter.batch.dask_engine import score_dataset_on_dask

            summary = score_dataset_on_dask(
                options,
                plan,
                options.resume,
                options.scheduler,
                options.workers,
                sink,
                side_files,
                summary=filled,
            )
        else:
            summary = score_dataset_locally(
                options, plan, options.resume, sink, side_files=side_files, summary=filled
            )
    return summary.as_dict()


def _known_rows(options: RunOptions) -> int | None:
    """The input's row count where it is free or cheap (Parquet metadata, a DuckDB or SQLite
    table's count), for the progress bar's ETA; ``None``: rows/s without an ETA."""
    from modelrouter.storage.tables import DatabaseUrl, count_rows

    if options.input_location.is_table:
        if options.table is None:
            return None  # a query's rows are known only once it has run
        return count_rows(DatabaseUrl.parse(options.input, option="INPUT"), options.table)
    return _parquet_rows(options.input)


def _parquet_rows(path: str) -> int | None:
    """The row count from Parquet metadata (free), for the progress bar's ETA."""
    if not path.lower().endswith((".parquet", ".pq")) or "://" in path:
        return None  # an object store's metadata costs requests: no ETA there
    try:
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    except Exception:  # the reader reports a bad file properly
        return None
