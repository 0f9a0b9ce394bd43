"""The options of a scoring run: :class:`RunOptions`, the one definition of each option.

Values are normalised and checked when the object is made (:mod:`modelrouter.batch.option_checks`),
so the library, the command and the service refuse the same values alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from modelrouter import (
    ModelType,
)
from modelrouter.batch.dataio import FileFormat
from modelrouter.limits import MAX_CHUNK_SIZE, MAX_POOL_SIZE, MAX_WORKERS
from modelrouter.storage.formats import FORMATS as FILE_FORMATS
from modelrouter.storage.location import DataLocation, data_location
from modelrouter.storage.tables import IfExists

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMATS",
    "MAX_REASONS",
    "Engine",
    "Mode",
    "OnError",
    "RunOptions",
    "default_delimiter",
]


Mode = Literal["predict", "proba"]


OnError = Literal["fail", "skip"]


Engine = Literal["local", "dask"]


FORMATS = tuple(FILE_FORMATS)


#: Rows per chunk by default: large enough that per-chunk overhead (task, borrow, Arrow
#: slicing, one write) is noise, small enough that the chunks in flight stay a few MiB:
#: 32,768 rows peaked 13 MiB lower than 65,536 on 1M rows at the same speed (README).
DEFAULT_CHUNK_SIZE = 32_768


@dataclass(frozen=True)
class RunOptions:
    """Everything a predict / predict-proba run needs: the one definition of each option.

    The command's parameters carry the same names and are passed here as they are; values
    are normalised (``"onnx"`` → :class:`ModelType`, ``"a,b"`` → a tuple of classes) and
    checked when the object is made, so a library caller, the command and the service
    refuse the same values alike: :class:`~modelrouter.errors.InvalidOptionError` names the
    option as the command spells it.
    """

    input: str
    mode: Mode = "predict"
    output: str | None = None
    input_format: FileFormat | None = None
    output_format: FileFormat | None = None
    model_type: ModelType | None = None
    #: A local file or a URI (``s3://…``, fetched by :func:`storage.fetch_model`).
    model_path: Path | str | None = None
    sha256: str | None = None
    #: Class labels for an ONNX model that records none (``--classes``; ``"a,b"`` accepted).
    classes: Sequence[str] | None = None
    config: Path | None = None
    keep: Sequence[str] = ()
    keep_all: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: A trial run (``--limit``): only the first N rows of each input file are scored.
    limit: int | None = None
    workers: int | None = None
    pool_size: int | None = None
    on_error: OnError = "fail"
    rejects: str | None = None
    max_error_rate: float = 1.0
    #: skops files: types trusted beyond the config's ``[skops] trusted`` (``--trust``).
    trust: Sequence[str] = ()
    #: Cap process-wide BLAS/OpenMP threads at cores // workers for the run. Off where the
    #: host process manages them (a Dask worker sets them once for all its tasks).
    limit_native_threads: bool = True
    #: CSV field delimiter of the input and of CSV outputs (``None``: tab for ``.tsv``
    #: names, else a comma). ``tab`` and ``\t`` name a tab.
    delimiter: str | None = None
    #: Page compression of Parquet outputs: snappy, zstd, gzip or none. ``None``: not chosen
    #: (snappy); a choice is refused where no output is Parquet (a typo is never ignored).
    compression: str | None = None
    #: predict: also write the ``proba_*`` columns after ``prediction``.
    with_proba: bool = False
    #: The decimal separator of numbers written as text (``--decimal``): ``.`` or ``,``.
    decimal: str = "."
    #: predict, binary classifiers: the label is the positive class (the second of the
    #: model's classes) when its probability is at least this.
    threshold: float | None = None
    #: Datasets: ``local`` (this process's threads) or ``dask`` (one task per file).
    engine: Engine = "local"
    #: ``--engine dask``: the scheduler's address (``None``: a local cluster).
    scheduler: str | None = None
    #: Datasets: skip input files whose output is complete and still matches the input.
    resume: bool = False
    #: Datasets: matching no file is a success (``_SUCCESS``, "0 files").
    allow_empty: bool = False
    #: Datasets: a file's input error does not stop the others; the run then fails (exit 3)
    #: naming the failed files, without ``_SUCCESS``.
    keep_going: bool = False
    #: Record the input's identity (size, mtime, sha256; an object's ETag) in the output's
    #: provenance — Parquet metadata, or a sidecar beside a CSV output — for ``resume``
    #: (datasets set it per file; see :mod:`modelrouter.storage.input_identity`).
    record_input: bool = False
    #: Kept CSV columns get an integer, float or boolean type in a local Parquet output
    #: where their text allows it (docs/formats.md); datasets turn it off so that every part
    #: file has the same types (text).
    kept_types: bool = True
    #: Side files committed with the outputs: the run summary as JSON, Prometheus text.
    stats_json: str | None = None
    metrics_textfile: str | None = None
    #: A database INPUT (docs/specification.md §12): the table to read (``schema.name``
    #: allowed), or the query whose rows are scored; exactly one of them.
    table: str | None = None
    query: str | None = None
    #: A database ``output``: the table written (required there).
    to_table: str | None = None
    #: What an existing ``to_table`` gets: ``fail`` (the default, also for ``None``),
    #: ``replace`` or ``append``.
    if_exists: IfExists | None = None
    #: predict: add ``contrib_base`` and ``contrib_<column>`` per input column (docs/specification.md §13).
    explain: bool = False
    #: predict: add the K input columns with the largest absolute contribution per row.
    reasons: int | None = None
    #: CSV/Parquet rows a linear model is explained against (``--background``).
    background: str | None = None

    def __post_init__(self) -> None:
        from modelrouter.batch import option_checks as check

        for name, value in _normalised(self).items():
            object.__setattr__(self, name, value)
        for name in _LOCATIONS:  # classified once, here: the engine asks these, not the text
            getattr(self, name)
        # Rules between options, on the normalised values and their locations.
        for name, value in (check.combinations(self) | _explanation_rules(self)).items():
            object.__setattr__(self, name, value)

    # The places of the run, as :class:`~modelrouter.storage.location.DataLocation` objects
    # (the fields keep the text the caller gave, normalised).

    @cached_property
    def input_location(self) -> DataLocation:
        """INPUT: a local path, an object, stdin (``-``) or a database table."""
        return DataLocation.of(self.input)

    @cached_property
    def output_location(self) -> DataLocation | None:
        """``-o`` as given (``None``: the default output, see
        :func:`~modelrouter.batch.targets.resolve_output`)."""
        return data_location(self.output)

    @cached_property
    def rejects_location(self) -> DataLocation | None:
        return data_location(self.rejects)

    @cached_property
    def stats_json_location(self) -> DataLocation | None:
        return data_location(self.stats_json)

    @cached_property
    def metrics_location(self) -> DataLocation | None:
        return data_location(self.metrics_textfile)

    @property
    def explaining(self) -> bool:
        """Whether the run adds explanations (``--explain`` or ``--reasons``)."""
        return self.explain or self.reasons is not None


def _normalised(options: RunOptions) -> dict[str, Any]:
    """The fields of ``options`` that change form when checked (see :class:`RunOptions`)."""
    from modelrouter.batch import option_checks as check

    return {
        "input": check.location("INPUT", options.input),
        "output": None if options.output is None else check.location("--output", options.output),
        "mode": check.choice("mode", options.mode, ("predict", "proba")),
        "input_format": check.optional_choice("--input-format", options.input_format, FORMATS),
        "output_format": check.optional_choice("--output-format", options.output_format, FORMATS),
        "model_type": check.model_type(options.model_type),
        "model_path": check.model_path(options.model_path),
        "sha256": check.sha256(options.sha256),
        "classes": check.classes(options.classes),
        "config": None if options.config is None else Path(options.config),
        "keep": check.names(options.keep),
        "chunk_size": check.bounded_int("--chunk-size", options.chunk_size, 1, MAX_CHUNK_SIZE),
        "limit": check.optional_int("--limit", options.limit, 1, 2**62),
        "workers": check.optional_int("--workers", options.workers, 1, MAX_WORKERS),
        "pool_size": check.optional_int("--pool-size", options.pool_size, 1, MAX_POOL_SIZE),
        "on_error": check.choice("--on-error", options.on_error, ("fail", "skip")),
        "max_error_rate": check.fraction("--max-error-rate", options.max_error_rate),
        "trust": check.names(options.trust),
        "delimiter": check.delimiter(options.delimiter),
        "compression": check.optional_choice(
            "--compression", options.compression, ("snappy", "zstd", "gzip", "none")
        ),
        "decimal": check.choice("--decimal", options.decimal, (".", ",")),
        "threshold": None if options.threshold is None else check.fraction("--threshold", options.threshold),
        "engine": check.engine(options.engine, options.scheduler),
        "rejects": check.side_file("--rejects", options.rejects),
        "stats_json": check.side_file("--stats-json", options.stats_json),
        "metrics_textfile": check.side_file("--metrics-textfile", options.metrics_textfile),
        "reasons": check.optional_int("--reasons", options.reasons, 1, MAX_REASONS),
        "background": None
        if options.background is None
        else check.location("--background", options.background),
    }


_LOCATIONS = (
    "input_location",
    "output_location",
    "rejects_location",
    "stats_json_location",
    "metrics_location",
)

#: More reasons than any model has input columns is a typo.
MAX_REASONS = 100_000


def _explanation_rules(options: RunOptions) -> dict[str, Any]:
    """``--explain``/``--reasons`` shape predict's output (docs/specification.md §13);
    ``--background`` goes with them."""
    from modelrouter.errors import InvalidOptionError

    explaining = options.explain or options.reasons is not None
    if explaining and options.mode != "predict":
        flag = "--explain" if options.explain else "--reasons"
        raise InvalidOptionError(flag, "applies to predict, not predict-proba")
    if options.background is not None and not explaining:
        raise InvalidOptionError("--background", "--background needs --explain or --reasons")
    return {}


def default_delimiter(options: RunOptions) -> str:
    """A comma; a semicolon with ``--decimal ','`` (where commas are in the numbers: how
    spreadsheets in comma-decimal locales write CSV)."""
    return ";" if options.decimal == "," else ","
