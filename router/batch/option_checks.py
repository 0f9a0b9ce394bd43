"""The checks of :class:`~modelrouter.batch.run.RunOptions`: one rule per option, one place.

Each check returns the value in the form the engine uses, or raises
:class:`~modelrouter.errors.InvalidOptionError` naming the option as the command spells it
(``--chunk-size``) with the rule and the value received. The command maps that error to a
usage error (exit 2); a library caller gets it as a ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelrouter.errors import InvalidOptionError
from modelrouter.model_type import ModelType

if TYPE_CHECKING:
    from modelrouter.batch.options import RunOptions
    from modelrouter.storage.location import DataLocation

__all__ = [
    "bounded_int",
    "choice",
    "classes",
    "combinations",
    "delimiter",
    "engine",
    "fraction",
    "location",
    "model_path",
    "model_type",
    "optional_choice",
    "optional_int",
    "sha256",
    "side_file",
    "tables",
]


def choice(option: str, value: Any, valid: Sequence[str]) -> Any:
    """``value`` if it is one of ``valid`` (a ``StrEnum`` member counts as its text)."""
    text = str(value)
    if text not in valid:
        raise InvalidOptionError(option, f"must be one of {', '.join(valid)} (got {text!r})")
    return text


def optional_choice(option: str, value: Any, valid: Sequence[str]) -> Any:
    return None if value is None else choice(option, value, valid)


def bounded_int(option: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(option, f"must be a whole number (got {value!r})")
    if not low <= value <= high:
        raise InvalidOptionError(option, f"must be between {low:,} and {high:,} (got {value:,})")
    return value


def optional_int(option: str, value: int | None, low: int, high: int) -> int | None:
    return None if value is None else bounded_int(option, value, low, high)


def fraction(option: str, value: float) -> float:
    """A number in [0, 1]; NaN is refused (every comparison with it is false)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidOptionError(option, f"must be a number between 0 and 1 (got {value!r})")
    if not 0.0 <= value <= 1.0:
        raise InvalidOptionError(option, f"must be between 0 and 1 (got {value})")
    return float(value)


def model_type(value: ModelType | str | None) -> ModelType | None:
    """A model type the router has a backend for (``"ONNX "`` is ``ModelType.ONNX``)."""
    if value is None:
        return None
    from modelrouter.backends import BACKENDS

    try:
        kind = ModelType(str(value).strip().lower())
    except ValueError:
        kind = None
    if kind is None or kind not in BACKENDS:
        valid = ", ".join(str(k) for k in BACKENDS)
        raise InvalidOptionError("--model-type", f"{value!r} is not one of {valid}")
    return kind


def model_path(value: Path | str | None) -> Path | str | None:
    """``-m``: a URI stays text (``s3://…``), a ``file://`` URI becomes its local path."""
    if value is None or isinstance(value, Path):
        return value
    from modelrouter.locations import is_uri, local_path

    try:
        text = local_path(value)
    except ValueError as exc:
        raise InvalidOptionError("--model", str(exc)) from None
    return text if is_uri(text) else Path(text)


