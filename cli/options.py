"""The options shared by modelrouter's commands (Typer ``Annotated`` aliases) and their checks.

Validation that must fail as a usage error (exit 2) lives in option callbacks here, so it runs
while Click parses, before a command body maps exceptions to the other exit codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from modelrouter.batch import option_checks as check
from modelrouter.errors import InvalidOptionError
from modelrouter.limits import MAX_CHUNK_SIZE, MAX_POOL_SIZE, MAX_WORKERS
from modelrouter.model_type import model_type_names, suffix_rules

if TYPE_CHECKING:
    from modelrouter import ModelType

__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_WORKERS",
    "AllowEmptyOpt",
    "BackgroundOpt",
    "ChunkOpt",
    "ClassesOpt",
    "CompressionChoice",
    "CompressionOpt",
    "ConfigOpt",
    "DebugOpt",
    "DecimalChoice",
    "DecimalOpt",
    "DelimiterOpt",
    "EngineChoice",
    "EngineOpt",
    "ExplainOpt",
    "FormatChoice",
    "IfExistsChoice",
    "IfExistsOpt",
    "InputArg",
    "InputFormatOpt",
    "JsonOpt",
    "KeepAllOpt",
    "KeepGoingOpt",
    "KeepOpt",
    "LimitOpt",
    "MaxErrorRateOpt",
    "MaxProbaDiffOpt",
    "MetricsOpt",
    "MinAgreementOpt",
    "ModelOpt",
    "ModelTypeOpt",
    "OnErrorChoice",
    "OnErrorOpt",
    "OutputFormatOpt",
    "OutputOpt",
    "PoolSizeOpt",
    "ProgressOpt",
    "QueryOpt",
    "QuietOpt",
    "ReasonsOpt",
    "RejectsOpt",
    "ResumeOpt",
    "SchedulerOpt",
    "Sha256Opt",
    "StatsJsonOpt",
    "StatsOpt",
    "TableOpt",
    "ThresholdOpt",
    "ToTableOpt",
    "TrustOpt",
    "WithProbaOpt",
    "WorkersOpt",
    "checked_sha256",
    "class_list",
    "complete_model_type",
    "delimiter_option",
    "finite_float",
    "location_option",
    "model_file_policy",
    "model_type_option",
]


def _checked(rule: Callable[..., Any], *args: Any) -> Any:
    """Apply one of the engine's option checks in a Click callback (commands other than
    predict use these): its refusal becomes Click's usage error."""
    try:
        return rule(*args)
    except InvalidOptionError as exc:
        raise typer.BadParameter(exc.reason) from None


class FormatChoice(StrEnum):
    """The data formats (``modelrouter.storage.formats.FORMATS``)."""

    csv = "csv"
    parquet = "parquet"
    jsonl = "jsonl"


# -- shared options ------------------------------------------------------------------------


def location_option(value: str | None) -> str | None:
    """A path argument as given, except a ``file://`` URI: the local path it names."""
    return None if value is None else _checked(check.location, "PATH", value)


InputArg = Annotated[
    str,
    typer.Argument(
        help="Input .csv, .parquet or .pq file; '-' reads CSV from stdin; a directory or quoted "
        "glob scores every file in it (-o then names an output directory); a database URL "
        "(sqlite:///PATH, duckdb:///PATH, postgresql://USER@HOST/DB) with --table or --query.",
        metavar="INPUT",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        metavar="PATH",
        help="Output .csv or .parquet (by suffix); '-' writes CSV to stdout; a database URL "
        "with --to-table. Default: <input stem>.predictions<input suffix> beside the input.",
        show_default=False,
    ),
]


def model_type_option(value: str | None) -> str | None:
    """Validate -t against the router's registry (so a new type needs no CLI change)."""
    kind = _checked(check.model_type, value)
    return None if kind is None else str(kind)


