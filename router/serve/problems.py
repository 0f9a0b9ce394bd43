"""HTTP errors of the service: one exception carrying the status and the one-line message.

Every error answer is ``{"error": "<one line>"}`` (plus ``column``/``row`` when a value is at
fault), with the status codes of docs/specification.md §10. The router's own exceptions are mapped
here, in one place, so no path can turn bad input into a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from modelrouter.errors import (
    DataError,
    ModelError,
    ModelRouterError,
    PoolClosedError,
    PoolTimeoutError,
    ProbabilitiesUnsupportedError,
    UnknownModelTypeError,
)

__all__ = ["Problem", "Where", "problem_for"]

#: How a request body spells a row, for error messages (see :func:`problem_for`).
Where = Literal["rows", "columns", "row"]


class Problem(Exception):
    """An answer other than 200: ``status``, a one-line ``message`` and optional headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        column: str | None = None,
        row: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())  # one line, whatever the cause said
        self.column = column
        self.row = row
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        payload: dict[str, object] = {"error": self.message}
        if self.column is not None:
            payload["column"] = self.column
        if self.row is not None:
            payload["row"] = self.row
        return payload


def problem_for(exc: ModelRouterError, *, where: Where, retry_after: int = 1) -> Problem:
    """The answer for a router error; ``where`` says how the body spells a row: ``rows`` for
    ``{"rows": [...]}`` (``rows[3]``), ``columns`` for ``{"columns": {...}}``
    (``columns['ash'][3]``), ``row`` for CSV/Parquet bodies (``row 3``).

    A :class:`DataError`'s row is 0-based within the request, which is what the answer shows.
    """
    if isinstance(exc, DataError):
        message = exc.message
        if exc.row is not None:
            if where == "rows":
                message = f"rows[{exc.row}]: {message}"
            elif where == "columns" and exc.column is not None:
                message = f"columns[{exc.column!r}][{exc.row}]: {message}"
            else:
                message = f"row {exc.row}: {message}"
        return Problem(422, message, column=exc.column, row=exc.row)
    if isinstance(exc, UnknownModelTypeError):
        return Problem(404, str(exc))
    if isinstance(exc, PoolTimeoutError | PoolClosedError):
        return Problem(503, str(exc), headers={"Retry-After": str(retry_after)})
    from modelrouter.errors import InvalidOptionError
    from modelrouter.explain import ExplanationUnsupportedError

    if isinstance(exc, ProbabilitiesUnsupportedError | ExplanationUnsupportedError | InvalidOptionError):
        # Asked of a model what it cannot give (probabilities, an exact explanation).
        return Problem(422, str(exc))
    if isinstance(exc, ModelError):
        # The request was valid (its values converted to the model's types) but the model
        # failed on it: a fault of the served model, not of the client.
        return Problem(500, str(exc))
    return Problem(500, str(exc))
