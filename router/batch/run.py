"""One scoring run: configuration → pool → streaming reader → ordered scoring → atomic writer.

Everything here is plain library code (no typer, no rich); ``modelrouter.cli.main`` parses options into
:class:`RunOptions`, calls :func:`score_file` and renders the :class:`RunSummary`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from modelrouter import (
    DataError,
    InvalidOptionError,
    ModelPool,
    ModelType,
    Settings,
    get_router,
    load_pool,
    load_settings,
)
from modelrouter.backends import InputSchema, OutputSpec
from modelrouter.batch.chunk_loop import ProgressSink, score_chunks
from modelrouter.batch.dataio import FileFormat, InputFile, detect_format, open_input, open_table
from modelrouter.batch.explaining import explainer_for, explanation_fields
from modelrouter.batch.options import DEFAULT_CHUNK_SIZE, RunOptions, default_delimiter
from modelrouter.batch.output_columns import as_written, output_schema
from modelrouter.batch.provenance import provenance
from modelrouter.batch.run_checks import (
    check_decimal_mark,
    check_error_budget,
    check_unchanged,
    delimiter_hint,
    over_error_budget,
)
from modelrouter.batch.run_outputs import (
    check_outputs_writable,
    kept_types,
    open_rejects,
    output_target,
    rejects_target,
    write_style,
)
from modelrouter.batch.summary import RunSummary
from modelrouter.batch.targets import (
    default_output,
    default_rejects,
    require_input,
    resolve_output,
)
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import (
    BatchOutput,
    RunOutputs,
    open_output,
    text_output,
)
from modelrouter.storage.formats import FORMATS
from modelrouter.storage.input_identity import input_identity, sidecar_for
from modelrouter.storage.location import DataLocation
from modelrouter.storage.tables import DatabaseUrl, TableTarget
from modelrouter.storage.writers import plain_columns

if TYPE_CHECKING:
    from modelrouter.explain import Explainer


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ProgressSink",
    "RunOptions",
    "RunSummary",
    "SideFiles",
    "default_output",
    "default_rejects",
    "require_input",
    "resolve_output",
    "score_file",
]

#: Given the finished summary, the side files (stats JSON, metrics) to commit with the outputs.
SideFiles = Callable[["RunSummary"], Sequence[tuple[storage.Location, str]]]


def prepare_pool(options: RunOptions, threads: int | None = None) -> ModelPool:
    """Load the pool the options ask for and register it with the process's router.

    ``threads`` is each instance's native thread budget (default: cores // pool size).
    Raises :class:`ModelError`/:class:`ConfigError`, and
    :class:`ProbabilitiesUnsupportedError` for predict-proba on a model without them.
    """
    settings = load_settings(options.config)
    kind = _model_type(options, settings)
    pool = load_pool(
        settings,
        kind,
        path=options.model_path,
        pool_size=options.pool_size,
        sha256=options.sha256,
        threads=threads,
        trust=tuple(options.trust),
        fetch=storage.fetch_model,
        classes=options.classes,
        # The first instance scores while the others load; the run waits for them (and
        # fails on their errors) before it commits, see _score_reader.
        background=True,
    )
    router = get_router()
    router.register(kind, pool)
    router.default_type = kind
    if options.mode == "proba":
        pool.prototype.require_probabilities()
    elif options.with_proba or options.threshold is not None:
        _require_for_predict(pool.prototype, options)
    return pool


def _require_for_predict(model: Any, options: RunOptions) -> None:
    """``--with-proba`` needs probabilities, ``--threshold`` a binary classifier with them:
    a model error (exit 4), like predict-proba on a model without probabilities."""
    from modelrouter import ProbabilitiesUnsupportedError

    flag = "--threshold" if options.threshold is not None else "--with-proba"
    spec: OutputSpec = model.outputs
    if not model.has_probabilities:
        # (a multi-output classifier has per-output classes, not model.classes)
        kind = "a classifier without probabilities" if spec.has_classes else "a regressor"
        raise ProbabilitiesUnsupportedError(
            f"{model.path}: the model is {kind} and gives no probabilities, which {flag} needs"
        )
    if options.threshold is None:
        return  # --with-proba: any model with probabilities, multi-output ones included
    if spec.multi:
        raise ProbabilitiesUnsupportedError(
            f"{model.path}: --threshold needs a binary classifier; the model has {spec.describe()}"
        )
    classes = list(model.classes)
    if len(classes) != 2:
        shown = ", ".join(map(str, classes[:10])) + (", …" if len(classes) > 10 else "")
        raise ProbabilitiesUnsupportedError(
            f"{model.path}: --threshold needs a binary classifier; the model has "
            f"{len(classes)} classes ({shown})"
        )


def _not_watched(summary: RunSummary) -> None:
    """The default ``on_summary``: nobody watches the run's counts."""


