"""XGBoost boosters saved natively (``.json`` / ``.ubj``): parsed as data, never unpickled.

XGBoost's scikit-learn wrappers (``XGBClassifier``…) pickled with joblib are scikit-learn
estimators and load through the ``sklearn`` type. A native file knows its objective, so the
task (binary, multi-class, regression) and the classes ``0…k-1`` come from it; see
:mod:`modelrouter.backends.boosters` for the output rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import read_model_bytes
from modelrouter.backends.booster_files import checked_xgboost_document
from modelrouter.backends.booster_probe import verified_natively
from modelrouter.backends.boosters import BoosterModel, Task, import_optional, native_message
from modelrouter.errors import ModelLoadError
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

__all__ = ["XGBoostModel"]

# Objectives whose prediction is the probability of class 1 / the class probability matrix.
_BINARY = {"binary:logistic"}
_MULTICLASS = {"multi:softprob", "multi:softmax"}


class XGBoostModel(BoosterModel):
    """An ``xgboost.Booster`` with its own thread budget (``nthread``)."""

    model_type = ModelType.XGBOOST
    value_dtype = np.dtype(np.float32)  # XGBoost predicts in float32

    def __init__(self, path: ModelLocation, booster: Any) -> None:
        config = json.loads(booster.save_config())["learner"]
        objective = str(config["objective"]["name"])
        params = config.get("learner_model_param", {})
        if int(params.get("num_target", "1") or 1) > 1:
            raise ModelLoadError(
                f"{path}: a multi-target XGBoost model ({params['num_target']} targets) is not supported"
            )
        if objective in _BINARY:
            task = Task("binary")
        elif objective in _MULTICLASS:
            task = Task("multiclass", int(params.get("num_class", "0")))
        else:
            task = Task("regression")
        types = booster.feature_types or []
        if "c" in types:
            raise ModelLoadError(
                f"{path}: the model has categorical features, which modelrouter does not feed yet; "
                "encode them as numbers before training"
            )
        super().__init__(path, task, booster.feature_names, int(booster.num_features()), None)
        self.booster = booster
        # multi:softmax predicts labels; its probabilities are the softmax of the margins.
        self._softmax = objective == "multi:softmax"

    @classmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> XGBoostModel:
        xgb = import_optional("xgboost", f"{path}: an XGBoost model")
        raw = read_model_bytes(path, data)
        # XGBoost's parser trusts the file: check its structure first (booster_files), then
        # load it in a child process, where a crash is a model error (booster_probe).
        checked_xgboost_document(raw, path)
        verified_natively(ModelType.XGBOOST, raw, path, xgb.__version__)
        return cls.from_checked(path, raw, threads=threads)

    @classmethod
    def from_checked(cls, path: ModelLocation, payload: bytes, *, threads: int | None) -> Self:
        """Load a ``.json``/``.ubj`` whose structure was checked (and probe it)."""
        xgb = import_optional("xgboost", f"{path}: an XGBoost model")
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(payload))  # JSON or UBJSON, told apart by XGBoost
        except Exception as exc:  # XGBoostError, for every kind of bad file
            raise ModelLoadError(
                f"{path}: cannot load as an XGBoost model (.json/.ubj) ({native_message(exc)})"
            ) from exc
        # An explicit budget: instances × threads ≤ cores, as for ONNX sessions.
        booster.set_param({"nthread": max(1, threads or 1)})
        try:
            model = cls(path, booster)
        except ModelLoadError:
            raise
        except Exception as exc:  # XGBoostError from save_config: a configuration it refuses
            raise ModelLoadError(f"{path}: XGBoost refuses this model ({native_message(exc)})") from None
        model.probe()
        return model

    def probe(self) -> None:
        """Predict one row of zeros: a configuration XGBoost accepts at load but refuses at
        prediction (an objective edited to one the trees do not fit) is a model error now,
        not a native stack trace in the middle of a run."""
        try:
            self._raw(np.zeros((1, self.schema.width), dtype=np.float64))
        except Exception as exc:  # XGBoostError
            raise ModelLoadError(
                f"{self.path}: XGBoost cannot predict with this model ({native_message(exc)})"
            ) from None

    def _raw(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.floating]:
        if self._softmax:
            margin = np.asarray(self.booster.inplace_predict(matrix, predict_type="margin"))
            shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        return np.asarray(self.booster.inplace_predict(matrix))
