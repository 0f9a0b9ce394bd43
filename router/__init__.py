"""modelrouter's library: pools of loaded models routed by model type.

Usable without the CLI::

    from router import ModelPool, ModelType, get_router

    router = get_router()
    router.register(ModelType.SKLEARN, ModelPool.load(ModelType.SKLEARN, "models/classifier.pkl", size=2))
    with router.acquire_model() as model:
        labels = model.predict(frame)
"""

from __future__ import annotations

from router.backends import InputSchema, Model, Prediction
from router.config import ModelSettings, Settings, load_pool, load_settings
from router.errors import (
    ConfigError,
    ConversionError,
    DataError,
    IntegrityError,
    MissingColumnsError,
    ModelError,
    ModelLoadError,
    ModelRouterError,
    OutputError,
    PoolClosedError,
    PoolError,
    PoolTimeoutError,
    ProbabilitiesUnsupportedError,
    RejectedValuesError,
    UnknownModelTypeError,
)
from router.model_router import ModelRouter, get_router, reset_router
from router.model_type import ModelType
from router.pool import Borrow, BorrowedModel, ModelPool, PoolStats

__all__ = [
    "Borrow",
    "BorrowedModel",
    "ConfigError",
    "ConversionError",
    "DataError",
    "InputSchema",
    "IntegrityError",
    "MissingColumnsError",
    "Model",
    "ModelError",
    "ModelLoadError",
    "ModelPool",
    "ModelRouter",
    "ModelRouterError",
    "ModelSettings",
    "ModelType",
    "OutputError",
    "PoolClosedError",
    "PoolError",
    "PoolStats",
    "PoolTimeoutError",
    "Prediction",
    "ProbabilitiesUnsupportedError",
    "RejectedValuesError",
    "Settings",
    "UnknownModelTypeError",
    "get_router",
    "load_pool",
    "load_settings",
    "reset_router",
]

from importlib.metadata import version as _version

__version__ = _version("modelrouter")
