"""One scoring run: configuration → pool → streaming reader → ordered scoring → atomic writer.

Everything here is plain library code (no typer, no rich); ``modelrouter.cli.main`` parses options into
:class:`RunOptions`, calls :func:`score_file` and renders the :class:`RunSummary`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
from modelrouter import (
    DataError,
    ModelFaultError,
    ModelPool,
    ModelType,
    get_router,
    load_pool,
    load_settings,
)
from modelrouter.backends import InputSchema, OutputSpec, Prediction
from modelrouter.batch import memory
from modelrouter.batch.dataio import FileFormat, InputFile, detect_format, open_input, open_table
from modelrouter.batch.explaining import (
    explained,
    explainer_for,
    explanation_fields,
)
from modelrouter.batch.kept_types import KeptTypes
from modelrouter.batch.nulls import decimal_commas, feature_nulls
from modelrouter.batch.options import DEFAULT_CHUNK_SIZE, RunOptions, default_delimiter
from modelrouter.batch.output_columns import (
    as_written,
    output_batch,
    output_schema,
    thresholded,
)
from modelrouter.batch.rejects import rejects_batch, rejects_schema, score_tolerantly
from modelrouter.batch.scoring import run_ordered
from modelrouter.batch.summary import RunSummary
from modelrouter.storage import object_store as storage
from modelrouter.storage.cells import to_csv_cells
from modelrouter.storage.commit import (
    AtomicOutput,
    BatchOutput,
    RunOutputs,
    check_writable,
    open_output,
    text_output,
)
from modelrouter.storage.formats import compression_of, data_suffix, split_name, suffix_delimiter
from modelrouter.storage.input_identity import IDENTITY_PREFIX, input_identity, sidecar_for
from modelrouter.storage.tables import DatabaseUrl, TableTarget, is_table_url
from modelrouter.storage.writers import WriteStyle, plain_columns

if TYPE_CHECKING:
    from modelrouter.explain import Explainer


class ProgressSink(Protocol):
    """What the scoring loop reports progress to (the shell renders it; tests count it).

    A sink may also have ``position(done, total)``: the bytes of the input read so far and
    its size, given after each chunk when they are known (CSV from a file or an object, whose
    row count is not): the shell shows a percentage and an ETA from them.
    """

    def advance(self, rows: int) -> None: ...


__all__ = [
    "DEFAULT_CHUNK_SIZE",
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


def default_rejects(output: str) -> str:
    """``<output stem>.rejects.csv`` beside the output (``day.csv.gz`` → ``day.rejects.csv``)."""
    path = storage.as_location(output)
    stem, _, _ = split_name(path.name)
    return str(path.with_name(f"{stem}.rejects.csv"))


def default_output(input_path: str) -> str:
    """``<input stem>.predictions<input suffix>`` beside the input (stdin: stdout); the whole
    data suffix stays together: ``day.csv.gz`` → ``day.predictions.csv.gz``."""
    if input_path == "-":
        return "-"
    path = storage.as_location(input_path)
    stem, _, _ = split_name(path.name)
    return str(path.with_name(f"{stem}.predictions{data_suffix(path.name)}"))


def require_input(input_path: str) -> None:
    """A local INPUT that is not there is an input error that says so (exit 3), raised before
    the output is resolved or a format is guessed from the missing name.

    ``-``, URIs and glob patterns (whose matches the dataset planner counts) are not checked.
    """
    if input_path == "-" or storage.is_uri(input_path):
        return
    pattern = any(c in input_path for c in "*?[")
    try:
        os.stat(input_path)
    except FileNotFoundError:
        if pattern:
            return
        if os.path.lexists(input_path.rstrip("/" + os.sep) or input_path):
            raise DataError(
                f"{input_path}: the input is a dangling symlink (its target does not exist)"
            ) from None
        raise DataError(f"{input_path}: the input does not exist (no such file or folder)") from None
    except NotADirectoryError:
        raise DataError(f"{input_path}: the input is not a folder (a file name ends with '/')") from None
    except OSError as exc:
        if not pattern:
            raise DataError(f"{input_path}: cannot read the input ({exc.strerror})") from None


def resolve_output(input_path: str, output: str | None) -> str:
    """Where a single-file run writes: ``-o`` as given, or the default name.

    ``-o`` naming an existing directory (or ending in a path separator) means "the default
    file name, inside that folder", as ``cp file dir/`` does.
    """
    if output is None:
        return default_output(input_path)
    if storage.is_uri(output):
        if not output.endswith("/"):
            return output
        # A prefix: the default name inside it, as for a local folder.
        name = (
            "stdin.predictions.csv"
            if input_path == "-"
            else storage.as_location(default_output(input_path)).name
        )
        return str(storage.Uri.parse(output) / name)
    if output != "-" and (output.endswith(("/", os.sep)) or Path(output).is_dir()):
        folder = Path(output)
        if not folder.is_dir():
            from modelrouter.errors import OutputError

            raise OutputError(f"{output}: output folder does not exist")
        name = "stdin.predictions.csv" if input_path == "-" else Path(default_output(input_path)).name
        return str(folder / name)
    return output


@dataclass(frozen=True)
class _Chunk:
    offset: int  # 0-based index of the chunk's first row in the file
    batch: pa.RecordBatch


def prepare_pool(options: RunOptions, threads: int | None = None) -> ModelPool:
    """Load the pool the options ask for and register it with the process's router.

    ``threads`` is each instance's native thread budget (default: cores // pool size).
    Raises :class:`ModelError`/:class:`ConfigError`, and
    :class:`ProbabilitiesUnsupportedError` for predict-proba on a model without them.
    """
    settings = load_settings(options.config)
    kind = _model_type(options, settings.default_model_type)
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


def score_file(
    options: RunOptions,
    progress: ProgressSink | None = None,
    side_files: SideFiles | None = None,
    pool: ModelPool | None = None,
    *,
    final: bool = True,
    on_summary: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Score ``options.input`` into ``options.output``; return what happened.

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
    require_input(options.input)
    source = is_table_url(options.input)
    in_format = None if source else detect_format(options.input, options.input_format, role="input")
    with ExitStack() as opened:
        table: TableTarget | None = None
        out_format: FileFormat
        if options.output is not None and is_table_url(options.output):
            assert options.to_table is not None  # checked with the options (option_checks.tables)
            # Reached, and --if-exists checked, before the models load and any row is read.
            table = TableTarget(
                DatabaseUrl.parse(options.output, option="--output"),
                options.to_table,
                options.if_exists or "fail",
            )
            opened.callback(table.abort)  # a no-op once the run committed
            output, out_format = table.name, "parquet"  # (unused: a table keeps Arrow's types)
        else:
            output = resolve_output(options.input, options.output)
            # stdout has no name to tell the format by: CSV unless --output-format says
            # otherwise (never another format than asked).
            out_format = (
                _stdout_format(options)
                if output == "-"
                else detect_format(output, options.output_format, role="output")
            )
        rejects = options.rejects
        if rejects is None and table is None and options.on_error == "skip" and output != "-":
            rejects = default_rejects(output)
        for path in (None if table is not None else output, rejects):
            if path is not None:
                storage.check_output(path)  # a missing bucket fails before the models load
                check_writable(path)  # a folder missing, a directory in the way: before reading
        if pool is None:
            pool = prepare_pool(options)
        # The method is chosen (or refused, exit 4) before any row of the input is read.
        explainer = explainer_for(pool, options) if options.explaining else None
        if explainer is not None and options.chunk_size == DEFAULT_CHUNK_SIZE and explainer.method.chunk_rows:
            # An explained row costs a thousand predicted ones: smaller chunks keep every
            # worker busy on a small file and the progress bar moving (docs/explanations.md).
            options = replace(options, chunk_size=explainer.method.chunk_rows)
        loaded = time.perf_counter()
        model = pool.prototype
        # Rejected rows are reported with every column as read, so skip mode reads them all.
        columns = _columns_to_read(model.schema, options.keep, options.keep_all or options.on_error == "skip")
        identity: dict[str, str] = {}
        if in_format is None:
            reader = open_table(
                DatabaseUrl.parse(options.input, option="INPUT"),
                table=options.table,
                query=options.query,
                chunk_size=options.chunk_size,
                columns=columns,
            )
        else:
            if options.record_input:
                identity = input_identity(storage.as_location(options.input))
            reader = open_input(
                options.input,
                in_format,
                delimiter=options.delimiter or suffix_delimiter(options.input) or default_delimiter(options),
                chunk_size=options.chunk_size,
                columns=columns,
                keep_text=True,  # kept and rejected CSV cells stay as written; see nulls.feature_nulls
                keep=options.keep,
                decimal=options.decimal,
            )
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
    output: str,
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
    model = pool.prototype
    keep = list(options.keep)
    available = reader.schema.names
    missing_keep = [k for k in keep if k not in available]
    if missing_keep:
        names = ", ".join(repr(k) for k in missing_keep)
        raise DataError(
            f"{reader.name}: column {names} given with --keep is not in the input{_delimiter_hint(reader)}"
        )
    # A pandas index or a column without a name describe rows: never a positional feature
    # (section 4's "columns not named with -k").
    exclude = [*keep, *reader.index_columns, *reader.unnamed_columns]
    try:
        # Fail before writing anything, listing the file's real columns, not just those read.
        model.schema.resolve(reader.all_columns or available, exclude=exclude)
        features = frozenset(model.schema.resolve(available, exclude=exclude))
    except DataError as exc:
        raise DataError(f"{reader.name}: {exc}{_delimiter_hint(reader)}", column=exc.column) from None
    _check_decimal_mark(reader, pool.model_type, exclude, options)
    kept = list(available) if options.keep_all else list(dict.fromkeys(keep))
    out_schema = output_schema(
        reader.schema,
        kept,
        model,
        options.mode,
        options.with_proba,
        reader.name,
        explanation_fields(explainer, model, options, model.schema.resolve(available, exclude=exclude)),
    )
    summary = RunSummary(
        input=reader.name,
        output="<stdout>" if output == "-" else output,
        model_type=pool.model_type,
        model_path=str(pool.path),
        workers=options.workers or pool.size,
        chunk_size=options.chunk_size,
    )
    if explainer is not None:
        summary.explanation_space = str(explainer.space)
        summary.explanation_method = explainer.method.name
    on_summary(summary)
    if options.on_error == "skip":
        if options.rejects is None and output == "-":
            from modelrouter import ConfigError

            raise ConfigError("--rejects is required with --on-error skip and -o -")
        summary.rejects = options.rejects or default_rejects(output)

    # Every file opened here is removed again unless the run reaches its commit.
    with ExitStack() as cleanup:
        outputs = RunOutputs()
        cleanup.callback(outputs.abort)
        rejects: BatchOutput | None = None
        provenance = _provenance(pool, options, reader.name) | identity
        if explainer is not None:
            provenance["modelrouter.explanation_space"] = str(explainer.space)
            provenance["modelrouter.explanation_method"] = explainer.method.name
        if summary.rejects is not None:
            rejects_format = detect_format(summary.rejects, None, role="output", option="--rejects")
            rejected = rejects_schema(reader.schema)
            rejects = open_output(
                summary.rejects,
                rejects_format,
                as_written(rejected, rejects_format),
                _style(summary.rejects, rejects_format, options, provenance),
            )
            cleanup.callback(rejects.abort)
        writer: BatchOutput
        if table is not None:
            writer = table.start(out_schema)  # a staging table, in the output's transaction
        else:
            writer = open_output(
                None if output == "-" else output,
                out_format,
                as_written(out_schema, out_format),
                _style(output, out_format, options, provenance, plain_columns(out_schema, kept)),
            )
        cleanup.callback(writer.abort)
        summary.chunks = _score_chunks(
            reader,
            writer,
            rejects,
            out_schema,
            pool.model_type,
            kept,
            features,
            options,
            summary,
            progress,
            started=clock[0],
            explainer=explainer,
            retype=_kept_types(options, reader, writer, kept),
        )
        if _over_error_budget(summary, options.max_error_rate):
            if rejects is not None:
                RunOutputs([rejects]).commit(
                    final=False
                )  # docs/specification.md §8: the rejects explain the failure; no predictions
            _check_error_budget(summary, options.max_error_rate)
        # Every instance loaded: a later one that failed fails the run (exit 4) before the
        # commit, even when the first instance scored the whole input alone.
        pool.wait_loaded()
        started, loaded = clock
        summary.wall_seconds = time.perf_counter() - started
        summary.scoring_seconds = time.perf_counter() - loaded
        summary.pools = {str(k): v for k, v in get_router().stats().items()}
        # One commit for everything the run writes: rejects, side files, predictions last.
        if rejects is not None:
            outputs.add(rejects)
        for path, text in side_files(summary) if side_files is not None else ():
            outputs.add(text_output(path, text))
        outputs.add(writer)
        if identity:
            _check_unchanged(options.input, identity)
            if out_format == "csv" and output != "-":
                # After the output: an interruption between the renames leaves an old record,
                # which does not match, so --resume redoes the file rather than trust it.
                sidecar = sidecar_for(storage.as_location(output))
                outputs.add(text_output(sidecar, json.dumps(provenance, indent=2) + "\n"))
        outputs.commit(final=final)  # abort() after a commit is a no-op
    return summary


def _kept_types(
    options: RunOptions, reader: InputFile, writer: BatchOutput, kept: Sequence[str]
) -> KeptTypes | None:
    """What types the kept CSV columns of a Parquet file written to a local path (one that can
    be rewritten until the commit); ``None`` for every other output (docs/formats.md)."""
    if options.kept_types and reader.text_nulls and isinstance(writer, AtomicOutput) and writer.rewritable:
        return KeptTypes(writer, kept)
    return None


def _check_unchanged(source: str, identity: dict[str, str]) -> None:
    """A local input whose size or mtime changed while it was scored gave rows of two
    versions: an input error (exit 3), never an output recorded as made from either."""
    location = storage.as_location(source)
    if not isinstance(location, Path):
        return
    try:
        now = location.stat()
    except OSError as exc:
        raise DataError(f"{source}: the input went away while it was scored ({exc.strerror})") from None
    if (str(now.st_size), str(now.st_mtime_ns)) != (
        identity.get(f"{IDENTITY_PREFIX}size"),
        identity.get(f"{IDENTITY_PREFIX}mtime_ns"),
    ):
        raise DataError(f"{source}: the input changed while it was scored; nothing was written for it")


def _stdout_format(options: RunOptions) -> FileFormat:
    """What ``-o -`` writes: the format ``--output-format`` names, else CSV (never another
    format than asked)."""
    return options.output_format or "csv"


def _style(
    path: str,
    fmt: FileFormat,
    options: RunOptions,
    metadata: dict[str, str],
    plain: frozenset[str] = frozenset(),
) -> WriteStyle:
    """How the output at ``path`` is written: its delimiter and compression (CSV; ``-`` is
    plain CSV) or its page compression, provenance metadata and columns written without a
    dictionary (Parquet)."""
    if fmt == "parquet":
        return WriteStyle(parquet_compression=options.compression or "snappy", metadata=metadata, plain=plain)
    stream = path == "-"
    return WriteStyle(
        delimiter=options.delimiter
        or (None if stream else suffix_delimiter(path))
        or default_delimiter(options),
        decimal=options.decimal,
        compression=None if stream else compression_of(path),
    )


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _model_sha256(pool: ModelPool) -> str:
    """The model's sha256: the pool's when it knows it (pinned, or read from a store), else
    the local file's (cached per path, size and mtime: datasets hash it once)."""
    from modelrouter.pool import sha256_of

    path = pool.path
    if pool.sha256 is not None:
        return pool.sha256
    if not isinstance(path, Path):
        return "unknown"
    try:
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = sha256_of(path)
        return _DIGESTS[key]
    except OSError:
        return "unknown"


