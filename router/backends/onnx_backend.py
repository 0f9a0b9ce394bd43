"""ONNX models run by onnxruntime.

Handles what skl2onnx and other converters produce: one tensor input or one input per
column, classifiers with or without ZipMap, a fixed or dynamic batch dimension, and the
``feature_names`` / ``class_labels`` metadata properties (CONTRACT section 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import InputSchema, Model, Prediction, parse_name_list, read_model_bytes
from modelrouter.errors import DataError, ModelLoadError
from modelrouter.features import NUMERIC_DTYPES, Frame, column_as, frame_length, numeric_matrix
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["OnnxModel"]

# ONNX tensor element types (as onnxruntime spells them) → our schema dtype names.
_TENSOR_DTYPES: dict[str, str] = {
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

_CLASSIFIER_OPS = {
    "TreeEnsembleClassifier",
    "LinearClassifier",
    "SVMClassifier",
}


class OnnxModel(Model):
    """An ``onnxruntime.InferenceSession`` plus what we learned about its inputs and outputs."""

    model_type = ModelType.ONNX

    def __init__(
        self, path: ModelLocation, session: onnxruntime.InferenceSession, graph_classes: Any
    ) -> None:
        super().__init__(path)
        self.session = session
        inputs = session.get_inputs()
        self._input_names = [i.name for i in inputs]
        metadata = session.get_modelmeta().custom_metadata_map
        for i in inputs:
            if i.type not in _TENSOR_DTYPES:
                raise ModelLoadError(f"{path}: input {i.name!r} has unsupported type {i.type}")
        first = inputs[0]
        self._batch = first.shape[0] if first.shape and isinstance(first.shape[0], int) else None
        if (len(inputs) == 1 and _width(first.shape) != 1) or (
            len(inputs) == 1 and "feature_names" in metadata
        ):
            # One tensor holds every feature.
            self._single_tensor = True
            width = _width(first.shape)
            names = parse_name_list(metadata["feature_names"]) if "feature_names" in metadata else None
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
            dtype = _TENSOR_DTYPES[first.type]
            self._schema = InputSchema(names=names, dtypes=(dtype,) * width, width=width)
        else:
            # One input per column, matched by input name.
            self._single_tensor = False
            self._schema = InputSchema(
                names=tuple(i.name for i in inputs),
                dtypes=tuple(_TENSOR_DTYPES[i.type] for i in inputs),
                width=len(inputs),
            )

        outputs = session.get_outputs()
        self._label_output = outputs[0].name
        self._label_type = outputs[0].type
        self._proba_output: str | None = None
        self._zipmap = False
        for out in outputs[1:]:
            if out.type.startswith("seq(map("):
                self._proba_output, self._zipmap = out.name, True
            elif out.type.startswith("tensor(float") or out.type == "tensor(double)":
                self._proba_output = out.name
        classes = graph_classes
        if classes is None and "class_labels" in metadata:
            classes = np.asarray(parse_name_list(metadata["class_labels"]))
            if self._label_type == "tensor(int64)":
                classes = classes.astype(np.int64)
        self._classes: npt.NDArray[np.generic] | None = classes
        if self._classes is None and self._proba_output is not None:
            raise ModelLoadError(
                f"{path}: the model outputs probabilities but its class labels are unknown "
                "(no classifier node with classlabels_* and no class_labels metadata)"
            )

    @classmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> OnnxModel:
        import onnxruntime as ort

        raw = read_model_bytes(path, data)
        options = ort.SessionOptions()
        # An explicit thread count: each session owns an intra-op pool, and K sessions with the
        # default (all cores) oversubscribe the CPU — measured 2× slower (FIELD-NOTES).
        options.intra_op_num_threads = max(1, threads or 1)
        options.inter_op_num_threads = 1
        # No spinning: idle intra-op threads that spin burn the cores that other instances, and
        # our own reader and writer threads, need (measured: no slower when alone, and 17 s
        # instead of 5 s for 1M rows while another process kept one core busy).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{path}: cannot load as an ONNX model ({first_line})") from exc
        return cls(path, session, _graph_classes(raw))

    @property
    def schema(self) -> InputSchema:
        return self._schema

    @property
    def classes(self) -> npt.NDArray[np.generic] | None:
        return self._classes

    @property
    def has_probabilities(self) -> bool:
        return self._classes is not None and self._proba_output is not None

    @property
    def label_dtype(self) -> np.dtype[np.generic]:
        if self._label_type == "tensor(string)":
            return np.dtype(object)
        if self._classes is not None:
            return self._classes.dtype
        return np.dtype(_TENSOR_DTYPES.get(self._label_type, "float32"))

    def _feeds(self, frame: Frame, features: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
        dtypes = self._schema.dtypes
        if self._single_tensor:
            if dtypes[0] in NUMERIC_DTYPES:
                return {self._input_names[0]: numeric_matrix(frame, features, dtypes[0])}
            matrix = np.empty((frame_length(frame), len(features)), dtype=object)
            for j, name in enumerate(features):
                matrix[:, j] = column_as(frame, name, dtypes[j])
            return {self._input_names[0]: matrix}
        return {name: column_as(frame, name, dtypes[j]).reshape(-1, 1) for j, name in enumerate(features)}

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction:
        feeds = self._feeds(frame, features)
        wanted = []
        if labels:
            wanted.append(self._label_output)
        if probabilities:
            assert self._proba_output is not None
            wanted.append(self._proba_output)
        rows = frame_length(frame)
        outputs = self._run_batched(feeds, wanted, rows)
        label_values = proba = None
        if labels:
            label_values = np.asarray(outputs[0]).reshape(rows, -1)
            label_values = label_values[:, 0] if label_values.shape[1] == 1 else label_values
            if label_values.dtype.kind in "US":
                label_values = label_values.astype(object)
        if probabilities:
            raw = outputs[-1]
            proba = self._zipmap_matrix(raw) if self._zipmap else np.asarray(raw, dtype=np.float64)
        return Prediction(labels=label_values, probabilities=proba)

    def _run_batched(self, feeds: dict[str, npt.NDArray[Any]], wanted: list[str], rows: int) -> list[Any]:
        try:
            if self._batch is None or self._batch == rows:
                return list(self.session.run(wanted, feeds))
            # Fixed batch dimension: run in slices of that size, padding the last one by
            # repeating its final row, and drop the padding from the results.
            step = self._batch
            parts: list[list[Any]] = []
            for start in range(0, rows, step):
                stop = min(start + step, rows)
                sliced = {}
                for name, array in feeds.items():
                    piece = array[start:stop]
                    if len(piece) < step:
                        pad = np.repeat(piece[-1:], step - len(piece), axis=0)
                        piece = np.concatenate([piece, pad])
                    sliced[name] = piece
                out = self.session.run(wanted, sliced)
                parts.append([o[: stop - start] for o in out])
            return [
                [d for p in parts for d in p[i]]  # ZipMap: a list of dicts per slice
                if self._zipmap and name == self._proba_output
                else np.concatenate([np.asarray(p[i]) for p in parts])
                for i, name in enumerate(wanted)
            ]
        except DataError:
            raise
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"the ONNX model rejected the input ({first_line})") from exc

    def _zipmap_matrix(self, rows: list[dict[Any, float]]) -> npt.NDArray[np.float64]:
        assert self._classes is not None
        keys = list(self._classes)
        return np.array([[row[k] for k in keys] for row in rows], dtype=np.float64)


def _width(shape: Sequence[Any] | None) -> int | None:
    if not shape or len(shape) < 2:
        return 1
    last = shape[-1]
    return last if isinstance(last, int) else None


def _graph_classes(raw: bytes) -> npt.NDArray[np.generic] | None:
    """Class labels from the classifier node's ``classlabels_*`` attribute, if any."""
    import onnx

    model = onnx.load_model_from_string(raw)
    for node in model.graph.node:
        if node.op_type not in _CLASSIFIER_OPS:
            continue
        for attr in node.attribute:
            if attr.name == "classlabels_strings" and attr.strings:
                return np.asarray([s.decode("utf-8") for s in attr.strings], dtype=object)
            # Tree ensembles spell it classlabels_int64s, linear and SVM classifiers classlabels_ints.
            if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                return np.asarray(list(attr.ints), dtype=np.int64)
    return None
