"""A skl2onnx classifier's graph without its ZipMap node, rewritten from the file's bytes.

skl2onnx's default conversion ends a classifier in a ``ZipMap`` node (``ai.onnx.ml``) that
turns the float ``[N, C]`` probability tensor into one ``{class: probability}`` dict per
row. onnxruntime executes it even when only the label output is asked for, and building
those dicts costs more than the model itself (a logistic regression: 0.22 s instead of
0.08 s per 200k rows; docs/performance.md). When the graph has exactly that shape, the
model is given to onnxruntime without the node: the graph output becomes the ZipMap's input
tensor, whose columns are in the ZipMap's ``classlabels_*`` order (the dict keys), so the
probabilities are the same numbers as the dicts held (docs/models.md).

The rewrite edits the protocol-buffer wire format (field numbers of ``onnx.proto``) without
importing ``onnx``: the ``ModelProto.graph`` field is rebuilt with the ZipMap node left out
and its graph output replaced by a new ``ValueInfoProto``; every other field is copied
byte for byte. Anything else — no ZipMap, several, a ZipMap output another node consumes,
a ZipMap input that is not computed by the graph — leaves the bytes as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrouter.backends.onnx_graph import (
    Labels,
    MalformedGraphError,
    _first_string,
    _Node,
    _node,
    field_spans,
)

__all__ = ["Unzipped", "without_zipmap"]

# onnx.proto field numbers (ModelProto, GraphProto, ValueInfoProto, TypeProto and its Tensor,
# TensorShapeProto); TensorProto.FLOAT is element type 1.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 1, 12, 13
_VALUE_INFO_NAME, _VALUE_INFO_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_ELEM_TYPE, _TENSOR_SHAPE = 1, 2
_SHAPE_DIM, _DIM_VALUE = 1, 1
_FLOAT = 1
_ML_DOMAIN = "ai.onnx.ml"


@dataclass(frozen=True)
class Unzipped:
    """The rewritten model: ``raw`` outputs the float tensor ``output`` instead of the ZipMap's
    dicts, its columns being ``classes`` (the ZipMap's keys, in order)."""

    raw: bytes
    output: str
    zipmap_output: str
    classes: Labels


def without_zipmap(raw: bytes) -> Unzipped | None:
    """``raw`` without its ZipMap node when the graph has the expected shape, else ``None``.

    The shape: one ZipMap node (``ai.onnx.ml``) with one input and one output; its output is
    a graph output (not the first, which is the label), consumed by no other node and not
    described in ``value_info``; its input is computed by another node and is not already a
    graph output; its ``classlabels_*`` are present. Raises :class:`MalformedGraphError` on
    bytes that are not well-formed protocol buffers.
    """
    view = memoryview(raw)
    graphs = [
        (value, start, end)
        for number, value, start, end in field_spans(view)
        if number == _MODEL_GRAPH and isinstance(value, memoryview)
    ]
    if len(graphs) != 1:  # several graph fields are merged by a parser: not ours to rewrite
        return None
    graph, graph_start, graph_end = graphs[0]
    fields = _graph_fields(graph)
    zipmaps = [entry for entry in fields.nodes if _is_zipmap(entry[0])]
    if len(zipmaps) != 1:
        return None
    zipmap, node_start, node_end = zipmaps[0]
    assert zipmap.classes is not None  # _is_zipmap
    if not _detachable(zipmap, fields):
        return None
    source, target = zipmap.inputs[0], zipmap.outputs[0]
    _, output_start, output_end = fields.outputs[fields.output_names.index(target)]
    replacement = _field(_GRAPH_OUTPUT, _float_matrix_info(source, len(zipmap.classes)))
    new_graph = _spliced(graph, [(node_start, node_end, b""), (output_start, output_end, replacement)])
    model = bytes(view[:graph_start]) + _field(_MODEL_GRAPH, new_graph) + bytes(view[graph_end:])
    return Unzipped(raw=model, output=source, zipmap_output=target, classes=zipmap.classes)


@dataclass(frozen=True)
class _GraphFields:
    """The ``GraphProto`` fields the rewrite reads, each with its byte span in the graph."""

    nodes: list[tuple[_Node, int, int]]
    outputs: list[tuple[str, int, int]]
    #: Names described in ``value_info``.
    described: set[str]

    @property
    def output_names(self) -> list[str]:
        return [name for name, _, _ in self.outputs]


def _graph_fields(graph: memoryview) -> _GraphFields:
    """The nodes, graph outputs and ``value_info`` names of ``graph``, in file order."""
    fields = _GraphFields(nodes=[], outputs=[], described=set())
    for number, value, start, end in field_spans(graph):
        if not isinstance(value, memoryview):
            continue
        if number == _GRAPH_NODE:
            fields.nodes.append((_node(value), start, end))
        elif number == _GRAPH_OUTPUT:
            fields.outputs.append((_first_string(value, _VALUE_INFO_NAME) or "", start, end))
        elif number == _GRAPH_VALUE_INFO:
            fields.described.add(_first_string(value, _VALUE_INFO_NAME) or "")
    return fields


def _detachable(zipmap: _Node, fields: _GraphFields) -> bool:
    """Whether the graph stays the same model, minus the dicts, without ``zipmap``.

    Its output must be exactly one graph output, not the first (the label), undescribed in
    ``value_info`` and consumed by no other node; its input must be computed by another node
    and not be a graph output already (it becomes one)."""
    source, target = zipmap.inputs[0], zipmap.outputs[0]
    names = fields.output_names
    if names.count(target) != 1 or names.index(target) == 0:
        return False
    if source in names or target in fields.described:
        return False
    others = [node for node, _, _ in fields.nodes if node is not zipmap]
    if any(target in node.inputs for node in others):
        return False
    return any(source in node.outputs for node in others)


def _spliced(graph: memoryview, pieces: list[tuple[int, int, bytes]]) -> bytes:
    """``graph`` with each ``(start, end)`` span replaced by its bytes (spans do not overlap)."""
    new_graph = bytearray()
    position = 0
    for start, end, new in sorted(pieces):
        new_graph += graph[position:start]
        new_graph += new
        position = end
    new_graph += graph[position:]
    return bytes(new_graph)


def _is_zipmap(node: _Node) -> bool:
    return (
        node.op_type == "ZipMap"
        and node.domain == _ML_DOMAIN
        and len(node.inputs) == 1
        and len(node.outputs) == 1
        and node.classes is not None
        and len(node.classes) > 0
    )


def _float_matrix_info(name: str, width: int) -> bytes:
    """A ``ValueInfoProto``: ``name``, a float tensor of shape ``[N, width]`` (N unnamed)."""
    shape = _field(_SHAPE_DIM, b"") + _field(_SHAPE_DIM, _key(_DIM_VALUE, 0) + _varint(width))
    tensor = _key(_TENSOR_ELEM_TYPE, 0) + _varint(_FLOAT) + _field(_TENSOR_SHAPE, shape)
    return _field(_VALUE_INFO_NAME, name.encode("utf-8")) + _field(
        _VALUE_INFO_TYPE, _field(_TYPE_TENSOR, tensor)
    )


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _key(number, 2) + _varint(len(payload)) + payload


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    if value < 0:
        raise MalformedGraphError("a negative length")  # never: lengths and widths are counts
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
