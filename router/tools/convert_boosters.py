"""XGBoost and LightGBM models to ONNX, with onnxmltools (skl2onnx has no converters for them).

Native boosters (``.json``/``.ubj``, ``.txt``) and their pickled scikit-learn wrappers
(``XGBClassifier``, ``LGBMClassifier``…) are converted alike: one float32 tensor input named
``input``, ZipMap off, and the same metadata as :func:`modelrouter.tools.convert.to_onnx_model`
writes (``feature_names``, ``class_labels``), so the router feeds the converted model by
column name.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from modelrouter.backends import Model
from modelrouter.errors import ModelError

if TYPE_CHECKING:
    import onnx

__all__ = ["booster_library", "booster_to_onnx"]


def booster_library(model: Model) -> str | None:
    """``"xgboost"`` or ``"lightgbm"`` when ``model`` is (or wraps) such a model, else ``None``."""
    target = getattr(model, "booster", None) or getattr(model, "estimator", None)
    if target is None:
        return None
    library = type(target).__module__.split(".")[0]
    return library if library in ("xgboost", "lightgbm") else None


def booster_to_onnx(model: Model, *, opset: int | None = None, source: str = "the model") -> onnx.ModelProto:
    """Convert an XGBoost/LightGBM model (native or wrapped) to ONNX; see the module docstring.

    Raises :class:`ModelError` when onnxmltools is missing or the conversion fails.
    """
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        raise ModelError(
            "converting XGBoost and LightGBM models needs onnxmltools, which is not installed: "
            "pip install 'modelrouter[convert]' (or onnxmltools itself)"
        ) from None
    import onnx

    library = booster_library(model)
    target: Any = getattr(model, "booster", None) or getattr(model, "estimator", None)
    width = model.schema.width
    initial_types = [("input", FloatTensorType([None, width]))]
    try:
        if library == "xgboost":
            # onnxmltools reads XGBoost's tree dump and understands only the feature names
            # f0, f1…: convert a copy without names (ours go into the metadata instead).
            target = copy.deepcopy(target)
            booster = target.get_booster() if hasattr(target, "get_booster") else target
            booster.feature_names = None
            booster.feature_types = None
            onx: onnx.ModelProto = onnxmltools.convert_xgboost(
                target, initial_types=initial_types, target_opset=opset
            )
        elif library == "lightgbm":
            onx = onnxmltools.convert_lightgbm(
                target, initial_types=initial_types, target_opset=opset, zipmap=False
            )
        else:
            raise ModelError(f"{source}: not an XGBoost or LightGBM model")
    except ModelError:
        raise
    except Exception as exc:  # onnxmltools raises RuntimeError, ValueError, TypeError…
        from modelrouter.tools.convert import failure_detail

        raise ModelError(
            f"{source}: onnxmltools failed to convert the {library} model ({failure_detail(exc)})"
        ) from exc
    properties = {p.key: p.value for p in onx.metadata_props}
    if model.schema.names is not None:
        properties["feature_names"] = json.dumps(list(model.schema.names))
        if model.schema.name_rule is not None:
            # The names are stored changed (LightGBM: spaces → '_'): the converted model must
            # take the columns its source takes, so the rule travels with the names.
            properties["feature_name_rule"] = model.schema.name_rule
    if model.classes is not None:
        properties["class_labels"] = json.dumps([_plain(c) for c in model.classes])
    properties["converted_from"] = str(library)
    onnx.helper.set_model_props(onx, properties)
    return onx


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
