"""The checks a run makes of its input and its results: the decimal mark of the first rows,
a header read as one column, the error budget, an input changed while it was scored."""

from __future__ import annotations

from collections.abc import Sequence

from modelrouter import DataError, ModelType
from modelrouter.batch.chunk_loop import decimal_comma_columns
from modelrouter.batch.input_file import InputFile
from modelrouter.batch.options import RunOptions
from modelrouter.batch.summary import RunSummary
from modelrouter.storage.input_identity import IDENTITY_PREFIX
from modelrouter.storage.location import DataLocation

__all__ = [
    "check_decimal_mark",
    "check_error_budget",
    "check_unchanged",
    "delimiter_hint",
    "over_error_budget",
]


def check_unchanged(source: DataLocation, identity: dict[str, str]) -> None:
    """A local input whose size or mtime changed while it was scored gave rows of two
    versions: an input error (exit 3), never an output recorded as made from either."""
    if not source.is_local:
        return
    try:
        now = source.path.stat()
    except OSError as exc:
        raise DataError(f"{source}: the input went away while it was scored ({exc.strerror})") from None
    if (str(now.st_size), str(now.st_mtime_ns)) != (
        identity.get(f"{IDENTITY_PREFIX}size"),
        identity.get(f"{IDENTITY_PREFIX}mtime_ns"),
    ):
        raise DataError(f"{source}: the input changed while it was scored; nothing was written for it")


def delimiter_hint(reader: InputFile) -> str:
    """When a CSV header came out as one column that holds another delimiter, say which
    (and the decimal mark the first rows use): the exact flags that read the file."""
    if reader.dialect is None or not reader.dialect.header_is_one_column:
        return ""
    return f"; the header is one column and {reader.dialect.describe()}"


def check_decimal_mark(
    reader: InputFile, kind: ModelType, exclude: Sequence[str], options: RunOptions
) -> None:
    """Refuse, before any row is scored, numeric feature columns whose first values are
    written with a decimal comma while ``--decimal`` is ``.``: every row would fail."""
    if reader.dialect is None or options.decimal == reader.dialect.decimal:
        return
    numeric = decimal_comma_columns(kind, reader.schema, exclude)
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


def over_error_budget(summary: RunSummary, max_rate: float) -> bool:
    return bool(summary.rows_rejected) and summary.rows_rejected / summary.rows_in > max_rate


def check_error_budget(summary: RunSummary, max_rate: float) -> None:
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
