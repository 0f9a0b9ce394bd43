"""Class labels of an ONNX graph, read from the file's bytes without the ``onnx`` package.

Importing ``onnx`` costs 0.35–0.8 s of a short run, only to read a few attributes of a model
converted by skl2onnx directly (no ``class_labels`` metadata). The labels are a handful of
protocol-buffer fields, so this module reads the wire format itself, walking only the
messages on the way (``ModelProto.graph`` → ``GraphProto.node`` / ``initializer`` / ``output``
→ ``NodeProto.attribute``) and skipping everything else by its length: a tree ensemble's
large node tables are stepped over, never decoded. Field numbers are those of ``onnx.proto``
(stable since ONNX 1.0). Nothing is cached: the labels are read from the bytes that are
loaded, so they cannot go stale.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["MalformedGraphError", "field_spans", "graph_classes"]

# Ops that carry the classes in classlabels_* attributes.
CLASSIFIER_OPS = frozenset({"TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier"})
# Ops whose classlabels_* are read too: the classifiers, and ZipMap (its keys, in column order).
_LABELLED_OPS = CLASSIFIER_OPS | {"ZipMap"}
# Ops that pass the label values through unchanged (shape or type only).
_PASS_THROUGH = frozenset({"Cast", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten"})

# onnx.proto field numbers.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_OUTPUT = 1, 5, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE, _NODE_DOMAIN = 1, 2, 4, 5, 7
_ATTR_NAME, _ATTR_T, _ATTR_INTS, _ATTR_STRINGS = 1, 5, 8, 9
_VALUE_INFO_NAME = 1
_TENSOR_DATA_TYPE, _TENSOR_STRING_DATA, _TENSOR_INT32_DATA, _TENSOR_INT64_DATA = 2, 6, 5, 7
_TENSOR_NAME, _TENSOR_RAW_DATA = 8, 9
# TensorProto.DataType values with integer or text elements.
_INT_TYPES = {2: "<u1", 3: "<i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 12: "<u4", 13: "<u8"}
_STRING_TYPE = 8


class MalformedGraphError(ValueError):
    """The bytes are not a well-formed ONNX model (onnxruntime loaded them, so rarely seen)."""


Labels = npt.NDArray[np.generic]


def graph_classes(raw: bytes) -> tuple[Labels | None, list[Labels]]:
    """The first classifier node's ``classlabels_*`` and every classifier node's, in graph
    order; without a classifier node, the constant table the label output is looked up in
    (``ArrayFeatureExtractor(classes, ArgMax(scores))``, as skl2onnx builds double-precision
    classifiers), reached from the label output through shape and type ops."""
    view = memoryview(raw)
    graph = None
    for number, value in _fields(view):
        if number == _MODEL_GRAPH and isinstance(value, memoryview):
            graph = value
    if graph is None:
        return None, []
    nodes: list[_Node] = []
    initializers: dict[str, memoryview] = {}
    outputs: list[str] = []
    for number, value in _fields(graph):
        if not isinstance(value, memoryview):
            continue
        if number == _GRAPH_NODE:
            nodes.append(_node(value))
        elif number == _GRAPH_INITIALIZER:
            name = _tensor_name(value)
            if name is not None:
                initializers[name] = value
        elif number == _GRAPH_OUTPUT:
            outputs.append(_first_string(value, _VALUE_INFO_NAME) or "")
    found = [n.classes for n in nodes if n.op_type in CLASSIFIER_OPS and n.classes is not None]
    if found:
        return found[0], found
    if len(outputs) < 2:
        return None, []
    return _looked_up_labels(nodes, initializers, outputs[0]), []


@dataclass
class _Node:
    op_type: str = ""
    domain: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    classes: Labels | None = None
    value: memoryview | None = None  # a Constant node's tensor


def _node_fields(data: memoryview) -> tuple[_Node, list[memoryview]]:
    """A node's inputs, outputs, op type and domain; its attributes left undecoded."""
    node = _Node()
    attributes: list[memoryview] = []
    for number, value in _fields(data):
        if not isinstance(value, memoryview):
            continue
        if number == _NODE_INPUT:
            node.inputs.append(_text(value))
        elif number == _NODE_OUTPUT:
            node.outputs.append(_text(value))
        elif number == _NODE_OP_TYPE:
            node.op_type = _text(value)
        elif number == _NODE_ATTRIBUTE:
            attributes.append(value)
        elif number == _NODE_DOMAIN:
            node.domain = _text(value)
    return node, attributes


