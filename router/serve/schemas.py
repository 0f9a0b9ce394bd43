"""Request and response models of ``modelrouter serve`` (they also make the OpenAPI docs at ``/docs``).

The scoring endpoints read and validate their bodies themselves (a body may be JSON, CSV or
Parquet, and errors must be ``{"error": …}`` with the contract's status codes, not FastAPI's
default 422 list), so these models document the JSON shapes; :data:`ROW_VALUE` is what one
cell may hold.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ColumnsRequest",
    "ErrorResponse",
    "ExplainResponse",
    "HealthResponse",
    "PoolStatsResponse",
    "PredictRequest",
    "PredictResponse",
    "ProbaResponse",
    "RowsRequest",
    "request_schema",
]

#: One cell of a row: the JSON scalars. Anything else (a list, an object) is a 422.
ROW_VALUE = float | int | str | bool | None


class RowsRequest(BaseModel):
    """A JSON scoring request: rows as objects keyed by column name (docs/specification.md §10)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, ROW_VALUE]] = Field(
        description="One object per row, keyed by column name. The model's feature columns are "
        "matched by name (extra keys are ignored); values are converted to the model's input types.",
        examples=[[{"alcohol": 13.2, "malic_acid": 1.78, "ash": 2.14}]],
    )


class ColumnsRequest(BaseModel):
    """The same table by columns (pandas' ``to_dict("list")``): cheaper to send and to read."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, list[ROW_VALUE]] = Field(
        description="One list per column, one value per row (every list the same length).",
        examples=[{"alcohol": [13.2, 12.37], "malic_acid": [1.78, 0.94], "ash": [2.14, 1.36]}],
    )


#: A JSON scoring request: either form.
PredictRequest = RowsRequest | ColumnsRequest


class PredictResponse(BaseModel):
    """Labels (regressors: values), one per row, in request order."""

    model_type: str
    predictions: list[Any]


class ExplainResponse(BaseModel):
    """Per row: ``base`` + the sum of its ``contributions`` (one per input column, in
    ``columns`` order) is the explained score, in ``space`` (docs/specification.md §13)."""

    model_type: str
    space: str
    columns: list[str]
    base: list[float]
    contributions: list[list[float]]
    explained_class: list[Any] | None = None


class ProbaResponse(BaseModel):
    """Class probabilities, one list per row in request order, columns in ``classes`` order."""

    model_type: str
    classes: list[Any]
    probabilities: list[list[float]]


class ErrorResponse(BaseModel):
    """Every error: one line; ``column`` and ``row`` (0-based) when a value is at fault."""

    error: str
    column: str | None = None
    row: int | None = None


class PoolStatsResponse(BaseModel):
    """``GET /pool/stats``: the default type and each pool's docs/specification.md §6 figures."""

    default_model_type: str | None
    pools: dict[str, dict[str, int | float]]


class HealthResponse(BaseModel):
    """``GET /healthz``."""

    status: str
    model_types: list[str]


def request_schema() -> dict[str, Any]:
    """The JSON schema of :data:`PredictRequest` (for the OpenAPI request body)."""
    # Inlined (no "$defs"): the schema sits inside the OpenAPI document, where a "#/$defs"
    # reference would not resolve.
    return {"anyOf": [RowsRequest.model_json_schema(), ColumnsRequest.model_json_schema()]}
