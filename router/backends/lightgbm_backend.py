"""LightGBM boosters saved natively (``.txt``, ``Booster.save_model``): parsed, never unpickled.

LightGBM's scikit-learn wrappers (``LGBMClassifier``…) pickled with joblib load through the
``sklearn`` type. LightGBM stores feature names with spaces replaced by underscores, so input
columns are also matched by that rule (:mod:`modelrouter.feature_names`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import read_model_bytes
from modelrouter.backends.booster_files import checked_lightgbm_text
from modelrouter.backends.booster_probe import verified_natively
from modelrouter.backends.boosters import BoosterModel, Task, import_optional, native_message
from modelrouter.errors import ModelLoadError
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

__all__ = ["LightGBMModel"]

_OBJECTIVE = re.compile(r"^objective=(\S+)(.*)$", re.MULTILINE)
_NUM_CLASS = re.compile(r"^num_class=(\d+)$", re.MULTILINE)
# A model trained with categorical features lists them (or their pandas categories).
_CATEGORICAL = re.compile(r"^(\[categorical_feature: *[^\]\s]|pandas_categorical:\[[^\]])", re.MULTILINE)


class LightGBMModel(BoosterModel):
    """A ``lightgbm.Booster`` predicting with its own thread budget (``num_threads``)."""

    model_type = ModelType.LIGHTGBM

    def __init__(self, path: ModelLocation, booster: Any, text: str, threads: int) -> None:
        header = text.split("\nTree=", 1)[0]
        objective = _OBJECTIVE.search(header)
        name = objective.group(1) if objective else "regression"
        classes = _NUM_CLASS.search(header)
        if name == "binary":
            task = Task("binary")
        elif name in ("multiclass", "multiclassova", "softmax", "multiclass_ova", "ova", "ovr"):
            task = Task("multiclass", int(classes.group(1)) if classes else 0)
        else:  # regression, ranking, cross-entropy (a probability, but of one output)…
            task = Task("regression")
        if _CATEGORICAL.search(text):
            raise ModelLoadError(
                f"{path}: the model has categorical features, which modelrouter does not feed yet; "
                "encode them as numbers before training"
            )
        names = list(booster.feature_name())
        # LightGBM names unnamed features Column_0, Column_1…: those are positions, not names.
        known = None if names == [f"Column_{i}" for i in range(len(names))] else names
        super().__init__(path, task, known, int(booster.num_feature()), "lightgbm")
        self.booster = booster
        self._threads = threads

    @classmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> LightGBMModel:
        lgb = import_optional("lightgbm", f"{path}: a LightGBM model")
        raw = read_model_bytes(path, data)
        try:
            # LightGBM's parser trusts the file: check its structure first (booster_files),
            # then load it in a child process, where a crash is a model error (booster_probe).
            text = checked_lightgbm_text(raw.decode("utf-8"), path)
        except UnicodeDecodeError as exc:
            raise ModelLoadError(
                f"{path}: cannot load as a LightGBM model (.txt) ({native_message(exc)})"
            ) from exc
        payload = text.encode("utf-8")  # line endings normalised: what LightGBM is given
        verified_natively(ModelType.LIGHTGBM, payload, path, lgb.__version__)
        return cls.from_checked(path, payload, threads=threads)

    @classmethod
    def from_checked(cls, path: ModelLocation, payload: bytes, *, threads: int | None) -> Self:
        """Load a model text whose structure was checked and line endings normalised."""
        lgb = import_optional("lightgbm", f"{path}: a LightGBM model")
        _quiet_native_log(lgb)
        text = payload.decode("utf-8")
        try:
            with _native_stderr_silenced():
                booster = lgb.Booster(model_str=text)
        except Exception as exc:  # LightGBMError
            raise ModelLoadError(
                f"{path}: cannot load as a LightGBM model (.txt) ({native_message(exc)})"
            ) from exc
        return cls(path, booster, text, max(1, threads or 1))

    def _raw(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.floating]:
        # An explicit budget: instances × threads ≤ cores, as for ONNX sessions.
        return np.asarray(self.booster.predict(matrix, num_threads=self._threads))


def _quiet_native_log(lgb: Any) -> None:
    """Send LightGBM's native log to a :mod:`logging` logger instead of stdout.

    Its default logger *prints* (``[LightGBM] [Fatal] …`` on stdout, which carries only
    scored rows with ``-o -``); the same text arrives in the exception we report. A logger
    the application registered itself is left alone.
    """
    basic = getattr(lgb, "basic", None)
    if basic is not None and type(getattr(basic, "_LOGGER", None)).__name__ == "_DummyLogger":
        lgb.register_logger(logging.getLogger("modelrouter.lightgbm"))


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Discard what native code writes to file descriptor 2 meanwhile.

    LightGBM's C++ ``Log::Fatal`` prints ``[LightGBM] [Fatal] <message>`` straight to stderr
    before raising the same message as an exception; our one ``error:`` line reports it, so
    the raw copy would only break "one line per error". Loading happens before any scoring
    thread runs, so nothing else is writing to stderr then.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
