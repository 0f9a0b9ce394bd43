"""The options of ``predict`` alone (Typer ``Annotated`` aliases): outputs, scoring, failure
handling, explanations, datasets and database tables (docs/specification.md §12).

Options shared with other commands are in :mod:`modelrouter.cli.options`, which re-exports these.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from modelrouter.cli.option_values import FormatChoice, checked_scheduler
from modelrouter.limits import MAX_CHUNK_SIZE, MAX_WORKERS

InputArg = Annotated[
    str,
    typer.Argument(
        help="Input .csv, .tsv, .parquet, .pq or .jsonl file (.csv/.tsv/.jsonl also .gz, .bz2, .zst); "
        "'-' reads CSV from stdin; a directory or quoted "
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
# it must be a usage error before anything is loaded. README "Limits" lists them. The bounds
# are the engine's (modelrouter.limits), checked by modelrouter.batch.option_checks for the
# library, this command and the service alike.
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

OutputFormatOpt = Annotated[
    FormatChoice | None,
    typer.Option(
        "--output-format",
        metavar="csv|parquet|jsonl",
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

SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        callback=checked_scheduler,
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