def _checked_as_the_command_does(options: RunOptions, side_files: SideFiles | None) -> SideFiles | None:
    """The command's checks before a run (cli/cmd_predict.py), for a call from Python; the
    side files (stats JSON, metrics) the options name, unless the caller gives its own."""
    from modelrouter.batch import preflight, run_reports

    if preflight.is_dataset_run(options):
        raise InvalidOptionError(
            "input", f"{options.input} is a directory or glob: score_file scores one file (use the command)"
        )
    preflight.check_stdin(options)
    preflight.check_file_options(options)
    preflight.check_side_folders(options)
    preflight.check_paths(options, None)
    preflight.check_output_format(options)
    if side_files is None and (options.stats_json is not None or options.metrics_textfile is not None):
        reports = run_reports.side_files(options, [])
        return lambda summary: reports(summary.as_dict())
    return side_files


def score_file(
    options: RunOptions,
    progress: ProgressSink | None = None,
    side_files: SideFiles | None = None,
    pool: ModelPool | None = None,
    *,
    final: bool = True,
    on_summary: Callable[[RunSummary], None] | None = None,
    checked: bool = False,
) -> RunSummary:
    """Score ``options.input`` into ``options.output``; return what happened.

    Called from Python, it first makes the command's checks (``checked``: the caller made
    them, as the command and the dataset runner do): no output may be an input or another
    output (:class:`~modelrouter.errors.InvalidOptionError`, the command's exit 2), options
    that mean nothing for this input are refused, and ``stats_json`` / ``metrics_textfile``
    are written with the predictions, as the command writes them.

    ``pool`` is a pool already prepared (:func:`prepare_pool`), for scoring many files with
    one set of loaded models. ``side_files`` gives, from the finished summary, the text files
    (stats JSON, metrics) that are committed together with the predictions and rejects: all
    are finished first, then renamed into place back to back (``final``: this is the run's
    last commit, after which a signal no longer fails the run). ``on_summary`` gets the
    run's :class:`RunSummary` as soon as it exists; its counts grow as chunks are written,
    so an interrupted run can still report what it knew. Raises the router's errors
    (:class:`DataError`, :class:`ModelError`, :class:`OutputError`, …); on any exception
    every output file is left as it was — except the rejects file of a run whose error budget
    was exceeded, which is committed on its own because it explains the failure.
    """
    started = time.perf_counter()
    source = options.input_location
    require_input(source)
    if not checked:
        side_files = _checked_as_the_command_does(options, side_files)
    in_format = None if source.is_table else detect_format(source, options.input_format, role="input")
    with ExitStack() as opened:
        output, out_format, table = output_target(options, opened)
        check_outputs_writable(options, output, table)
        if pool is None:
            pool = prepare_pool(options)
        # The method is chosen (or refused, exit 4) before any row of the input is read.
        explainer = explainer_for(pool, options) if options.explaining else None
        options = _explained_chunk_size(options, explainer)
        loaded = time.perf_counter()
        reader, identity = _open_reader(options, source, in_format, pool.prototype.schema)
        opened.callback(reader.close)
        if options.limit is not None:
            reader = _limited(reader, options.limit)
        return _score_reader(
            reader,
            output,
            out_format,
            pool,
            options,
            progress,
            side_files,
            (started, loaded),
            final,
            identity,
            table,
            explainer,
            on_summary if on_summary is not None else _not_watched,
        )


def _explained_chunk_size(options: RunOptions, explainer: Explainer | None) -> RunOptions:
    """``options`` with the explanation method's chunk size when explaining with the default
    one: an explained row costs a thousand predicted ones, and smaller chunks keep every
    worker busy on a small file and the progress bar moving (docs/explanations.md)."""
    if explainer is not None and options.chunk_size == DEFAULT_CHUNK_SIZE and explainer.method.chunk_rows:
        return replace(options, chunk_size=explainer.method.chunk_rows)
    return options


