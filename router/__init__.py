"""modelrouter's library: pools of loaded models routed by model type.

Usable without the CLI::

    from modelrouter import ModelPool, ModelType, get_router

    router = get_router()
    router.register(ModelType.SKLEARN, ModelPool.load(ModelType.SKLEARN, "models/classifier.pkl", size=2))
    with router.acquire_model() as model:
        labels = model.predict(frame)
"""

from __future__ import annotations

from modelrouter.backends import InputSchema, Model, Prediction
from modelrouter.config import ModelSettings, Settings, load_pool, load_settings
from modelrouter.errors import (
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
from modelrouter.model_router import ModelRouter, get_router, reset_router
from modelrouter.model_type import ModelType
from modelrouter.pool import Borrow, BorrowedModel, ModelPool, PoolStats

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
