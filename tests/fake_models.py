"""A fake model backend for the pool tests: one float feature, labels only, no file to read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import InputSchema, Model
from modelrouter.model_type import ModelType


class OneFeatureModel(Model):
    """The contract properties of a nameless one-feature regressor; subclasses add _infer
    (and their own ``load`` when loading does more than build one from the path's name)."""

    model_type = ModelType.SKLEARN

    def __init__(self, path: Path | str) -> None:
        super().__init__(Path(str(path)))

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> Model:
        return cls(str(path))

    @property
    def schema(self) -> InputSchema:
        return InputSchema(names=None, dtypes=("float64",), width=1)

    @property
    def classes(self) -> npt.NDArray[np.generic] | None:
        return None

    @property
    def label_dtype(self) -> np.dtype[np.generic]:
        return np.dtype(np.float64)