def sha256(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidOptionError("--sha256", f"must be 64 hexadecimal characters (got {value!r})")
    return text


def classes(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """``--classes``: labels in probability order, none empty, none repeated."""
    if value is None:
        return None
    labels = [part.strip() for part in (value.split(",") if isinstance(value, str) else value)]
    shown = value if isinstance(value, str) else ",".join(value)
    if not labels or not all(labels):
        raise InvalidOptionError(
            "--classes", f"class labels must be comma-separated and non-empty (got {shown!r})"
        )
    if len(set(labels)) != len(labels):
        raise InvalidOptionError("--classes", f"class labels must not repeat (got {shown!r})")
    return tuple(labels)


def delimiter(value: str | None) -> str | None:
    """One ASCII character; ``tab`` or ``\\t`` name a tab."""
    if value is None:
        return None
    from modelrouter.storage.formats import parse_delimiter

    try:
        return parse_delimiter(value)
    except ValueError as exc:
        raise InvalidOptionError("--delimiter", str(exc)) from None


def engine(value: str, scheduler: str | None) -> str:
    name = choice("--engine", value, ("local", "dask"))
    if scheduler is not None and name != "dask":
        raise InvalidOptionError("--scheduler", "--scheduler needs --engine dask")
    return str(name)


def location(option: str, value: str | Path) -> str:
    """A path as given, except a ``file://`` URI: the local path it names, so it is written
    by temp-file-and-rename and compared by inode like any local path (the text of its
    :class:`~modelrouter.storage.location.DataLocation`)."""
    return _data_location(option, value).text


def _data_location(option: str, value: str | Path) -> DataLocation:
    from modelrouter.storage.location import DataLocation

    if isinstance(value, str) and not value.strip():
        # "" would be read as the current folder: a cron line whose variable came out empty
        # must not write somewhere nobody asked for.
        raise InvalidOptionError(option, "an empty path; give a file path")
    try:
        return DataLocation.of(str(value))
    except ValueError as exc:
        raise InvalidOptionError(option, str(exc)) from None


def names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A list of names (``keep``, ``trust``); one string is one name, not its letters."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def side_file(option: str, value: str | None) -> str | None:
    """A file the run writes beside its output: never stdout (stdout carries the product)."""
    if value is None:
        return None
    place = _data_location(option, value)
    if place.is_stream:
        raise InvalidOptionError(option, "'-' (stdout) is only accepted by -o; give a file path")
    return place.text


def combinations(options: RunOptions) -> dict[str, Any]:
    """Rules between options; returns the fields they normalise (a dict to merge)."""
    output = options.output_location
    if options.on_error == "skip" and options.rejects is None and output is not None and output.is_stream:
        raise InvalidOptionError("--rejects", "--rejects PATH is required with --on-error skip and -o -")
    if options.mode == "proba" and (options.with_proba or options.threshold is not None):
        option = "--with-proba" if options.with_proba else "--threshold"
        raise InvalidOptionError(option, "shapes predict's output; predict-proba writes probabilities only")
    return tables(options)


def tables(options: RunOptions) -> dict[str, Any]:
    """The database options go together (docs/specification.md §12): exactly one of
    ``--table``/``--query`` with a database INPUT and neither with a file; ``--to-table``
    with a database ``-o`` and only there; ``--if-exists`` only with it. Parses the URLs
    and table names; connects to nothing."""
    from modelrouter.storage.tables import IF_EXISTS, TableName

    source = options.input_location.is_table
    target = options.output_location is not None and options.output_location.is_table
    _table_source(options, source)
    _table_target(options, target)
    if (source or target) and options.engine != "local":
        raise InvalidOptionError("--engine", "database tables are scored by the local engine")
    for option, name in (("--table", options.table), ("--to-table", options.to_table)):
        if name is not None:
            TableName.parse(name, option=option)
    return {"if_exists": optional_choice("--if-exists", options.if_exists, IF_EXISTS)}


_URLS = "sqlite:///, duckdb:///, postgresql://"


def _table_source(options: RunOptions, source: bool) -> None:
    from modelrouter.storage.tables import DatabaseUrl

    if not source:
        for option, value in (("--table", options.table), ("--query", options.query)):
            if value is not None:
                raise InvalidOptionError(
                    option, f"reads a database INPUT ({_URLS}); {options.input} is not one"
                )
        return
    url = DatabaseUrl.parse(options.input, option="INPUT")
    if options.table is None and options.query is None:
        raise InvalidOptionError(
            "--table", f"{url} is a database: say what to read with --table NAME or --query SQL"
        )
    if options.table is not None and options.query is not None:
        raise InvalidOptionError("--query", "--table and --query cannot be used together; give one")
    if options.query is not None and not options.query.strip():
        raise InvalidOptionError("--query", "the query is empty")
    if options.output is None:
        raise InvalidOptionError(
            "--output",
            "a database INPUT has no default output: give -o (a file, or a database URL with --to-table)",
        )
    if options.input_format is not None:
        raise InvalidOptionError("--input-format", "applies to files; a database INPUT has none")


def _table_target(options: RunOptions, target: bool) -> None:
    from modelrouter.storage.tables import DatabaseUrl

    if not target:
        if options.to_table is not None:
            shown = {None: "the default output", "-": "stdout"}.get(options.output, options.output)
            raise InvalidOptionError("--to-table", f"writes to a database -o ({_URLS}); {shown} is not one")
        if options.if_exists is not None:
            raise InvalidOptionError("--if-exists", "applies to a database -o with --to-table")
        return
    assert options.output is not None
    url = DatabaseUrl.parse(options.output, option="--output")
    if options.to_table is None:
        raise InvalidOptionError(
            "--to-table", f"-o {url} is a database: name the table to write with --to-table"
        )
    if options.output_format is not None:
        raise InvalidOptionError("--output-format", "applies to files; a database -o has none")
    if options.on_error == "skip" and options.rejects is None:
        raise InvalidOptionError(
            "--rejects", "--rejects PATH is required with --on-error skip and a database -o"
        )
