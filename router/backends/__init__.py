"""Model backends (strategies), one module per model type, and the registry that picks one.

Adding a model type: write ``router/backends/<name>_backend.py`` with a :class:`Model`
subclass, add the member to :class:`~router.model_type.ModelType` and one line to
:data:`BACKENDS`. Backend modules are imported only when their type is used, so a run with
sklearn models never pays for importing onnxruntime.
"""

from __future__ import annotations

import importlib

from modelrouter.backends.base import InputSchema, Model, OutputSpec, Prediction, RawOutput
from modelrouter.model_type import ModelType

__all__ = ["BACKENDS", "InputSchema", "Model", "OutputSpec", "Prediction", "RawOutput", "backend_for"]

#: ModelType → "module:class" of its backend.
BACKENDS: dict[ModelType, str] = {
    ModelType.SKLEARN: "modelrouter.backends.sklearn_backend:SklearnModel",
    ModelType.ONNX: "modelrouter.backends.onnx_backend:OnnxModel",
    ModelType.SKOPS: "modelrouter.backends.skops_backend:SkopsModel",
    ModelType.XGBOOST: "modelrouter.backends.xgboost_backend:XGBoostModel",
    ModelType.LIGHTGBM: "modelrouter.backends.lightgbm_backend:LightGBMModel",
}


def backend_for(model_type: ModelType | str) -> type[Model]:
    """The backend class for ``model_type`` (imported on first use)."""
    module_name, _, class_name = BACKENDS[ModelType.parse(model_type)].partition(":")
    backend: type[Model] = getattr(importlib.import_module(module_name), class_name)
    return backend