def _open_reader(
    options: RunOptions, source: DataLocation, in_format: FileFormat | None, schema: InputSchema
) -> tuple[InputFile, dict[str, str]]:
    """The input ``source`` opened (a database table when ``in_format`` is ``None``) and, when
    the run records it (``--resume``), the identity of the input file as it was before reading."""
    # Rejected rows are reported with every column as read, so skip mode reads them all.
    columns = _columns_to_read(schema, options.keep, options.keep_all or options.on_error == "skip")
    if in_format is None:
        table = open_table(
            DatabaseUrl.parse(options.input, option="INPUT"),
            table=options.table,
            query=options.query,
            chunk_size=options.chunk_size,
            columns=columns,
        )
        return table, {}
    identity = input_identity(source.target) if options.record_input else {}
    reader = open_input(
        source,
        in_format,
        delimiter=options.delimiter or source.delimiter or default_delimiter(options),
        chunk_size=options.chunk_size,
        columns=columns,
        keep_text=True,  # kept and rejected CSV cells stay as written; see nulls.feature_nulls
        keep=options.keep,
        decimal=options.decimal,
    )
    return reader, identity


def _limited(reader: InputFile, limit: int) -> InputFile:
    """``reader`` cut after its first ``limit`` rows (``--limit``): the rest is never read."""

    def batches() -> Iterator[pa.RecordBatch]:
        left = limit
        try:
            for batch in reader.batches:
                if batch.num_rows >= left:
                    yield batch.slice(0, left)
                    return
                left -= batch.num_rows
                yield batch
        finally:
            reader.close()

    total = None if reader.total_rows is None else min(reader.total_rows, limit)
    return dataclasses.replace(reader, batches=batches(), total_rows=total)


def _score_reader(
    reader: InputFile,
    output: DataLocation,
    out_format: FileFormat,
    pool: ModelPool,
    options: RunOptions,
    progress: ProgressSink | None,
    side_files: SideFiles | None,
    clock: tuple[float, float],
    final: bool,
    identity: dict[str, str],
    table: TableTarget | None = None,
    explainer: Explainer | None = None,
    on_summary: Callable[[RunSummary], None] = _not_watched,
) -> RunSummary:
    """Score every row of ``reader`` into ``output`` (or ``table``) and commit all the run's
    writes at once; see :func:`score_file`, which opened ``reader``."""
    model = pool.prototype
    available = reader.schema.names
    _check_keep(reader, options.keep)
    # A pandas index or a column without a name describe rows: never a positional feature
    # (section 4's "columns not named with -k").
    exclude = [*options.keep, *reader.index_columns, *reader.unnamed_columns]
    resolved = _resolve_features(model.schema, reader, exclude)
    check_decimal_mark(reader, pool.model_type, exclude, options)
    kept = list(available) if options.keep_all else list(dict.fromkeys(options.keep))
    out_schema = output_schema(
        reader.schema,
        kept,
        model,
        options.mode,
        options.with_proba,
        reader.name,
        explanation_fields(explainer, model, options, resolved, reader.name),
    )
    summary = _new_summary(reader, output, pool, options, explainer)
    on_summary(summary)
    rejects_at = rejects_target(options, output)
    if rejects_at is not None:
        summary.rejects = rejects_at.text

    # Every file opened here is removed again unless the run reaches its commit.
    with ExitStack() as cleanup:
        outputs = RunOutputs()
        cleanup.callback(outputs.abort)
        made_from = _made_from(pool, options, reader.name, identity, explainer)
        rejects: BatchOutput | None = None
        if rejects_at is not None:
            rejects = open_rejects(rejects_at, reader.schema, options, made_from)
            cleanup.callback(rejects.abort)
        writer: BatchOutput
        if table is not None:
            writer = table.start(out_schema)  # a staging table, in the output's transaction
        else:
            style = write_style(output, out_format, options, made_from, plain_columns(out_schema, kept))
            writer = open_output(output, out_format, as_written(out_schema, out_format), style)
        cleanup.callback(writer.abort)
        summary.chunks = score_chunks(
            reader,
            writer,
            rejects,
            out_schema,
            pool.model_type,
            kept,
            features=frozenset(resolved),
            options=options,
            summary=summary,
            progress=progress,
            started=clock[0],
            explainer=explainer,
            retype=kept_types(options, reader, writer, kept),
        )
        _check_finished(summary, rejects, pool, options, clock)
        # One commit for everything the run writes: rejects, side files, predictions last.
        if rejects is not None:
            outputs.add(rejects, counted=False)
        for path, text in side_files(summary) if side_files is not None else ():
            outputs.add(text_output(path, text), counted=False)
        outputs.add(writer)
        if identity:
            check_unchanged(options.input_location, identity)
            if FORMATS[out_format].sidecar and not output.is_stream:
                # After the output: an interruption between the renames leaves an old record,
                # which does not match, so --resume redoes the file rather than trust it.
                sidecar = sidecar_for(output.target)
                outputs.add(text_output(sidecar, json.dumps(made_from, indent=2) + "\n"), counted=False)
        outputs.commit(final=final)  # abort() after a commit is a no-op
    return summary


