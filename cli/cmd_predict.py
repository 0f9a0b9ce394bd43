"""``modelrouter predict`` and ``modelrouter predict-proba``: options in, the engine's run out.

The parameters carry the names of :class:`~modelrouter.batch.run.RunOptions` fields and are
handed to it as they are: the engine normalises and checks them (an
:class:`~modelrouter.errors.InvalidOptionError` becomes a usage error, exit 2). What stays
here is the shell's own part: stdin and terminal checks, the progress bar, the stats table,
the failure reports of a run that did not finish.
"""

from __future__ import annotations

import json
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
        return (_known_counts(live[-1]) if live else {}), (partial[0].as_dict() if partial else None)

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
            _check_stdin(options)
            _check_file_options(options)
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


def _known_counts(summary: RunSummary) -> dict[str, Any]:
    """What a run that did not finish knows for sure: the rows and chunks scored so far
    (none of them committed) and where the model came from."""
    return {
        "rows_in": summary.rows_in,
        "rows_out": summary.rows_out,
        "rows_rejected": summary.rows_rejected,
        "chunks": summary.chunks,
        "model_type": str(summary.model_type),
        "model_path": summary.model_path,
    }


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


def _check_stdin(options: RunOptions) -> None:
    """stdin carries CSV; Parquet needs a seekable file (stdin redirected from one is fine)."""
    from modelrouter.storage.formats import FORMATS
    from modelrouter.storage.run_paths import stdin_is_closed, stdin_is_regular

    if not options.input_location.is_stream or stdin_is_closed():
        return  # a closed stdin is an input error, reported by the run (exit 3)
    fmt = options.input_format
    if fmt is not None and not FORMATS[fmt].text and not stdin_is_regular():
        raise typer.BadParameter(
            "stdin is a pipe or terminal and takes CSV only (Parquet needs a seekable file: "
            "pass the file's path, or redirect stdin from the file)",
            param_hint="--input-format",
        )


def _is_dataset_run(options: RunOptions) -> bool:
    from modelrouter.batch.datasets import is_dataset

    return is_dataset(options.input_location) or options.engine == "dask"


def _check_file_options(options: RunOptions) -> None:
    """Options that only mean something for some inputs/outputs: a usage error elsewhere
    (a typo must not be silently ignored)."""
    from modelrouter.batch.dataio import detect_format
    from modelrouter.batch.targets import resolve_output_location
    from modelrouter.errors import ModelRouterError
    from modelrouter.storage.formats import FORMATS

    for flag, given in (("--allow-empty", options.allow_empty), ("--keep-going", options.keep_going)):
        if given and not _is_dataset_run(options):
            raise typer.BadParameter(
                f"{options.input} is a single file; {flag} applies to a directory or glob",
                param_hint=flag,
            )
    if options.compression is None or _is_dataset_run(options):
        return  # a dataset's formats are checked once it is planned
    try:
        output = resolve_output_location(options.input_location, options.output_location)
        fmt = (
            (options.output_format or "csv")
            if output.is_stream
            else detect_format(output, options.output_format, role="output")
        )
    except ModelRouterError:
        return  # the run reports a bad output name itself
    rejects_parquet = options.rejects is not None and options.rejects.lower().endswith((".parquet", ".pq"))
    if FORMATS[fmt].text and not rejects_parquet:
        shown, suffix = FORMATS[fmt].title, FORMATS[fmt].suffixes[0]
        raise typer.BadParameter(
            f"compresses Parquet pages, and {'stdout' if output.is_stream else output} is {shown} "
            f"(name it {suffix}.gz, {suffix}.bz2 or {suffix}.zst to compress a {shown} output)",
            param_hint="--compression",
        )


