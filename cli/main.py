"""The ``modelrouter`` command: Typer commands that parse options and call :mod:`modelrouter.batch.run`.

Heavy libraries (pandas, pyarrow, scikit-learn, onnxruntime) are imported inside the
commands, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from modelrouter.cli import render, tooling
from modelrouter.cli.exits import (
    EXIT_MODEL,
    Failed,
    Interrupted,
    errors_to_exit,
    hard_exit,
    install_signal_handlers,
    settle,
    warnings_to_stderr,
)
from modelrouter.cli.options import (
    AllowEmptyOpt,
    ChunkOpt,
    ClassesOpt,
    CompressionChoice,
    CompressionOpt,
    ConfigOpt,
    DebugOpt,
    DecimalChoice,
    DecimalOpt,
    DelimiterOpt,
    EngineChoice,
    EngineOpt,
    FormatChoice,
    InputArg,
    InputFormatOpt,
    KeepAllOpt,
    KeepOpt,
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
    QuietOpt,
    RejectsOpt,
    ResumeOpt,
    SchedulerOpt,
    Sha256Opt,
    StatsJsonOpt,
    StatsOpt,
    ThresholdOpt,
    TrustOpt,
    WithProbaOpt,
    WorkersOpt,
)

__all__ = ["app", "main"]


app = typer.Typer(
    name="modelrouter",
    help="Batch-score CSV and Parquet files with pooled scikit-learn and ONNX models.",
    epilog="Exit codes: 0 ok, 1 internal error (a bug), 2 usage, 3 input data, 4 model or config, "
    "5 output, 130/143 interrupted by SIGINT/SIGTERM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks would print DataFrames; --debug prints plain ones
    rich_markup_mode=None,  # Click's plain Usage:/Error: lines, never boxes that wrap paths
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # the one version: pyproject.toml's

        print(f"modelrouter {version('modelrouter')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Batch-score CSV and Parquet files with pooled scikit-learn and ONNX models.

    Exit codes: 0 ok, 2 usage, 3 input data, 4 model/config, 5 output, 130/143 interrupted.
    """


@dataclass(frozen=True)
class _ScoreArgs:
    """The parameters of predict / predict-proba, as Typer parsed them."""

    input: str
    output: str | None
    model_type: str | None
    model: str | None
    sha256: str | None
    classes: str | None
    config: Path | None
    keep: list[str] | None
    keep_all: bool
    chunk_size: int
    workers: int | None
    pool_size: int | None
    input_format: FormatChoice | None
    output_format: FormatChoice | None
    engine: EngineChoice
    scheduler: str | None
    resume: bool
    stats: bool
    stats_json: str | None
    progress: bool | None
    on_error: OnErrorChoice
    rejects: str | None
    max_error_rate: float
    metrics_textfile: str | None
    trust: list[str] | None
    quiet: bool
    debug: bool
    delimiter: str | None = None
    decimal: DecimalChoice = DecimalChoice.point
    compression: CompressionChoice | None = None
    with_proba: bool = False
    threshold: float | None = None
    allow_empty: bool = False


def _score(mode: str, args: _ScoreArgs) -> None:
    from modelrouter.storage.commit import COMMIT

    COMMIT.reset()
    if args.on_error is OnErrorChoice.skip and args.rejects is None and args.output == "-":
        raise typer.BadParameter(
            "--rejects PATH is required with --on-error skip and -o -", param_hint="--rejects"
        )
    for option, value in (
        ("--rejects", args.rejects),
        ("--stats-json", args.stats_json),
        ("--metrics-textfile", args.metrics_textfile),
    ):
        if value is not None and str(value) == "-":
            # Only -o means stdout: stdout carries the product, nothing else.
            raise typer.BadParameter(
                "'-' (stdout) is only accepted by -o; give a file path", param_hint=option
            )
    _check_stdin(args)
    _check_file_options(mode, args)
    if args.scheduler is not None and args.engine is not EngineChoice.dask:
        raise typer.BadParameter("--scheduler needs --engine dask", param_hint="--scheduler")
    started = time.time()
    recorded: list[str] = []
    try:
        with errors_to_exit(args.debug), warnings_to_stderr(args.quiet, into=recorded):
            _score_and_report(mode, args, recorded)
    except typer.Exit as exc:
        if exc.exit_code:
            message = exc.message if isinstance(exc, Failed) else f"exit {exc.exit_code}"
            _write_failure_reports(args, exc.exit_code, message, time.time() - started, recorded)
        raise


