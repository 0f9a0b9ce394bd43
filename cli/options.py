"""The options shared by modelrouter's commands (Typer ``Annotated`` aliases), and the one
place every command imports its options from.

Each option's command-line spelling is defined once: here for the options several commands
take, in :mod:`modelrouter.cli.predict_options` for those of ``predict`` alone; the callbacks
that check values as usage errors (exit 2) are in :mod:`modelrouter.cli.option_values`.
Both are re-exported here.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from modelrouter.cli.option_values import (
    FormatChoice,
    checked_sha256,
    class_list,
    complete_model_type,
    delimiter_option,
    finite_float,
    location_option,
    model_file_policy,
    model_type_option,
)
from modelrouter.cli.predict_options import (
    AllowEmptyOpt,
    BackgroundOpt,
    ChunkOpt,
    CompressionChoice,
    CompressionOpt,
    EngineChoice,
    EngineOpt,
    ExplainOpt,
    IfExistsChoice,
    IfExistsOpt,
    InputArg,
    KeepAllOpt,
    KeepGoingOpt,
    KeepOpt,
    LimitOpt,
    MaxErrorRateOpt,
    MetricsOpt,
    OnErrorChoice,
    OnErrorOpt,
    OutputFormatOpt,
    OutputOpt,
    ProgressOpt,
    QueryOpt,
    ReasonsOpt,
    RejectsOpt,
    ResumeOpt,
    SchedulerOpt,
    StatsJsonOpt,
    StatsOpt,
    TableOpt,
    ThresholdOpt,
    ToTableOpt,
    WithProbaOpt,
    WorkersOpt,
)
from modelrouter.limits import MAX_CHUNK_SIZE, MAX_POOL_SIZE, MAX_WORKERS
from modelrouter.model_type import model_type_names, suffix_rules

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


# -- options several commands take ------------------------------------------------------

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
        metavar="csv|parquet|jsonl",
        help="Read the input as this format, whatever its suffix.",
        show_default=False,
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
