"""modelrouter's library: pools of loaded models routed by model type.

Usable without the CLI::

    from modelrouter import ModelPool, ModelType, get_router

    router = get_router()
    router.register(ModelType.SKLEARN, ModelPool.load(ModelType.SKLEARN, "models/classifier.pkl", size=2))
    with router.acquire_model() as model:
        labels = model.predict(frame)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelrouter.backends import InputSchema, Model, Prediction
    from modelrouter.config import ModelSettings, Settings, load_pool, load_settings
    from modelrouter.errors import (
        ConfigError,
        ConversionError,
        DataError,
        IntegrityError,
        InvalidOptionError,
        MissingColumnsError,
        ModelError,
        ModelFaultError,
        ModelLoadError,
        ModelOutputError,
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
    "InvalidOptionError",
    "MissingColumnsError",
    "Model",
    "ModelError",
    "ModelFaultError",
    "ModelLoadError",
    "ModelOutputError",
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

# Each name is imported on first use (PEP 562): `modelrouter.cli` is a subpackage, so an eager
# import here would load numpy, pyarrow and the backends for `modelrouter --help`.
_HOME: dict[str, str] = {
    "Borrow": "modelrouter.pool",
    "BorrowedModel": "modelrouter.pool",
    "ConfigError": "modelrouter.errors",
    "ConversionError": "modelrouter.errors",
    "DataError": "modelrouter.errors",
    "InputSchema": "modelrouter.backends",
    "IntegrityError": "modelrouter.errors",
    "InvalidOptionError": "modelrouter.errors",
    "MissingColumnsError": "modelrouter.errors",
    "Model": "modelrouter.backends",
    "ModelError": "modelrouter.errors",
    "ModelFaultError": "modelrouter.errors",
    "ModelLoadError": "modelrouter.errors",
    "ModelOutputError": "modelrouter.errors",
    "ModelPool": "modelrouter.pool",
    "ModelRouter": "modelrouter.model_router",
    "ModelRouterError": "modelrouter.errors",
    "ModelSettings": "modelrouter.config",
    "ModelType": "modelrouter.model_type",
    "OutputError": "modelrouter.errors",
    "PoolClosedError": "modelrouter.errors",
    "PoolError": "modelrouter.errors",
    "PoolStats": "modelrouter.pool",
    "PoolTimeoutError": "modelrouter.errors",
    "Prediction": "modelrouter.backends",
    "ProbabilitiesUnsupportedError": "modelrouter.errors",
    "RejectedValuesError": "modelrouter.errors",
    "Settings": "modelrouter.config",
    "UnknownModelTypeError": "modelrouter.errors",
    "get_router": "modelrouter.model_router",
    "load_pool": "modelrouter.config",
    "load_settings": "modelrouter.config",
    "reset_router": "modelrouter.model_router",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version  # the one version: pyproject.toml's

        value: Any = version("modelrouter")
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