def _check_stdin(args: _ScoreArgs) -> None:
    """stdin carries CSV; Parquet needs a seekable file (stdin redirected from one is fine)."""
    from modelrouter.storage.run_paths import stdin_is_closed, stdin_is_regular

    if args.input != "-" or stdin_is_closed():
        return  # a closed stdin is an input error, reported by the run (exit 3)
    wants_parquet = args.input_format is not None and args.input_format.value == "parquet"
    if wants_parquet and not stdin_is_regular():
        raise typer.BadParameter(
            "stdin is a pipe or terminal and takes CSV only (Parquet needs a seekable file: "
            "pass the file's path, or redirect stdin from the file)",
            param_hint="--input-format",
        )


def _check_file_options(mode: str, args: _ScoreArgs) -> None:
    """Options that only mean something for some inputs/outputs: a usage error elsewhere
    (a typo must not be silently ignored)."""
    from modelrouter.batch.dataio import detect_format
    from modelrouter.batch.datasets import is_dataset
    from modelrouter.batch.run import resolve_output
    from modelrouter.errors import ModelRouterError

    if args.allow_empty and not (is_dataset(args.input) or args.engine is EngineChoice.dask):
        raise typer.BadParameter(
            f"{args.input} is a single file; --allow-empty applies to a directory or glob",
            param_hint="--allow-empty",
        )
    if args.compression is None or is_dataset(args.input) or args.engine is EngineChoice.dask:
        return  # a dataset's formats are checked once it is planned
    try:
        output = resolve_output(args.input, args.output)
        override = None if args.output_format is None else args.output_format.value
        fmt = "csv" if output == "-" else detect_format(output, override, role="output")  # type: ignore[arg-type]
    except ModelRouterError:
        return  # the run reports a bad output name itself
    rejects_parquet = args.rejects is not None and str(args.rejects).lower().endswith((".parquet", ".pq"))
    if fmt == "csv" and not rejects_parquet:
        raise typer.BadParameter(
            f"compresses Parquet pages, and {'stdout' if output == '-' else output} is CSV "
            "(name it .csv.gz, .csv.bz2 or .csv.zst to compress a CSV output)",
            param_hint="--compression",
        )