def complete_model_type(incomplete: str) -> list[str]:
    """Shell completion for -t: the model types the router has a backend for."""
    from modelrouter.backends import BACKENDS

    return [str(kind) for kind in BACKENDS if str(kind).startswith(incomplete.lower())]


ModelTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--model-type",
        "-t",
        autocompletion=complete_model_type,
        metavar="TYPE",
        help=f"Model type (pool) to route to: {model_type_names()}. "
        "Default: the configured default type, or inferred from --model's suffix.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,  # not Path: a URI (s3://…) must stay intact
    typer.Option(
        "--model",
        "-m",
        metavar="PATH",
        help=f"Use this model file instead of the configured one ({suffix_rules()}).",
        show_default=False,
    ),
]


def checked_sha256(value: str | None) -> str | None:
    digest: str | None = _checked(check.sha256, value)
    return digest


def class_list(value: str | None) -> str | None:
    """Check --classes (comma-separated labels, none empty, none repeated); normalise spaces."""
    labels = _checked(check.classes, value)
    return None if labels is None else ",".join(labels)


ClassesOpt = Annotated[
    str | None,
    typer.Option(
        "--classes",
        metavar="A,B,…",
        help="Class labels, in probability order, for an ONNX model that records none (config key: classes).",
        show_default=False,
    ),
]
Sha256Opt = Annotated[
    str | None,
    typer.Option(
        "--sha256",
        metavar="HEX",
        help="Refuse to load --model unless its sha256 is this hex digest.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        envvar="MODELROUTER_CONFIG",
        help="Config file (TOML). Default: ./modelrouter.toml, else the built-in one.",
        show_default=False,
    ),
]
KeepOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--keep",
        "-k",
        metavar="COL",
        help="Copy this input column to the output (repeatable).",
        show_default=False,
    ),
]
KeepAllOpt = Annotated[bool, typer.Option("--keep-all", help="Copy every input column to the output.")]
# Numeric options have an upper bound as well as a lower one: a value beyond it is a typo or
# an attack (--chunk-size 99999999999999999999 overflowed deep inside pyarrow, exit 1), and
# it must be a usage error before anything is loaded. README "Limits" lists them.

# The bounds are the engine's (modelrouter.limits), checked by modelrouter.batch.option_checks
# for the library, this command and the service alike.


def finite_float(value: float | None) -> float | None:
    """Refuse NaN (Click's FloatRange lets it through: every comparison with NaN is false)."""
    if value is not None and math.isnan(value):
        raise typer.BadParameter(f"must be a number (got {value})")
    return value


ChunkOpt = Annotated[
    int,
    typer.Option("--chunk-size", metavar="N", help=f"Rows per chunk (1 to {MAX_CHUNK_SIZE:,})."),
]
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit",
        metavar="N",
        help="A trial run: score only the first N rows of each input file, with the same "
        "outputs and checks as a full run.",
        show_default=False,
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        metavar="N",
        help=f"Scoring threads (at most {MAX_WORKERS}). Default: the pool size.",
        show_default=False,
    ),
]
PoolSizeOpt = Annotated[
    int | None,
    typer.Option(
        "--pool-size",
        metavar="N",
        min=1,
        max=MAX_POOL_SIZE,
        help="Model instances in the pool (overrides the config).",
        show_default=False,
    ),
]
InputFormatOpt = Annotated[
    FormatChoice | None,
    typer.Option(
        "--input-format",
        metavar="csv|parquet",
        help="Read the input as this format, whatever its suffix.",
        show_default=False,
    ),
]
OutputFormatOpt = Annotated[
    FormatChoice | None,
    typer.Option(
        "--output-format",
        metavar="csv|parquet",
        help="Write the output as this format, whatever its suffix.",
        show_default=False,
    ),
]
StatsOpt = Annotated[bool, typer.Option("--stats/--no-stats", help="Print the pool-stats table at the end.")]
StatsJsonOpt = Annotated[
    str | None,  # not Path: a URI (s3://…) must stay intact
    typer.Option(
        "--stats-json",
        metavar="PATH",
        help="Also write the run summary and pool stats as JSON.",
        show_default=False,
    ),
]
ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show a progress bar (default: when stderr is a terminal).",
        show_default=False,
    ),
]


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