def _check_keep(reader: InputFile, keep: Sequence[str]) -> None:
    """Every column named with ``--keep`` is in the input; :class:`DataError` naming the
    missing ones otherwise."""
    missing = [k for k in keep if k not in reader.schema.names]
    if missing:
        names = ", ".join(repr(k) for k in missing)
        raise DataError(
            f"{reader.name}: column {names} given with --keep is not in the input{delimiter_hint(reader)}"
        )


def _resolve_features(schema: InputSchema, reader: InputFile, exclude: Sequence[str]) -> tuple[str, ...]:
    """The input columns the model is fed, in model order; :class:`DataError` naming the
    input (and a delimiter that reads it better) when the file lacks some. Checked against
    every column of the file, not just those read, so the error lists its real columns."""
    try:
        schema.resolve(reader.all_columns or reader.schema.names, exclude=exclude)
        return schema.resolve(reader.schema.names, exclude=exclude)
    except DataError as exc:
        raise DataError(f"{reader.name}: {exc}{delimiter_hint(reader)}", column=exc.column) from None


def _new_summary(
    reader: InputFile, output: DataLocation, pool: ModelPool, options: RunOptions, explainer: Explainer | None
) -> RunSummary:
    """The run's summary before any row is scored: what is read, written and how."""
    summary = RunSummary(
        input=reader.name,
        output="<stdout>" if output.is_stream else output.text,
        model_type=pool.model_type,
        model_path=str(pool.path),
        workers=options.workers or pool.size,
        chunk_size=options.chunk_size,
    )
    if explainer is not None:
        summary.explanation_space = str(explainer.space)
        summary.explanation_method = explainer.method.name
    return summary


def _made_from(
    pool: ModelPool,
    options: RunOptions,
    input_name: str,
    identity: dict[str, str],
    explainer: Explainer | None,
) -> dict[str, str]:
    """The provenance written into the outputs (and the ``--resume`` record)."""
    made_from = provenance(pool, options, input_name) | identity
    if explainer is not None:
        made_from["modelrouter.explanation_space"] = str(explainer.space)
        made_from["modelrouter.explanation_method"] = explainer.method.name
    return made_from


def _check_finished(
    summary: RunSummary,
    rejects: BatchOutput | None,
    pool: ModelPool,
    options: RunOptions,
    clock: tuple[float, float],
) -> None:
    """What must hold before the commit, and the run's timings.

    A run over its error budget commits its rejects alone (docs/specification.md §8: they
    explain the failure; no predictions) and raises. Every pool instance must have loaded:
    a later one that failed fails the run (exit 4), even when the first instance scored the
    whole input alone.
    """
    if over_error_budget(summary, options.max_error_rate):
        if rejects is not None:
            RunOutputs([rejects]).commit(final=False)
            summary.rejects_committed = True
        # The failed run's stats JSON reports its pools as a finished run does.
        summary.pools = {str(k): v for k, v in get_router().stats().items()}
        check_error_budget(summary, options.max_error_rate)
    pool.wait_loaded()
    started, loaded = clock
    summary.wall_seconds = time.perf_counter() - started
    summary.scoring_seconds = time.perf_counter() - loaded
    summary.pools = {str(k): v for k, v in get_router().stats().items()}


def _model_type(options: RunOptions, settings: Settings) -> ModelType:
    if options.model_type is not None:
        return options.model_type
    if options.model_path is not None:
        return ModelType.from_path(options.model_path)
    default = settings.default_model_type
    if default is None:
        from modelrouter import ConfigError

        # Say which configuration, and why it has no type (ONNX may be switched off).
        why = "it configures no model"
        if not settings.enable_onnx:
            why += f" it may use (onnx is disabled: {settings.onnx_switch})"
        raise ConfigError(f"{settings.source}: no model type to use: {why}; pass --model-type or --model")
    return default


def _columns_to_read(schema: InputSchema, keep: Sequence[str], keep_all: bool) -> list[str] | None:
    """Read only the features and kept columns when the model knows its feature names.

    A model whose library may have changed the names (``name_rule``) is matched against the
    file's own header, so every column is read.
    """
    if schema.names is None or keep_all or schema.name_rule is not None:
        return None
    return list(dict.fromkeys([*schema.names, *keep]))