def _write_failure_reports(
    args: _ScoreArgs, code: int, message: str, wall: float, recorded_warnings: list[str]
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

    model_type = _resolved_model_type(args)
    # The keys of a success, each unknown (null) unless this failure knows it: never a
    # made-up count.
    blank = RunSummary(input="", output="", model_type=ModelType.SKLEARN, model_path="")  # keys only
    keys = blank.as_dict()["summary"]
    summary: dict[str, Any] = dict.fromkeys(keys)
    summary.update(
        input=args.input,
        output=args.output,
        model_type=model_type,
        model_path=None if args.model is None else str(args.model),
        workers=args.workers,
        chunk_size=args.chunk_size,
        wall_seconds=wall,
        error=message,
        exit_code=code,
    )
    writes: list[tuple[storage.Location, str]] = []
    if args.stats_json is not None:
        report = {"summary": summary, "pools": {}, "warnings": list(recorded_warnings)}
        writes.append((storage.as_location(args.stats_json), json.dumps(report, indent=2) + "\n"))
    if args.metrics_textfile is not None:
        writes.append((storage.as_location(args.metrics_textfile), failure_metrics(code, model_type)))
    for path, text in writes:
        try:
            write_text_atomically(path, text)
        except OutputError as exc:
            if not args.quiet:
                render.warning(str(exc))


def _resolved_model_type(args: _ScoreArgs) -> str:
    """The model type the run used or would have used (-t, -m's suffix, the config's default),
    for the labels of a failed run's metrics; ``unknown`` when even that cannot be told."""
    if args.model_type is not None:
        return args.model_type
    try:
        from modelrouter import ModelType, load_settings

        if args.model is not None:
            return str(ModelType.from_path(args.model))
        default = load_settings(args.config).default_model_type
    except Exception:  # the run's own error says what is wrong with the config
        return "unknown"
    return "unknown" if default is None else str(default)


def _score_and_report(mode: str, args: _ScoreArgs, recorded_warnings: list[str]) -> None:
    from modelrouter import ModelType, reset_router
    from modelrouter.batch.run import RunOptions
    from modelrouter.errors import OutputError
    from modelrouter.storage import object_store as storage

    options = RunOptions(
        input=args.input,
        mode="proba" if mode == "proba" else "predict",
        output=args.output,
        input_format=None if args.input_format is None else args.input_format.value,
        output_format=None if args.output_format is None else args.output_format.value,
        model_type=None if args.model_type is None else ModelType(args.model_type),
        model_path=None if args.model is None else storage.model_location_arg(args.model),
        sha256=args.sha256,
        classes=None if args.classes is None else tuple(args.classes.split(",")),
        config=args.config,
        keep=tuple(args.keep or ()),
        keep_all=args.keep_all,
        chunk_size=args.chunk_size,
        workers=args.workers,
        pool_size=args.pool_size,
        on_error="skip" if args.on_error is OnErrorChoice.skip else "fail",
        rejects=args.rejects,
        max_error_rate=args.max_error_rate,
        trust=tuple(args.trust or ()),
        delimiter=args.delimiter,
        decimal=args.decimal.value,
        compression=args.compression.value if args.compression is not None else "snappy",
        with_proba=args.with_proba,
        threshold=args.threshold,
    )
    from modelrouter.batch.datasets import is_dataset, plan_dataset
    from modelrouter.storage.run_paths import PathConflict, stdin_is_closed

    if args.input == "-" and stdin_is_closed():
        from modelrouter.errors import DataError

        raise DataError("<stdin>: cannot read: standard input is closed")
    plan = None
    if is_dataset(args.input) or args.engine is EngineChoice.dask:
        out_format = None if args.output_format is None else args.output_format.value
        try:
            plan = plan_dataset(args.input, args.output, out_format, allow_empty=args.allow_empty)  # type: ignore[arg-type]
        except PathConflict as exc:
            raise typer.BadParameter(str(exc), param_hint=exc.option) from None
        if args.compression is not None and plan.inputs:
            from modelrouter.batch.dataio import detect_format

            if all(detect_format(str(t), None, role="output") == "csv" for t in plan.outputs):
                raise typer.BadParameter(
                    "compresses Parquet pages, and every output of this dataset is CSV "
                    "(pass --output-format parquet)",
                    param_hint="--compression",
                )
    for side_file in (args.stats_json, args.metrics_textfile):
        if side_file is None or storage.is_uri(side_file):
            continue
        if not Path(side_file).parent.is_dir():
            # Checked before scoring: failing after the output was committed would break
            # "non-zero exit leaves no output".
            folder = str(Path(side_file).parent)
            raise OutputError(f"{side_file}: output folder {folder!r} does not exist")
    _check_paths(args, options, plan)

    def side_files(report: dict[str, Any]) -> list[tuple[storage.Location, str]]:
        """Committed together with the run's outputs: a failure here fails the whole run."""
        files: list[tuple[storage.Location, str]] = []
        # Warnings are part of what happened (also under -q, where stderr stays silent).
        report["warnings"] = list(recorded_warnings)
        if args.stats_json is not None:
            files.append((storage.as_location(args.stats_json), json.dumps(report, indent=2) + "\n"))
        if args.metrics_textfile is not None:
            from modelrouter.batch.prometheus import run_metrics

            files.append((storage.as_location(args.metrics_textfile), run_metrics(report)))
        return files

    enabled = (sys.stderr.isatty() if args.progress is None else args.progress) and not args.quiet
    try:
        if plan is not None:
            report = _score_dataset(options, args, plan, enabled, side_files)
            if not plan.inputs and not args.quiet:
                render.note(f"{args.input}: 0 files matched; wrote {plan.out_dir / '_SUCCESS'}")
        else:
            from modelrouter.batch.run import score_file

            total = _parquet_rows(args.input) if enabled else None
            with render.progress(enabled, "scoring", total) as sink:
                summary = score_file(options, sink, side_files=lambda s: side_files(s.as_dict()))
            report = summary.as_dict()
        if args.stats and not args.quiet:
            columns = dict(report["pools"])
            workers = report.get("workers", {})
            if workers:  # Dask: the total, then one column per worker process
                columns = {f"{kind} (total)": stats for kind, stats in report["pools"].items()}
                for address, worker in workers.items():
                    columns.update({f"{kind} @ {address}": s for kind, s in worker["pools"].items()})
            render.stats_table(columns, report["summary"])
    finally:
        reset_router()


def _check_paths(args: _ScoreArgs, options: Any, plan: Any) -> None:
    """No output may be an input (data, model, config) or another output: exit 2, up front.

    Also removes the temporary files that killed runs left in the output folders (after the
    check: nothing is written before it)."""
    from modelrouter import load_settings
    from modelrouter.batch.datasets import planned_outputs
    from modelrouter.batch.run import default_rejects, resolve_output
    from modelrouter.locations import is_uri
    from modelrouter.storage.commit import sweep_stale_temps
    from modelrouter.storage.run_paths import PathConflict, PathUse, check_paths

    settings = load_settings(args.config)
    inputs = [PathUse(str(settings.source), "the config file", "--config")]
    if args.model is not None:
        inputs.append(PathUse(str(args.model), "the model", "--model"))
    inputs += [PathUse(str(m.path), f"the {kind} model", "--config") for kind, m in settings.models.items()]
    outputs: list[PathUse] = []
    if plan is not None:
        inputs += [PathUse(str(p), "the input", "INPUT") for p in plan.inputs]
        outputs += [
            PathUse(str(target), f"the output for {source}", "--output")
            for target, source in planned_outputs(plan, options)
        ]
    else:
        inputs.append(PathUse(args.input, "the input", "INPUT"))
        output = resolve_output(args.input, args.output)
        outputs.append(PathUse(output, "the output", "--output"))
        if args.on_error is OnErrorChoice.skip:
            rejects = str(args.rejects) if args.rejects is not None else default_rejects(output)
            outputs.append(PathUse(rejects, "the rejects file", "--rejects"))
    for option, side_file in (
        ("--stats-json", args.stats_json),
        ("--metrics-textfile", args.metrics_textfile),
    ):
        if side_file is not None:
            outputs.append(PathUse(str(side_file), f"the {option} file", option))
    try:
        check_paths(inputs, outputs)
    except PathConflict as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    # Object stores hold no temporary files (an upload is invisible until completed).
    sweep_stale_temps([Path(o.path).parent for o in outputs if o.path != "-" and not is_uri(o.path)])


def _score_dataset(
    options: Any,
    args: _ScoreArgs,
    plan: Any,
    progress_enabled: bool,
    side_files: Callable[[dict[str, Any]], list[tuple[Any, str]]],
) -> dict[str, Any]:
    from modelrouter.batch.datasets import score_dataset_locally

    total = sum(_parquet_rows(str(p)) or 0 for p in plan.inputs) if progress_enabled else None
    with render.progress(progress_enabled, f"scoring {len(plan.inputs)} files", total or None) as sink:
        if args.engine is EngineChoice.dask:
            from modelrouter.batch.dask_engine import score_dataset_on_dask

            summary = score_dataset_on_dask(
                options, plan, args.resume, args.scheduler, args.workers, sink, side_files
            )
        else:
            summary = score_dataset_locally(options, plan, args.resume, sink, side_files=side_files)
    return summary.as_dict()


def _parquet_rows(path: str) -> int | None:
    """The row count from Parquet metadata (free), for the progress bar's ETA."""
    if not path.lower().endswith((".parquet", ".pq")) or "://" in path:
        return None  # an object store's metadata costs requests: no ETA there
    try:
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    except Exception:  # the reader reports a bad file properly
        return None


def _scoring_command(mode: str) -> Callable[..., None]:
    """``predict`` and ``predict-proba`` take the same options; only the mode differs."""

    def command(
        input: InputArg,
        output: OutputOpt = None,
        model_type: ModelTypeOpt = None,
        model: ModelOpt = None,
        sha256: Sha256Opt = None,
        classes: ClassesOpt = None,
        config: ConfigOpt = None,
        keep: KeepOpt = None,
        keep_all: KeepAllOpt = False,
        chunk_size: ChunkOpt = 32_768,
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
        allow_empty: AllowEmptyOpt = False,
        quiet: QuietOpt = False,
        debug: DebugOpt = False,
    ) -> None:
        arguments = {k: v for k, v in locals().items() if k in _SCORE_FIELDS}
        _score(mode, _ScoreArgs(**arguments))

    if mode == "proba":
        # --with-proba and --threshold shape predict's output: predict-proba does not offer
        # them (Click then rejects them as unknown options, exit 2).
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.name not in _PREDICT_ONLY]
        command.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    return command