OnErrorOpt = Annotated[
    OnErrorChoice,
    typer.Option(
        "--on-error",
        metavar="fail|skip",
        help="fail: the first bad row fails the run (exit 3). skip: bad rows go to --rejects "
        "with their row number and reason; the others are scored.",
    ),
]
RejectsOpt = Annotated[
    str | None,  # not Path: a URI (s3://…) must stay intact
    typer.Option(
        "--rejects",
        metavar="PATH",
        help="Where --on-error skip writes rejected rows (.csv or .parquet). "
        "Default: <output stem>.rejects.csv beside the output.",
        show_default=False,
    ),
]
MaxErrorRateOpt = Annotated[
    float,
    typer.Option(
        "--max-error-rate",
        metavar="R",
        help="With --on-error skip: fail (exit 3, no predictions) when rejected/rows exceeds this.",
    ),
]
MetricsOpt = Annotated[
    str | None,  # not Path: a URI (s3://…) must stay intact
    typer.Option(
        "--metrics-textfile",
        metavar="PATH",
        help="Write the run summary and pool stats in Prometheus text format (node_exporter "
        "textfile collector); a failed run writes its exit code and success 0.",
        show_default=False,
    ),
]


class EngineChoice(StrEnum):
    local = "local"
    dask = "dask"


EngineOpt = Annotated[
    EngineChoice,
    typer.Option(
        "--engine",
        metavar="local|dask",
        help="local: this process's thread pool. dask: one task per file on a Dask cluster "
        "(--scheduler ADDRESS, else a local cluster of --workers processes).",
    ),
]


def _checked_scheduler(value: str | None) -> str | None:
    """The Dask engine's check of ``--scheduler`` (the engine imported only when given)."""
    if value is None:
        return None
    from modelrouter.batch.dask_engine import checked_scheduler

    checked: str = _checked(checked_scheduler, value)
    return checked


SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        callback=_checked_scheduler,
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.",
        show_default=False,
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Dataset input: skip files whose output exists and was made from the input as it is "
        "now (size, mtime, sha256 or ETag); rescore stale ones.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr except errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Print tracebacks for errors.")]
TrustOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--trust",
        metavar="TYPE",
        help="skops files: also trust this type (repeatable), beyond the config's [skops] trusted.",
        show_default=False,
    ),
]


def delimiter_option(value: str | None) -> str | None:
    """--delimiter: one ASCII character; ``tab`` or ``\\t`` for a tab."""
    delimiter: str | None = _checked(check.delimiter, value)
    return delimiter


DelimiterOpt = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        metavar="CHAR",
        help="CSV field delimiter of the input and of CSV outputs: one character, e.g. ';' or "
        "'tab'. Default: a tab for .tsv names, else ','.",
        show_default=False,
    ),
]


class DecimalChoice(StrEnum):
    point = "."
    comma = ","


DecimalOpt = Annotated[
    DecimalChoice,
    typer.Option(
        "--decimal",
        metavar="CHAR",
        help="Decimal separator of numbers written as text in feature columns: '.' (default) or "
        "',' (e.g. a ';'-separated European Excel export). With ',' a value holding a '.' is "
        "refused, not guessed at.",
    ),
]


class CompressionChoice(StrEnum):
    snappy = "snappy"
    zstd = "zstd"
    gzip = "gzip"
    none = "none"


