"""ONNX weights kept in external files: found, checked and inlined (docs/models.md).

onnxruntime given a model's bytes resolves an external ``location`` against the working
directory; here each is resolved against the ``.onnx`` file's own folder, must stay inside
it, and is read exactly, so what is loaded is what was read and checked. A sha256 pin covers
the ``.onnx`` file alone, so the backend refuses to pin a model with external data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelrouter.errors import ModelLoadError
from modelrouter.locations import ModelLocation

__all__ = ["external_tensors", "with_external_data"]


def external_tensors(raw: bytes) -> list[tuple[Any, str]]:
    """``(tensor, location)`` of every tensor of the model kept in an external file.

    Cheap when there are none: ``onnx`` is imported only when the bytes mention a
    ``location`` (the key of every external-data entry)."""
    if b"location" not in raw:
        return []
    import onnx

    try:
        model = onnx.load_model_from_string(raw)
    except Exception:  # not parseable: onnxruntime reports it when loading
        return []
    found = []
    for tensor in _all_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            found.append((tensor, entries.get("location", "")))
    return found


def _all_tensors(graph: Any) -> Iterator[Any]:
    """The initializers and constant tensors of ``graph`` and of its subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _all_tensors(sub)


def with_external_data(path: ModelLocation, raw: bytes) -> bytes:
    """The model with its external data read in, resolved against the model's own folder.

    onnxruntime given bytes resolves ``location`` against the working directory: a run from
    another folder would silently score with another ``weights.bin``. Here each location is
    resolved against the folder of the ``.onnx`` file, must stay inside it (no absolute
    path, no ``..``, no symlink out), and is read exactly (offset, length); the tensors are
    then inlined, so what is loaded is what was read and checked."""
    tensors = external_tensors(raw)
    if not tensors:
        return raw
    import onnx

    if not isinstance(path, Path):
        raise ModelLoadError(
            f"{path}: the model keeps weights in external data, which is read only for local "
            "model files; save it with its weights inline"
        )
    folder = path.resolve().parent
    model = onnx.load_model_from_string(raw)
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        tensor.raw_data = _external_bytes(path, folder, tensor)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
    serialized: bytes = model.SerializeToString()
    return serialized


def _external_bytes(path: Path, folder: Path, tensor: Any) -> bytes:
    """The bytes of one external tensor, read exactly (offset, length) from a file that must
    stay inside ``folder``; :class:`ModelLoadError` otherwise."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    target = (folder / location).resolve()
    if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
        raise ModelLoadError(
            f"{path}: tensor {tensor.name!r} keeps its data at {location!r}, outside the "
            f"model's folder {str(folder)!r}; refusing to read it"
        )
    try:
        offset = int(entries.get("offset", "0") or 0)
        length = int(entries["length"]) if entries.get("length") else None
    except ValueError:
        raise ModelLoadError(
            f"{path}: tensor {tensor.name!r} has a malformed external-data offset or length"
        ) from None
    try:
        with target.open("rb") as handle:
            handle.seek(offset)
            chunk: bytes = handle.read() if length is None else handle.read(length)
    except OSError as exc:
        raise ModelLoadError(
            f"{path}: cannot read the external data {location!r} of tensor {tensor.name!r} ({exc.strerror})"
        ) from None
    if length is not None and len(chunk) != length:
        raise ModelLoadError(
            f"{path}: the external data {location!r} of tensor {tensor.name!r} is "
            f"{len(chunk)} bytes at offset {offset}, expected {length}"
        )
    return chunk
