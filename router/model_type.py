"""The model types the router knows, and how a file suffix maps to one."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

__all__ = ["ModelType", "model_type_names", "suffix_rules"]

_SUFFIXES: dict[str, str] = {
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".joblib": "sklearn",
    ".onnx": "onnx",
    ".skops": "skops",
    # Native booster files: read as data by their libraries, never unpickled.
    ".json": "xgboost",
    ".ubj": "xgboost",
    ".txt": "lightgbm",
}


class ModelType(StrEnum):
    """A kind of model file, and so the backend (strategy) that runs it.

    A ``StrEnum``: ``"onnx"`` and ``ModelType.ONNX`` compare equal, so either may be passed
    at the library's boundaries.
    """

    SKLEARN = "sklearn"
    ONNX = "onnx"
    SKOPS = "skops"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"

    @classmethod
    def parse(cls, value: str | ModelType) -> ModelType:
        """Return the member named ``value``; raise ``ConfigError`` listing the valid names."""
        if isinstance(value, cls):
            return value  # the usual call, on every borrow: no text to normalise
        from modelrouter.errors import ConfigError

        try:
            return cls(str(value).strip().lower())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ConfigError(f"unknown model type {value!r} (valid: {valid})") from None

    @classmethod
    def from_path(cls, path: str | Path) -> ModelType:
        """Infer the type from a model file's suffix (``.pkl``/``.onnx``/``.skops``/``.json``/``.txt``…)."""
        from modelrouter.errors import ConfigError

        suffix = Path(path).suffix.lower()
        try:
            return cls(_SUFFIXES[suffix])
        except KeyError:
            known = ", ".join(sorted(_SUFFIXES))
            raise ConfigError(
                f"{path}: cannot infer the model type from suffix {suffix!r} "
                f"(known: {known}); pass --model-type"
            ) from None


def model_type_names(last: str = "or") -> str:
    """The model types for help texts: ``sklearn, onnx, skops, xgboost or lightgbm``.

    Generated from :class:`ModelType`, so a new type shows up in every help text at once.
    """
    names = [m.value for m in ModelType]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def suffix_rules() -> str:
    """How a file's suffix picks its type, for help texts: ``.pkl/.pickle/.joblib → sklearn, …``."""
    by_type: dict[str, list[str]] = {}
    for suffix, kind in _SUFFIXES.items():
        by_type.setdefault(kind, []).append(suffix)
    return ", ".join(f"{'/'.join(suffixes)} → {kind}" for kind, suffixes in by_type.items())