CompressionOpt = Annotated[
    CompressionChoice | None,
    typer.Option(
        "--compression",
        metavar="snappy|zstd|gzip|none",
        help="Page compression of Parquet outputs. Default: snappy. (CSV outputs are "
        "compressed by their name: .csv.gz, .csv.bz2, .csv.zst.)",
        show_default=False,
    ),
]
WithProbaOpt = Annotated[
    bool,
    typer.Option("--with-proba", help="Also write the proba_<class> columns after 'prediction' (one pass)."),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        metavar="T",
        help="Binary classifiers: predict the positive class (the second of the model's "
        "classes) when its probability is at least T.",
        show_default=False,
    ),
]
ExplainOpt = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Add contrib_base and one contrib_<column> per input column after the predictions: "
        "exact SHAP values adding up to the explained score (trees, forests, boosted trees, "
        "linear models with --background).",
    ),
]
ReasonsOpt = Annotated[
    int | None,
    typer.Option(
        "--reasons",
        metavar="K",
        help="Add reason_1..K (the input columns with the largest absolute contribution, ties in "
        "input order) and reason_<i>_contrib.",
        show_default=False,
    ),
]
BackgroundOpt = Annotated[
    str | None,
    typer.Option(
        "--background",
        metavar="FILE",
        help="CSV/Parquet sample of training rows that linear models are explained against "
        "(required for them with --explain/--reasons).",
        show_default=False,
    ),
]
AllowEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--allow-empty",
        help="Dataset input: matching no file is a success (writes _SUCCESS, '0 files').",
    ),
]
KeepGoingOpt = Annotated[
    bool,
    typer.Option(
        "--keep-going",
        help="Dataset input: a file with bad data does not stop the others; the run then exits 3 "
        "naming the failed files, without _SUCCESS.",
    ),
]


# -- model tooling (convert, compare) ------------------------------------------------------

MinAgreementOpt = Annotated[
    float,
    typer.Option(
        "--min-agreement",
        metavar="R",
        min=0.0,
        max=1.0,
        callback=finite_float,
        help="Fail (exit 4) when the share of rows with equal labels is below this.",
    ),
]
MaxProbaDiffOpt = Annotated[
    float,
    typer.Option(
        "--max-proba-diff",
        metavar="R",
        min=0.0,
        callback=finite_float,
        help="Fail (exit 4) when a probability differs by more than this (regressors: a row "
        "agrees when its values are within this or 1e-5 relative).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]


def model_file_policy(
    config: Path | None, kind: ModelType, location: Path | str, data: bytes, extra: list[str] | None
) -> tuple[str | None, tuple[str, ...]]:
    """The config's sha256 pin and skops trust for a model file named on the command line
    (``inspect``, ``convert``; :func:`modelrouter.config.file_policy`), plus ``--trust``."""
    from modelrouter import load_settings
    from modelrouter.config import file_policy

    pin, trusted = file_policy(load_settings(config), kind, location, data)
    return pin, (*trusted, *(extra or ()))


# -- database tables (docs/specification.md §12) -------------------------------------------------

TableOpt = Annotated[
    str | None,
    typer.Option(
        "--table",
        metavar="NAME",
        help="Read this table (NAME or SCHEMA.NAME) of a database INPUT.",
        show_default=False,
    ),
]
QueryOpt = Annotated[
    str | None,
    typer.Option(
        "--query",
        metavar="SQL",
        help="Score the rows of this query on a database INPUT (ORDER BY fixes their order).",
        show_default=False,
    ),
]
ToTableOpt = Annotated[
    str | None,
    typer.Option(
        "--to-table",
        metavar="NAME",
        help="Write into this table (NAME or SCHEMA.NAME) of a database -o; it changes only "
        "when the run succeeds.",
        show_default=False,
    ),
]


class IfExistsChoice(StrEnum):
    # Upper-case names: ``replace`` would shadow str.replace.
    FAIL = "fail"
    REPLACE = "replace"
    APPEND = "append"


IfExistsOpt = Annotated[
    IfExistsChoice | None,
    typer.Option(
        "--if-exists",
        metavar="fail|replace|append",
        help="When --to-table exists: fail (exit 2, the default), replace it, or append to it.",
        show_default=False,
    ),
]
