"""The values modelrouter's options accept: callbacks applying the engine's checks, and choices.

Validation that must fail as a usage error (exit 2) runs here while Click parses, before a
command body maps exceptions to the other exit codes; the rules themselves are the engine's
(:mod:`modelrouter.batch.option_checks`), so the library, the CLI and ``serve`` refuse the same
values the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from modelrouter.batch import option_checks as check
from modelrouter.errors import InvalidOptionError

if TYPE_CHECKING:
    from modelrouter import ModelType

__all__ = [
    "FormatChoice",
    "checked",
    "checked_scheduler",
    "checked_sha256",
    "class_list",
    "complete_model_type",
    "delimiter_option",
    "finite_float",
    "location_option",
    "model_file_policy",
    "model_type_option",
]


class FormatChoice(StrEnum):
    """The data formats (``modelrouter.storage.formats.FORMATS``), for every format option."""

    csv = "csv"
    parquet = "parquet"
    jsonl = "jsonl"


def checked(rule: Callable[..., Any], *args: Any) -> Any:
    """Apply one of the engine's option checks in a Click callback (commands other than
    predict use these): its refusal becomes Click's usage error."""
    try:
        return rule(*args)
    except InvalidOptionError as exc:
        raise typer.BadParameter(exc.reason) from None


def location_option(value: str | None) -> str | None:
    """A path argument as given, except a ``file://`` URI: the local path it names."""
    return None if value is None else checked(check.location, "PATH", value)


def model_type_option(value: str | None) -> str | None:
    """Validate -t against the router's registry (so a new type needs no CLI change)."""
    kind = checked(check.model_type, value)
    return None if kind is None else str(kind)


def complete_model_type(incomplete: str) -> list[str]:
    """Shell completion for -t: the model types the router has a backend for."""
    from modelrouter.backends import BACKENDS

    return [str(kind) for kind in BACKENDS if str(kind).startswith(incomplete.lower())]


def checked_sha256(value: str | None) -> str | None:
    digest: str | None = checked(check.sha256, value)
    return digest


def class_list(value: str | None) -> str | None:
    """Check --classes (comma-separated labels, none empty, none repeated); normalise spaces."""
    labels = checked(check.classes, value)
    return None if labels is None else ",".join(labels)


def finite_float(value: float | None) -> float | None:
    """Refuse NaN (Click's FloatRange lets it through: every comparison with NaN is false)."""
    if value is not None and math.isnan(value):
        raise typer.BadParameter(f"must be a number (got {value})")
    return value


def checked_scheduler(value: str | None) -> str | None:
    """The Dask engine's check of ``--scheduler`` (the engine imported only when given)."""
    if value is None:
        return None
    from modelrouter.batch import dask_engine

    scheduler: str = checked(dask_engine.checked_scheduler, value)
    return scheduler


def delimiter_option(value: str | None) -> str | None:
    """--delimiter: one ASCII character; ``tab`` or ``\\t`` for a tab."""
    delimiter: str | None = checked(check.delimiter, value)
    return delimiter


def model_file_policy(
    config: Path | None, kind: ModelType, location: Path | str, data: bytes, extra: list[str] | None
) -> tuple[str | None, tuple[str, ...]]:
    """The config's sha256 pin and skops trust for a model file named on the command line
    (``inspect``, ``convert``; :func:`modelrouter.config.file_policy`), plus ``--trust``."""
    from modelrouter import load_settings
    from modelrouter.config import file_policy

    pin, trusted = file_policy(load_settings(config), kind, location, data)
    return pin, (*trusted, *(extra or ()))