def _check_output_format(options: RunOptions) -> None:
    """An output named with a suffix no writer has (``-o out.xlsx``) is a usage error
    naming the supported formats, raised before anything is read."""
    from modelrouter.batch.dataio import UnknownOutputFormat, detect_format
    from modelrouter.batch.targets import resolve_output_location
    from modelrouter.errors import ModelRouterError

    try:
        # Only a name the user gave: a default output derived from an input whose format is
        # unknown is the input's error (exit 3, "pass --input-format"), reported by the run.
        given = options.output_location
        if given is not None and given.is_file:
            # An existing folder (or a trailing '/') gets the default file name inside it.
            target = resolve_output_location(options.input_location, given)
            detect_format(target, options.output_format, role="output")
        if options.rejects_location is not None:
            detect_format(options.rejects_location, None, role="output", option="--rejects")
    except UnknownOutputFormat as exc:
        raise typer.BadParameter(exc.reason, param_hint=exc.option) from None
    except ModelRouterError:
        return  # the run reports a bad output path itself (exit 5)


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
    """A failed run still writes its stats JSON and metrics, with the labels/keys of a success
    plus ``error`` and ``exit_code`` (an alert on the labelled series must fire).

    Best effort: the run already failed with its own error; a second one is only a warning.
    """
    from modelrouter import ModelType
    from modelrouter.batch.dataio import write_text_atomically
    from modelrouter.batch.prometheus import failure_metrics
    from modelrouter.batch.run import RunSummary
    from modelrouter.errors import OutputError
    from modelrouter.storage import object_store as storage

    model_type = _resolved_model_type(options)
    # The keys of a success, each unknown (null) unless this failure knows it: never a
    # made-up count.
    blank = RunSummary(input="", output="", model_type=ModelType.SKLEARN, model_path="")  # keys only
    summary: dict[str, Any] = dict.fromkeys(blank.as_dict()["summary"])
    from modelrouter.storage.tables import redact  # a database URL's password is never stored

    summary.update(
        input=redact(options.input),
        output=None if options.output is None else redact(options.output),
        model_type=model_type,
        model_path=None if options.model_path is None else str(options.model_path),
        workers=options.workers,
        chunk_size=options.chunk_size,
        wall_seconds=wall,
        error=message,
        exit_code=code,
    )
    summary.update(known or {})
    model_type = str(summary["model_type"])
    report: dict[str, Any] = {"summary": summary, "pools": {}, "warnings": list(recorded_warnings)}
    if finished is not None:
        # A dataset: the files finished before the failure (or beside --keep-going's failed
        # ones) are counted; the run's own wall time and error stay.
        counts = ["output", "engine", "files", "files_skipped", "files_stale", "files_failed"]
        counts += ["rows_in", "rows_out", "rows_rejected", "chunks"]
        summary.update({key: finished["summary"][key] for key in counts})
        report.update(files=finished["files"], failed=finished["failed"], pools=finished["pools"])
    writes: list[tuple[storage.Location, str]] = []
    if options.stats_json is not None:
        writes.append((storage.as_location(options.stats_json), json.dumps(report, indent=2) + "\n"))
    if options.metrics_textfile is not None:
        gauges = {k: summary[k] for k in ("rows_in", "rows_out", "rows_rejected") if summary[k] is not None}
        metrics = failure_metrics(code, model_type, counts=gauges)
        writes.append((storage.as_location(options.metrics_textfile), metrics))
    for path, text in writes:
        if str(path) in message:
            continue  # the file the run could not write is its error: no second attempt
        try:
            write_text_atomically(path, text)
        except OutputError as exc:
            if not shell.quiet:
                render.warning(str(exc))


def _resolved_model_type(options: RunOptions) -> str:
    """The model type the run used or would have used (-t, -m's suffix, the config's default),
    for the labels of a failed run's metrics; ``unknown`` when even that cannot be told."""
    if options.model_type is not None:
        return str(options.model_type)
    try:
        from modelrouter import ModelType, load_settings

        if options.model_path is not None:
            return str(ModelType.from_path(options.model_path))
        default = load_settings(options.config).default_model_type
    except Exception:  # the run's own error says what is wrong with the config
        return "unknown"
    return "unknown" if default is None else str(default)


def _score_and_report(
    options: RunOptions,
    shell: Shell,
    recorded_warnings: list[str],
    partial: list[DatasetSummary],
    on_summary: Callable[[RunSummary], None] | None = None,
) -> None:
    from modelrouter import reset_router
    from modelrouter.batch.run import require_input

    if options.input_location.is_stream:
        from modelrouter.storage.run_paths import stdin_is_closed

        if stdin_is_closed():
            from modelrouter.errors import DataError

            raise DataError("<stdin>: cannot read: standard input is closed")
    require_input(options.input_location)  # before an output folder or a format is judged from the name
    plan = _dataset_plan(options) if _is_dataset_run(options) else None
    if plan is not None and plan.not_read and not shell.quiet:
        shown = ", ".join(map(str, plan.not_read))
        render.note(
            f"{shown}: the output folder, inside the input; its files are outputs, not read as inputs"
        )
    _check_side_folders(options)
    _check_paths(options, plan)
    if plan is None:
        _check_output_format(options)  # after the paths: "-o model.onnx" is the model first
    side_files = _side_files(options, recorded_warnings)
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
                    options, sink, side_files=lambda s: side_files(s.as_dict()), on_summary=on_summary
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


