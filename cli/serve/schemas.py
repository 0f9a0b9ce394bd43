"""Request and response models of ``modelrouter serve`` (they also make the OpenAPI docs at ``/docs``).

The scoring endpoints read and validate their bodies themselves (a body may be JSON, CSV or
Parquet, and errors must be ``{"error": …}`` with the contract's status codes, not FastAPI's
default 422 list), so these models document the JSON shapes; :data:`ROW_VALUE` is what one
cell may hold.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "PoolStatsResponse",
    "PredictRequest",
    "PredictResponse",
    "ProbaResponse",
]

#: One cell of a row: the JSON scalars. Anything else (a list, an object) is a 422.
ROW_VALUE = float | int | str | bool | None


class PredictRequest(BaseModel):
    """A JSON scoring request: rows as objects keyed by column name."""

    rows: list[dict[str, ROW_VALUE]] = Field(
        description="One object per row, keyed by column name. The model's feature columns are "
        "matched by name (extra keys are ignored); values are converted to the model's input types.",
        examples=[[{"alcohol": 13.2, "malic_acid": 1.78, "ash": 2.14}]],
    )


class PredictResponse(BaseModel):
    """Labels (regressors: values), one per row, in request order."""

    model_type: str
    predictions: list[Any]


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
    """``GET /pool/stats``: the default type and each pool's CONTRACT section 6 figures."""

    default_model_type: str | None
    pools: dict[str, dict[str, int | float]]


class HealthResponse(BaseModel):
    """``GET /healthz``."""

    status: str
    model_types: list[str]
