"""The one exception tree of the router library.

::

    ModelRouterError                 base of everything raised on purpose
    ├── DataError                    the input data cannot be scored        (CLI exit 3)
    │   ├── MissingColumnsError      feature columns absent from the input
    │   ├── ConversionError          a value does not convert to the model's input type
    │   └── RejectedValuesError      the model refuses non-finite values (NaN, inf)
    ├── ModelError                   the model cannot be loaded or used     (CLI exit 4)
    │   ├── ModelLoadError           file missing, corrupt or not a model
    │   ├── IntegrityError           sha256 pin does not match the file
    │   ├── ModelOutputError         the model returned something it does not declare
    │   ├── ModelFaultError          the model raised on input it accepted (a row, if known)
    │   ├── ProbabilitiesUnsupportedError   predict_proba on a regressor
    │   └── ConfigError              bad configuration file, key or value
    ├── PoolError                    borrowing went wrong                   (CLI exit 4)
    │   ├── PoolTimeoutError         no instance became free in time
    │   ├── PoolClosedError          the pool was closed
    │   └── UnknownModelTypeError    no pool registered for that type
    ├── InvalidOptionError           an option value the engine refuses     (CLI exit 2)
    └── OutputError                  an output file cannot be written       (CLI exit 5)

Messages name the object (file, column, key), the rule that was broken and, where there is
a choice, the valid values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "ConversionError",
    "DataError",
    "IntegrityError",
    "InvalidOptionError",
    "MissingColumnsError",
    "ModelError",
    "ModelFaultError",
    "ModelLoadError",
    "ModelOutputError",
    "ModelRouterError",
    "OutputError",
    "PoolClosedError",
    "PoolError",
    "PoolTimeoutError",
    "ProbabilitiesUnsupportedError",
    "RejectedValuesError",
    "UnknownModelTypeError",
]


class ModelRouterError(Exception):
    """Base class of every error the library raises on purpose.

    Picklable with all its attributes whatever the subclass's ``__init__`` takes, so errors
    raised in a Dask worker arrive intact on the client.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[ModelRouterError], args: tuple[Any, ...], state: dict[str, Any]) -> ModelRouterError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class DataError(ModelRouterError):
    """The input cannot be scored: unreadable file, missing column, unconvertible value.

    ``row`` is the 0-based position within the frame that was being scored, when known;
    callers that score a file in chunks shift it to a 1-based file row with :meth:`at_offset`.
    """

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.row = row

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        return f"row {self.row + 1}: {self.message}"

    def at_offset(self, offset: int) -> DataError:
        """Return a copy whose row is shifted by ``offset`` rows (for chunked input)."""
        row = None if self.row is None else self.row + offset
        shifted = type(self).__new__(type(self))
        shifted.__dict__.update(self.__dict__)
        shifted.row = row
        shifted.args = self.args
        return shifted


class MissingColumnsError(DataError):
    """Feature columns the model needs are absent; ``missing`` lists every one of them."""

    #: Missing names spelled out in the message (the count is always given).
    SHOWN = 5

    def __init__(
        self,
        missing: Sequence[str],
        available: Sequence[str],
        suggestions: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        # The nearest input columns ("did you mean") come right after each missing name and
        # before the listing of the input, so a long message is never cut before them.
        hints = suggestions or {}
        parts = []
        for name in list(missing)[: self.SHOWN]:
            near = hints.get(name, ())
            guess = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
            parts.append(f"{name!r}{guess}")
        if len(missing) > self.SHOWN:
            parts.append(f"… ({len(missing)} missing in all)")
        shown = ", ".join(repr(a) for a in list(available)[:12])
        more = "" if len(available) <= 12 else f", … ({len(available)} in all)"
        plural = "s" if len(missing) != 1 else ""
        super().__init__(
            f"missing feature column{plural} {', '.join(parts)} (input has: {shown}{more})",
            column=missing[0] if missing else None,
        )
        self.missing = tuple(missing)
        self.suggestions = {k: tuple(v) for k, v in hints.items()}


class ConversionError(DataError):
    """A value in a feature column cannot be converted to the model's input type."""


class RejectedValuesError(DataError):
    """The model refuses non-finite values (NaN or ±inf); every such row would be refused."""


class ModelError(ModelRouterError):
    """The model file cannot be loaded or does not support what was asked."""


class ModelFaultError(ModelError):
    """The model raised while predicting input it accepted (valid types, finite where it asks
    for it): the model's fault, not the data's (exit 4). ``row`` is the 0-based row of the
    frame that alone makes it fail, when there is one (:meth:`at_offset` as for DataError);
    under ``--on-error skip`` such a row is rejected like a bad value."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.column: str | None = None

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        return f"row {self.row + 1}: {self.message}"

    def at_offset(self, offset: int) -> ModelFaultError:
        """Return a copy whose row is shifted by ``offset`` rows (for chunked input)."""
        shifted = type(self).__new__(type(self))
        shifted.__dict__.update(self.__dict__)
        shifted.row = None if self.row is None else self.row + offset
        shifted.args = self.args
        return shifted


class ModelLoadError(ModelError):
    """The model file is missing, corrupt, or not a model of the expected type."""


class ModelOutputError(ModelError):
    """The model returned rows, a shape, labels or probabilities other than it declares."""


class IntegrityError(ModelError):
    """The file's sha256 digest differs from the pinned one."""


class ProbabilitiesUnsupportedError(ModelError):
    """``predict_proba`` was asked of a model that gives no probabilities (a regressor)."""


class ConfigError(ModelError):
    """The configuration (file, environment variable or option) is invalid."""


class PoolError(ModelRouterError):
    """Borrowing a model instance failed."""


class PoolTimeoutError(PoolError):
    """No instance became available within the timeout."""


class PoolClosedError(PoolError):
    """The pool was closed; it lends nothing any more."""


class UnknownModelTypeError(PoolError):
    """No pool is registered for the requested model type."""


class InvalidOptionError(ModelRouterError, ValueError):
    """An option value the engine refuses (a usage error: the command exits 2).

    ``option`` names it as users spell it on the command line (``--chunk-size``), so the
    library, the command and the service refuse the same values with the same words.
    """

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.reason = message


class OutputError(ModelRouterError):
    """An output file cannot be written (folder missing, permission denied, disk full)."""