def _dataset_plan(options: RunOptions) -> DatasetPlan:
    from modelrouter.batch.dataio import detect_format
    from modelrouter.batch.datasets import plan_dataset
    from modelrouter.storage.formats import FORMATS
    from modelrouter.storage.run_paths import PathConflict

    try:
        plan = plan_dataset(
            options.input_location, options.output, options.output_format, allow_empty=options.allow_empty
        )
    except PathConflict as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    compressing = options.compression is not None
    if (
        compressing
        and plan.inputs
        and all(FORMATS[detect_format(str(t), None, role="output")].text for t in plan.outputs)
    ):
        raise typer.BadParameter(
            "compresses Parquet pages, and no output of this dataset is Parquet "
            "(pass --output-format parquet)",
            param_hint="--compression",
        )
    return plan


def _check_side_folders(options: RunOptions) -> None:
    """Checked before anything is read: a side file that cannot be written (its folder is
    missing, a directory is in its place) must not fail the run after its other outputs were
    committed (all or none, docs/specification.md §5)."""
    from modelrouter.storage.commit import check_writable

    for side_file in (options.stats_json, options.metrics_textfile):
        if side_file is not None:
            check_writable(side_file)


def _side_files(
    options: RunOptions, recorded_warnings: list[str]
) -> Callable[[dict[str, Any]], list[tuple[Any, str]]]:
    from modelrouter.storage import object_store as storage

    def side_files(report: dict[str, Any]) -> list[tuple[storage.Location, str]]:
        """Committed together with the run's outputs: a failure here fails the whole run."""
        files: list[tuple[storage.Location, str]] = []
        # Warnings are part of what happened (also under -q, where stderr stays silent).
        report["warnings"] = list(recorded_warnings)
        if not report["summary"].get("model_type"):
            # A run that loaded no model (--resume with every file done, an --allow-empty
            # day) still has the type it would have used: the metrics keep their label.
            report["summary"]["model_type"] = _resolved_model_type(options)
        if options.stats_json is not None:
            files.append((storage.as_location(options.stats_json), json.dumps(report, indent=2) + "\n"))
        if options.metrics_textfile is not None:
            from modelrouter.batch.prometheus import run_metrics

            files.append((storage.as_location(options.metrics_textfile), run_metrics(report)))
        return files

    return side_files


def _render_stats(report: dict[str, Any]) -> None:
    columns = dict(report["pools"])
    workers = report.get("workers", {})
    if workers:  # Dask: the total, then one column per worker process
        columns = {f"{kind} (total)": stats for kind, stats in report["pools"].items()}
        for address, worker in workers.items():
            columns.update({f"{kind} @ {address}": s for kind, s in worker["pools"].items()})
    render.stats_table(columns, report["summary"])


def _check_paths(options: RunOptions, plan: DatasetPlan | None) -> None:
    """No output may be an input (data, model, config) or another output: exit 2, up front.

    Also removes the temporary files that killed runs left in the output folders (after the
    check: nothing is written before it)."""
    from modelrouter import load_settings
    from modelrouter.batch.datasets import planned_outputs
    from modelrouter.batch.targets import rejects_location, resolve_output_location
    from modelrouter.storage.commit import sweep_stale_temps
    from modelrouter.storage.run_paths import PathConflict, PathUse, check_paths

    settings = load_settings(options.config)
    inputs = [PathUse(str(settings.source), "the config file", "--config")]
    if options.model_path is not None:
        inputs.append(PathUse(str(options.model_path), "the model", "--model"))
    if options.background is not None:
        inputs.append(PathUse(options.background, "the background file", "--background"))
    inputs += [PathUse(str(m.path), f"the {kind} model", "--config") for kind, m in settings.models.items()]
    outputs: list[PathUse] = []
    if plan is not None:
        inputs += [PathUse(str(p), "the input", "INPUT") for p in plan.inputs]
        outputs += [
            PathUse(str(target), f"the output for {source}", "--output")
            for target, source in planned_outputs(plan, options)
        ]
    else:
        # A database table is no file: its rows are staged and committed in the database
        # (reading and replacing one table in one run is safe).
        if not options.input_location.is_table:
            inputs.append(PathUse(options.input, "the input", "INPUT"))
        output = resolve_output_location(options.input_location, options.output_location)
        if not output.is_table:
            outputs.append(PathUse(output.text, "the output", "--output"))
        if options.on_error == "skip":
            rejects = options.rejects_location or rejects_location(output)
            outputs.append(PathUse(rejects.text, "the rejects file", "--rejects"))
    for option, side_file in (
        ("--stats-json", options.stats_json),
        ("--metrics-textfile", options.metrics_textfile),
    ):
        if side_file is not None:
            outputs.append(PathUse(side_file, f"the {option} file", option))
    try:
        check_paths(inputs, outputs)
    except PathConflict as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    # Object stores hold no temporary files (an upload is invisible until completed).
    sweep_stale_temps([o.location.path.parent for o in outputs if o.location.is_local])


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