_PREDICT_ONLY = frozenset({"with_proba", "threshold"})


_SCORE_FIELDS = frozenset(f.name for f in fields(_ScoreArgs))

app.command(
    "predict",
    short_help="Predict labels (regressors: values) into 'prediction'.",
    help="Predict labels (regressors: values) into a 'prediction' column.\n\n"
    "Example: modelrouter predict input.parquet -t onnx -o scored.parquet -k id",
)(_scoring_command("predict"))
app.command(
    "predict-proba",
    short_help="Predict class probabilities into 'proba_<class>' columns.",
    help="Predict class probabilities into 'proba_<class>' columns (model's class order).\n\n"
    "Example: modelrouter predict-proba input.csv -o - -k id",
)(_scoring_command("proba"))


@app.command(short_help="List the configured models: path, sha256, inputs, classes.")
def models(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the models as JSON on stdout.")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the configured model types: file, sha256, whether it loads, inputs, classes, pool size.

    The table (or --json) goes to stdout, so it can be piped: modelrouter models | grep sha256
    """
    with errors_to_exit(debug), warnings_to_stderr(quiet):
        from modelrouter.tools.inspection import describe_models

        described = describe_models(config)
        if as_json:
            json.dump(described, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            render.models_table([_model_row(d) for d in described["models"]])
        broken = [d for d in described["models"] if not d["loads"]]
        for d in broken:
            render.error(f"{d['model_type']}: {d['error']}")
        if broken:
            raise typer.Exit(EXIT_MODEL)


def _model_row(d: dict[str, Any]) -> dict[str, str]:
    inputs = d["inputs"]
    names = inputs["names"] or [f"<{inputs['width']} unnamed>"]
    shown = "\n".join(f"{n}: {t}" for n, t in zip(names, inputs["dtypes"], strict=False))
    size = d.get("file_size")
    versions = ", ".join(f"{k} {v}" for k, v in (d.get("versions") or {}).items())
    opsets = d.get("opset") or {}
    opset = "\nopset " + ", ".join(f"{k} {v}" for k, v in sorted(opsets.items())) if opsets else ""
    return {
        "type": d["model_type"] + (" (default)" if d["default"] else ""),
        "format": d["format"],
        "path": d["path"],
        "size": f"{size:,} bytes" if size is not None else "(missing)",
        "built with": (versions or "unknown") + opset,
        "sha256": d["sha256"],
        "pinned": "yes (sha256 checked before loading)" if d["pinned"] else "no",
        "loads": "yes" if d["loads"] else f"no: {d['error']}",
        "inputs": shown,
        "classes": ", ".join(str(c) for c in d["classes"]) if d["classes"] is not None else "(regressor)",
        "pool size": str(d["pool_size"]),
    }


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    # Arrow's bundled allocator keeps freed chunk buffers mapped: peak RSS for 1M rows was
    # 372 MiB with it and 290 MiB with the system allocator, at the same speed (README,
    # Performance). It is chosen when pyarrow first loads, so it must be set before that;
    # a value the user exported wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    install_signal_handlers()
    try:
        app(args=argv, prog_name="modelrouter")
    except Interrupted as exc:  # arrived outside a command body (e.g. while parsing)
        render.error(f"interrupted by {signal.Signals(exc.signum).name}")
        hard_exit(128 + exc.signum)
    except SystemExit as exc:  # how Click ends every command
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        settle(code)  # a signal during interpreter shut-down exits with this code, quietly
        raise


tooling.register(app)  # convert, compare, inspect: listed after the scoring commands


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[
        str, typer.Option(metavar="ADDR", help="Address to bind (all interfaces: 0.0.0.0).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="N", min=0, max=65535, help="TCP port (0: any free one).")
    ] = 8000,
    pool_size: PoolSizeOpt = None,
    timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", min=0, help="How long a request waits for a free instance before a 503."
        ),
    ] = 10.0,
    max_rows: Annotated[
        int, typer.Option(metavar="N", min=1, help="Rows per request; more is a 413.")
    ] = 100_000,
    max_body_bytes: Annotated[
        int, typer.Option(metavar="N", min=1, help="Request body size in bytes; more is a 413.")
    ] = 32 << 20,
    max_batch_rows: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=0,
            max=1_000_000,
            help="Score requests waiting for the same pool together, up to N rows per model "
            "call (0: off, every request borrows on its own).",
        ),
    ] = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Serve the models over HTTP, one pool per configured type.

    POST /predict, /predict_proba; GET /pool/stats, /healthz, /metrics, /docs. Stops gracefully
    on SIGTERM/SIGINT (requests in flight are answered) and exits 0.
    """
    with errors_to_exit(debug), warnings_to_stderr(quiet):
        from modelrouter.serve import ServeConfig
        from modelrouter.serve import serve as run_service

        settings = ServeConfig(
            config=config,
            pool_size=pool_size,
            timeout=timeout,
            max_rows=max_rows,
            max_body_bytes=max_body_bytes,
            max_batch_rows=max_batch_rows,
            debug=debug,
        )
        run_service(settings, host, port, announce=(lambda line: None) if quiet else render.note)