def _node(data: memoryview) -> _Node:
    node, attributes = _node_fields(data)
    if node.op_type not in _LABELLED_OPS and node.op_type != "Constant":
        return node
    for attribute in attributes:
        name = _first_string(attribute, _ATTR_NAME)
        if node.op_type == "Constant":
            if name == "value":
                tensors = [v for n, v in _fields(attribute) if n == _ATTR_T and isinstance(v, memoryview)]
                node.value = tensors[0] if tensors else None
        elif name == "classlabels_strings":
            texts = [
                _text(v) for n, v in _fields(attribute) if n == _ATTR_STRINGS and isinstance(v, memoryview)
            ]
            if texts:
                node.classes = np.asarray(texts, dtype=object)
                break
        # Tree ensembles spell it classlabels_int64s, linear and SVM classifiers classlabels_ints.
        elif name in ("classlabels_int64s", "classlabels_ints"):
            ints = _ints(attribute, _ATTR_INTS)
            if ints:
                node.classes = np.asarray(ints, dtype=np.int64)
                break
    return node


def _looked_up_labels(nodes: list[_Node], initializers: dict[str, memoryview], output: str) -> Labels | None:
    producers = {out: node for node in nodes for out in node.outputs}
    constants = dict(initializers)
    for node in nodes:
        if node.op_type == "Constant" and node.value is not None and node.outputs:
            constants[node.outputs[0]] = node.value
    name = output
    for _ in range(16):  # a short chain; a cycle or a long detour is not a label lookup
        producer = producers.get(name)
        if producer is None or not producer.inputs:
            return None
        if producer.op_type == "ArrayFeatureExtractor" and producer.inputs[0] in constants:
            return _tensor_labels(constants[producer.inputs[0]])
        if producer.op_type not in _PASS_THROUGH:
            return None
        name = producer.inputs[0]
    return None


def _tensor_labels(tensor: memoryview) -> Labels | None:
    """A TensorProto's elements as labels: text (object array) or int64; else ``None``."""
    data_type = 1
    for number, value in _fields(tensor):
        if number == _TENSOR_DATA_TYPE and isinstance(value, int):
            data_type = value
    if data_type == _STRING_TYPE:
        texts = [
            _text(v) for n, v in _fields(tensor) if n == _TENSOR_STRING_DATA and isinstance(v, memoryview)
        ]
        return np.asarray(texts, dtype=object)
    if data_type not in _INT_TYPES:
        return None
    raw = [v for n, v in _fields(tensor) if n == _TENSOR_RAW_DATA and isinstance(v, memoryview)]
    if raw:
        return np.frombuffer(raw[0], dtype=_INT_TYPES[data_type]).astype(np.int64)
    number = _TENSOR_INT64_DATA if data_type in (7, 13) else _TENSOR_INT32_DATA
    return np.asarray(_ints(tensor, number), dtype=np.int64)


# -- the wire format ---------------------------------------------------------------------------


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of a message: varints and fixed widths as ints, length-delimited
    fields as views (not copied, not decoded)."""
    for number, value, _, _ in field_spans(data):
        yield number, value


def field_spans(data: memoryview) -> Iterator[tuple[int, int | memoryview, int, int]]:
    """(field number, value, start, end) of a message's fields, ``data[start:end]`` being the
    whole field (key included): what a rewrite copies unchanged."""
    position, end = 0, len(data)
    while position < end:
        start = position
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > end:
                raise MalformedGraphError("a field runs past the end of its message")
            value = data[position : position + length]
            position += length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if position + width > end:
                raise MalformedGraphError("a field runs past the end of its message")
            value = struct.unpack_from("<q" if wire == 1 else "<i", data, position)[0]
            position += width
        else:
            raise MalformedGraphError(f"unsupported wire type {wire}")
        yield number, value, start, position


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise MalformedGraphError("a truncated or overlong varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(message: memoryview, number: int) -> list[int]:
    """A repeated integer field, packed or not."""
    values: list[int] = []
    for n, value in _fields(message):
        if n != number:
            continue
        if isinstance(value, int):
            values.append(_signed(value))
        else:
            position = 0
            while position < len(value):
                item, position = _varint(value, position)
                values.append(_signed(item))
    return values


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8")


def _first_string(message: memoryview, number: int) -> str | None:
    for n, value in _fields(message):
        if n == number and isinstance(value, memoryview):
            return _text(value)
    return None


def _tensor_name(tensor: memoryview) -> str | None:
    return _first_string(tensor, _TENSOR_NAME)