def _provenance(pool: ModelPool, options: RunOptions, source: str) -> dict[str, str]:
    """Key-value metadata a Parquet output carries: where its predictions came from."""
    from importlib.metadata import version

    path = str(pool.path)
    shown = path if "://" in path else os.path.abspath(path)
    command = "predict-proba" if options.mode == "proba" else "predict"
    metadata = {
        "modelrouter.version": version("modelrouter"),
        "modelrouter.command": command,
        "modelrouter.input": source if source.startswith("<") or "://" in source else os.path.abspath(source),
        "modelrouter.model_type": str(pool.model_type),
        "modelrouter.model_path": shown,
        "modelrouter.model_sha256": _model_sha256(pool),
        "modelrouter.created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if options.threshold is not None:
        metadata["modelrouter.threshold"] = repr(options.threshold)
    return metadata


def _delimiter_hint(reader: InputFile) -> str:
    """When a CSV header came out as one column that holds another delimiter, say which
    (and the decimal mark the first rows use): the exact flags that read the file."""
    if reader.dialect is None or not reader.dialect.header_is_one_column:
        return ""
    return f"; the header is one column and {reader.dialect.describe()}"


def _check_decimal_mark(
    reader: InputFile, kind: ModelType, exclude: Sequence[str], options: RunOptions
) -> None:
    """Refuse, before any row is scored, numeric feature columns whose first values are
    written with a decimal comma while ``--decimal`` is ``.``: every row would fail."""
    if reader.dialect is None or options.decimal == reader.dialect.decimal:
        return
    numeric = _decimal_comma_columns(kind, reader.schema, exclude)
    found = [
        (c, example)
        for c, example in zip(reader.dialect.comma_columns, reader.dialect.examples, strict=True)
        if c in numeric
    ]
    if found:
        column, example = found[0]
        raise DataError(
            f"{reader.name}: column {column!r} holds numbers with a decimal comma ({example!r}); "
            f"{reader.dialect.describe()}",
            column=column,
        )


def _over_error_budget(summary: RunSummary, max_rate: float) -> bool:
    return bool(summary.rows_rejected) and summary.rows_rejected / summary.rows_in > max_rate


def _check_error_budget(summary: RunSummary, max_rate: float) -> None:
    if not summary.rows_rejected:
        return
    rate = summary.rows_rejected / summary.rows_in
    if rate > max_rate:
        shown, limit = _distinct_percents(rate, max_rate)
        raise DataError(
            f"{summary.input}: {summary.rows_rejected:,} of {summary.rows_in:,} rows rejected "
            f"({shown}), above --max-error-rate {max_rate:g} ({limit}); no predictions written, "
            f"see {summary.rejects}"
        )


def _distinct_percents(rate: float, limit: float) -> tuple[str, str]:
    """Both as percentages, with just enough decimals that the two differ visibly and a
    non-zero limit does not read as zero."""
    for decimals in range(2, 16):
        shown, bound = f"{rate:.{decimals}%}", f"{limit:.{decimals}%}"
        if shown != bound and (limit == 0 or float(bound[:-1]) != 0):
            return shown, bound
    return f"{rate:%}", f"{limit:%}"


def _model_type(options: RunOptions, default: ModelType | None) -> ModelType:
    if options.model_type is not None:
        return options.model_type
    if options.model_path is not None:
        return ModelType.from_path(options.model_path)
    if default is None:
        from modelrouter import ConfigError

        raise ConfigError("no model type configured; pass --model-type or --model")
    return default


def _columns_to_read(schema: InputSchema, keep: Sequence[str], keep_all: bool) -> list[str] | None:
    """Read only the features and kept columns when the model knows its feature names.

    A model whose library may have changed the names (``name_rule``) is matched against the
    file's own header, so every column is read.
    """
    if schema.names is None or keep_all or schema.name_rule is not None:
        return None
    return list(dict.fromkeys([*schema.names, *keep]))


def _decimal_comma_columns(kind: ModelType, schema: pa.Schema, exclude: Sequence[str]) -> frozenset[str]:
    """The feature columns the model takes as numbers (not those it takes as text): where
    ``--decimal ,`` rewrites ``14,23`` as ``14.23``."""
    prototype = get_router().pool(kind).prototype
    resolved = prototype.schema.resolve(schema.names, exclude)
    return frozenset(
        name for name, dtype in zip(resolved, prototype.schema.dtypes, strict=False) if dtype != "string"
    )


def _report_progress(progress: ProgressSink, reader: InputFile, rows: int) -> None:
    """Rows scored, and (see :class:`ProgressSink`) the input's bytes read when known."""
    progress.advance(rows)
    position = getattr(progress, "position", None)
    if position is not None and reader.size and reader.bytes_read is not None:
        position(min(reader.bytes_read(), reader.size), reader.size)


def _score_chunks(
    reader: InputFile,
    writer: BatchOutput,
    rejects: BatchOutput | None,
    schema: pa.Schema,
    kind: ModelType,
    kept: Sequence[str],
    features: frozenset[str],
    options: RunOptions,
    summary: RunSummary,
    progress: ProgressSink | None,
    *,
    started: float,
    explainer: Explainer | None = None,
    retype: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> int:
    router = get_router()
    workers = summary.workers
    # What the model is asked for, and what is written (--threshold: labels from the
    # probabilities; --with-proba: both).
    write_labels = options.mode == "predict"
    write_probabilities = options.mode == "proba" or options.with_proba
    ask_labels = write_labels and options.threshold is None
    probabilities = write_probabilities or options.threshold is not None
    exclude = [*options.keep, *reader.index_columns, *reader.unnamed_columns]
    rejected = None if rejects is None else rejects_schema(reader.schema)
    numeric_text = (
        _decimal_comma_columns(kind, reader.schema, exclude) if options.decimal == "," else frozenset()
    )

    def chunks() -> Any:
        offset = 0
        for batch in reader.batches:
            yield _Chunk(offset, batch)
            offset += batch.num_rows

    def work(chunk: _Chunk) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
        # The model sees the null spellings of its feature columns as nulls; the output and
        # the rejects get chunk.batch, the text as read.
        fed = feature_nulls(chunk.batch, features) if reader.text_nulls else chunk.batch
        if numeric_text:
            fed = decimal_commas(fed, numeric_text)
        try:
            with router.acquire_model(kind) as model:

                def score(batch: pa.RecordBatch) -> Prediction:
                    result = model.run(batch, labels=ask_labels, probabilities=probabilities, exclude=exclude)
                    if options.threshold is not None:
                        result = thresholded(result, model.classes, options.threshold)
                    if not write_probabilities:
                        result = Prediction(labels=result.labels, probabilities=None)
                    return result

                if rejects is None:
                    result = score(fed)
                    why = explained(explainer, model, fed, result if ask_labels else None, exclude, options)
                    return _written(output_batch(chunk.batch, kept, result, schema, why), writer), None
                names = model.schema.resolve(fed.schema.names, exclude)
                scored = score_tolerantly(fed, score, model.schema, names)
                kept_rows = fed if not scored.rejections else fed.take(pa.array(scored.kept))
                why = explained(
                    explainer, model, kept_rows, scored.prediction if ask_labels else None, exclude, options
                )
        except (DataError, ModelFaultError) as exc:
            raise _in_file(exc, reader.name, chunk.offset) from None
        good = chunk.batch if not scored.rejections else chunk.batch.take(pa.array(scored.kept))
        bad = (
            _written(rejects_batch(chunk.batch, scored.rejections, chunk.offset, rejected), rejects)
            if scored.rejections and rejected is not None
            else None
        )
        return _written(output_batch(good, kept, scored.prediction, schema, why), writer), bad

    trimmer = memory.Trimmer()

    def consume(chunk: _Chunk, result: tuple[pa.RecordBatch, pa.RecordBatch | None]) -> None:
        batch, bad = result
        # In order, on this thread: a chunk that widens a kept column rewrites what the
        # chunks before it wrote (modelrouter.batch.kept_types).
        writer.write(batch if retype is None else retype(batch))
        if not summary.first_chunk_seconds:
            summary.first_chunk_seconds = time.perf_counter() - started
        if bad is not None and rejects is not None:
            rejects.write(bad)
            summary.rows_rejected += bad.num_rows
        summary.rows_in += chunk.batch.num_rows
        summary.rows_out += batch.num_rows
        if progress is not None:
            _report_progress(progress, reader, chunk.batch.num_rows)
        trimmer.consumed(chunk.batch.nbytes)

    # One chunk read ahead while every worker scores one: each more in flight is a chunk of
    # memory (≈ 2.6 MiB per 32,768 rows × 20 float32 features) for no measured speed.
    window = workers + 1
    if not options.limit_native_threads or kind is ModelType.ONNX:
        # onnxruntime runs on its own intra-op pools, sized per session by the pool's thread
        # budget; inspecting the process's BLAS/OpenMP libraries would only cost time.
        return run_ordered(chunks(), work, consume, workers=workers, max_in_flight=window)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    from threadpoolctl import threadpool_limits

    # Native BLAS/OpenMP pools are process-wide: cap them so workers × threads ≤ cores.
    with threadpool_limits(limits=threads):
        return run_ordered(chunks(), work, consume, workers=workers, max_in_flight=window)


def _in_file(exc: DataError | ModelFaultError, name: str, offset: int) -> DataError | ModelFaultError:
    """A chunk's row error named with the file and its row in the file: the data's fault
    (exit 3), or the model's (exit 4) where one row makes it fail."""
    if isinstance(exc, DataError):
        return DataError(f"{name}: {exc.at_offset(offset)}", column=exc.column, row=None)
    return ModelFaultError(f"{name}: {exc.at_offset(offset)}")


def _written(batch: pa.RecordBatch, output: BatchOutput) -> pa.RecordBatch:
    """``batch`` in the types ``output`` writes (see :mod:`modelrouter.storage.cells`)."""
    return to_csv_cells(batch, output.schema) if output.format == "csv" else batch
