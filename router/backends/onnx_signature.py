"""What an ONNX session's inputs, outputs and metadata say about the model (docs/specification.md §4).

One tensor input holding every feature, or one input per column; the label output and the
probability output (a tensor, or a ZipMap's sequence of maps); the ``feature_names`` and
``class_labels`` metadata properties. Read once when an :class:`~modelrouter.backends.
onnx_backend.OnnxModel` is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import InputSchema, parse_name_list
from modelrouter.errors import ModelLoadError
from modelrouter.locations import ModelLocation

__all__ = [
    "ONNX_NAME_RULE",
    "TENSOR_DTYPES",
    "ProbabilityOutput",
    "dtype_of",
    "input_schema",
    "metadata_names",
    "output_count",
    "probability_output",
]

# ONNX tensor element types (as onnxruntime spells them) → our schema dtype names.
TENSOR_DTYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}

#: ONNX converters (skl2onnx and most others) make input names C identifiers.
ONNX_NAME_RULE = "skl2onnx"


def _name_rule(path: ModelLocation, metadata: Mapping[str, str]) -> str:
    """How the ``feature_names`` metadata changed the source's column names: the
    ``feature_name_rule`` property ``convert`` records for a model whose library stores them
    changed (LightGBM), else skl2onnx's own rule."""
    from modelrouter.feature_names import NAME_RULES

    rule = metadata.get("feature_name_rule", ONNX_NAME_RULE)
    if rule not in NAME_RULES:
        known = ", ".join(NAME_RULES)
        raise ModelLoadError(f"{path}: feature_name_rule metadata {rule!r} is not one of {known}")
    return rule


def input_schema(
    path: ModelLocation, inputs: Sequence[Any], metadata: Mapping[str, str]
) -> tuple[InputSchema, bool]:
    """The model's input schema, and whether one tensor holds every feature (else one input
    per column, matched by input name). :class:`ModelLoadError` for an unsupported input
    type, or a width that neither the graph nor the ``feature_names`` metadata gives."""
    for i in inputs:
        if i.type not in TENSOR_DTYPES:
            raise ModelLoadError(f"{path}: input {i.name!r} has unsupported type {i.type}")
    first = inputs[0]
    if len(inputs) != 1 or (_width(first.shape) == 1 and "feature_names" not in metadata):
        return (
            InputSchema(
                names=tuple(i.name for i in inputs),
                dtypes=tuple(TENSOR_DTYPES[i.type] for i in inputs),
                width=len(inputs),
                name_rule=ONNX_NAME_RULE,
            ),
            False,
        )
    width = _width(first.shape)
    names = metadata_names(path, metadata, "feature_names")
    if names is not None and width not in (None, len(names)):
        raise ModelLoadError(
            f"{path}: feature_names metadata lists {len(names)} names "
            f"but input {first.name!r} has width {width}"
        )
    if width is None:
        if names is None:
            raise ModelLoadError(
                f"{path}: input {first.name!r} has no fixed width and no feature_names metadata"
            )
        width = len(names)
    dtype = TENSOR_DTYPES[first.type]
    schema = InputSchema(
        names=names, dtypes=(dtype,) * width, width=width, name_rule=_name_rule(path, metadata)
    )
    return schema, True


_FLOAT32: np.dtype[Any] = np.dtype(np.float32)


@dataclass(frozen=True)
class ProbabilityOutput:
    """The output holding the probabilities, if any: its name, whether it is a ZipMap's
    sequence of maps, its element type and its fixed width (``None`` when dynamic)."""

    name: str | None = None
    zipmap: bool = False
    dtype: np.dtype[Any] = _FLOAT32
    width: int | None = None


def probability_output(outputs: Sequence[Any]) -> ProbabilityOutput:
    """The last of ``outputs`` (those after the label output) that holds probabilities."""
    found = ProbabilityOutput()
    for out in outputs:
        if out.type.startswith("seq(map("):
            found = ProbabilityOutput(out.name, True, found.dtype, found.width)
        elif out.type.startswith(("tensor(float", "seq(tensor(float")) or out.type == "tensor(double)":
            shape = out.shape or []
            found = ProbabilityOutput(
                out.name,
                found.zipmap,
                np.dtype(np.float64 if "double" in out.type else np.float32),
                shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else None,
            )
    return found


def metadata_names(path: ModelLocation, metadata: Mapping[str, str], key: str) -> tuple[str, ...] | None:
    """A names list from the metadata (``None`` when absent); :class:`ModelLoadError` if malformed."""
    if key not in metadata:
        return None
    try:
        names = parse_name_list(metadata[key], what=key, strings_only=key == "feature_names")
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    if not names:
        raise ModelLoadError(f"{path}: metadata {key!r} lists no names")
    if key == "feature_names" and len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ModelLoadError(f"{path}: metadata 'feature_names' lists {twice[0]!r} more than once")
    return names


def output_count(shape: Sequence[Any] | None) -> int:
    """Outputs per row from the label output's shape: ``[N, k]`` with a fixed k > 1 is k."""
    if shape and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1:
        return int(shape[1])
    return 1


def dtype_of(classes: npt.NDArray[np.generic], fallback: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(object) if classes.dtype.kind in "OUS" else classes.dtype if classes.size else fallback


def _width(shape: Sequence[Any] | None) -> int | None:
    if not shape or len(shape) < 2:
        return 1
    last = shape[-1]
    return last if isinstance(last, int) else None
