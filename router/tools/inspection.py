"""What ``modelrouter models`` and ``modelrouter inspect`` report about a model file.

Everything a user needs to feed a model: input names and dtypes in order, classes, format,
file size, sha256, the versions recorded in the file (scikit-learn for pickles and skops
files; producer, IR version and opsets for ONNX) and whether it loads here — with the error
when it does not. Loading goes through the router's backends (and its sha256 pin check, which
runs before anything is unpickled), so "loads" means "predict would load it".
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from modelrouter import ModelPool, ModelRouterError, ModelType, load_settings
from modelrouter.backends import Model
from modelrouter.backends.base import read_model_bytes
from modelrouter.locations import ModelLocation

__all__ = ["describe_file", "describe_models"]

_FORMATS: dict[ModelType, str] = {
    ModelType.SKLEARN: "pickle",
    ModelType.ONNX: "onnx",
    ModelType.SKOPS: "skops",
    ModelType.XGBOOST: "xgboost booster (json/ubj)",
    ModelType.LIGHTGBM: "lightgbm booster (text)",
}
# router's ModelVersionWarning says which version pickled the model (sklearn's own warning,
# which carries it as an attribute, is consumed by the backend).
_PICKLED_WITH = re.compile(r"pickled with scikit-learn (\S+), running")


def describe_models(config: Path | None) -> dict[str, Any]:
    """Load each configured model once and describe it (errors are reported, not raised).

    Warnings raised while loading (e.g. a scikit-learn version mismatch) are re-issued, so
    the CLI shows them as before, and also listed in each entry's ``warnings``.
    """
    settings = load_settings(config)
    described: list[dict[str, Any]] = []
    for kind, model in settings.models.items():
        facts = describe_file(model.path, kind, trusted=model.trusted, sha256=model.sha256)
        entry: dict[str, Any] = {
            "model_type": facts.pop("model_type"),
            "default": kind == settings.default_model_type,
            "path": facts.pop("path"),
            "pinned": model.sha256 is not None,
            "pool_size": model.pool_size,
            **facts,
        }
        for message in entry["warnings"]:
            warnings.warn(message, UserWarning, stacklevel=2)
        described.append(entry)
    return {"config": str(settings.source), "models": described}


def describe_file(
    location: ModelLocation,
    model_type: ModelType | str,
    *,
    trusted: Sequence[str] = (),
    sha256: str | None = None,
    data: bytes | None = None,
) -> dict[str, Any]:
    """Describe the model at ``location`` (a local file or a URI) as ``model_type``; never
    raises for a bad or unreachable model (its error is reported in the entry).

    Keys: ``model_type``, ``path``, ``format``, ``file_size`` (bytes, ``None`` if unread),
    ``sha256`` (``"(missing)"`` for a missing local file, ``"(not read)"`` when the model
    could not be read), ``loads``, ``error``, ``warnings``, ``estimator`` (class
    name, scikit-learn formats), ``inputs`` (``names``/``dtypes``/``width``, the columns fed
    in order), ``graph_inputs`` (ONNX: name, type, shape), ``classes``, ``versions``
    (``sklearn``, ``skops``, ``producer``, ``onnx_ir`` — those the format records) and
    ``opset`` (ONNX: domain → version). ``sha256`` pins the digest (checked before loading).
    The model is read once (``data``: its bytes, already read by the caller); every fact and
    the load come from those bytes.
    """
    kind = ModelType.parse(model_type)
    error: str | None = None
    if data is None:
        data, error = _read(location)
    entry: dict[str, Any] = {
        "model_type": str(kind),
        "path": str(location),
        "format": _FORMATS.get(kind, str(kind)),
        "file_size": None if data is None else len(data),
        "sha256": _digest(location, data),
        "loads": False,
        "error": error,
        "warnings": [],
        "estimator": None,
        "inputs": {"names": None, "dtypes": [], "width": 0},
        "graph_inputs": None,
        "classes": None,
        "outputs": None,
        "versions": {},
        "opset": None,
    }
    if data is None:
        return entry
    if kind is ModelType.ONNX:
        entry.update(_onnx_file_facts(data))
    elif kind is ModelType.SKOPS:
        entry["versions"] = _skops_versions(data)
    pool, load_error, entry["warnings"] = _load_recording_warnings(kind, location, sha256, trusted, data)
    if pool is None:
        entry["error"] = load_error
    else:
        entry.update(_loaded_facts(pool.prototype))
        pool.close()
    if kind is ModelType.SKLEARN and entry["loads"]:
        entry["versions"] = {"sklearn": _pickled_sklearn_version(entry["warnings"])}
    return entry


def _read(location: ModelLocation) -> tuple[bytes | None, str | None]:
    """The model's bytes (a URI is fetched, :mod:`modelrouter.remote`), or ``None`` and why not."""
    try:
        return read_model_bytes(location, None), None
    except ModelRouterError as exc:
        return None, str(exc)


def _digest(location: ModelLocation, data: bytes | None) -> str:
    """The sha256 of ``data``; ``(missing)`` for a local file that does not exist, else ``(not read)``."""
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    missing = isinstance(location, Path) and not location.exists()
    return "(missing)" if missing else "(not read)"


def _load_recording_warnings(
    kind: ModelType, location: ModelLocation, sha256: str | None, trusted: Sequence[str], data: bytes
) -> tuple[ModelPool | None, str | None, list[str]]:
    """Load a one-instance pool from ``data``: the pool (``None`` if it fails to load), the load
    error's text, and the model warnings raised while loading.

    Model warnings (version mismatches) are UserWarnings: they are returned, as text, and not
    shown; any other warning is re-issued with its own filters."""
    with warnings.catch_warnings(record=True) as caught:
        # Model warnings are UserWarnings; others keep their filters.
        warnings.simplefilter("always", UserWarning)
        pool: ModelPool | None = None
        error: str | None = None
        try:
            pool = ModelPool.load(kind, location, 1, threads=1, sha256=sha256, trusted=trusted, data=data)
        except ModelRouterError as exc:
            error = str(exc)
    # (after the recording block: a warning re-issued inside it would be recorded again)
    return pool, error, _model_warnings(caught)


def _model_warnings(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """The model warnings (UserWarnings) among ``caught`` as text; the others are re-issued."""
    recorded = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for w in caught:
        if not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return recorded


def _pickled_sklearn_version(model_warnings: Sequence[str]) -> str:
    """The scikit-learn version a loaded pickle was written with.

    The router's mismatch warning names it; without one, scikit-learn checked that the pickled
    version equals the installed one."""
    import sklearn

    recorded = [m.group(1) for m in map(_PICKLED_WITH.search, model_warnings) if m]
    return recorded[0] if recorded else str(sklearn.__version__)


def _loaded_facts(instance: Model) -> dict[str, Any]:
    schema = instance.schema
    classes = instance.classes
    spec = instance.outputs
    shown_classes: list[Any] | None = None if classes is None else [_plain(c) for c in classes]
    if spec.multi and any(c is not None for c in spec.classes):
        # One list per output (None for an output whose classes are unknown).
        shown_classes = [None if c is None else [_plain(x) for x in c] for c in spec.classes]
    facts: dict[str, Any] = {
        "loads": True,
        "inputs": {
            "names": None if schema.names is None else list(schema.names),
            "dtypes": list(schema.dtypes),
            "width": schema.width,
        },
        "classes": shown_classes,
        "outputs": spec.count,
    }
    estimator = getattr(instance, "estimator", None)
    if estimator is not None:
        facts["estimator"] = _estimator_name(estimator)
    session = getattr(instance, "session", None)
    if session is not None:
        facts["graph_inputs"] = [
            {"name": i.name, "type": i.type, "shape": [d if isinstance(d, int) else None for d in i.shape]}
            for i in session.get_inputs()
        ]
    return facts


def _onnx_file_facts(data: bytes) -> dict[str, Any]:
    """Versions and opsets from the ONNX protobuf (no session needed; empty if unreadable)."""
    try:
        import onnx

        model = onnx.load_model_from_string(data)
    except Exception:  # a corrupt file: the load error is reported by the backend
        return {}
    opset: dict[str, int] = {}
    for entry in model.opset_import:
        domain = entry.domain or "ai.onnx"
        opset[domain] = max(opset.get(domain, 0), int(entry.version))
    metadata = {p.key: p.value for p in model.metadata_props}
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or None
    versions: dict[str, Any] = {"onnx_ir": int(model.ir_version), "producer": producer}
    if "sklearn_version" in metadata:
        versions["sklearn"] = metadata["sklearn_version"]
    return {"versions": versions, "opset": opset}


def _skops_versions(data: bytes) -> dict[str, Any]:
    """The skops and scikit-learn versions in a skops file's schema (read, never executed)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except Exception:  # not a skops file: the load error is reported by the backend
        return {}
    versions: dict[str, Any] = {}
    if isinstance(schema, dict):
        if "_skops_version" in schema:
            versions["skops"] = schema["_skops_version"]
        state = schema.get("content", {})
        state = state.get("content", {}) if isinstance(state, dict) else {}
        recorded = state.get("_sklearn_version") if isinstance(state, dict) else None
        if isinstance(recorded, dict) and isinstance(recorded.get("content"), str):
            try:
                versions["sklearn"] = json.loads(recorded["content"])
            except ValueError:
                versions["sklearn"] = recorded["content"]
    return versions


def _estimator_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list):
        inner = ", ".join(_estimator_name(step) for _, step in steps)
        return f"{type(estimator).__name__}({inner})"
    return type(estimator).__name__


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


#: The key-value metadata prefix of the Parquet files ``predict`` writes.
PROVENANCE_PREFIX = "modelrouter."


def is_data_file(path: ModelLocation) -> bool:
    """Whether ``inspect`` describes ``path`` as data (a Parquet file) rather than a model."""
    return PurePosixPath(str(path)).suffix.lower() in (".parquet", ".pq")


def describe_data_file(path: Path | str) -> dict[str, Any]:
    """Describe a Parquet file from its footer alone (no data read): rows, row groups,
    columns and types, page compression, the writer, the pandas index and — for a file that
    ``predict`` wrote — where its predictions came from (``provenance``: tool version,
    command, input, model type, path and sha256, time). Raises :class:`DataError` when the
    file is not readable Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from modelrouter import DataError
    from modelrouter.storage import object_store as storage

    try:
        if isinstance(path, str):  # a URI: the footer is read with ranged requests
            with storage.open_random(storage.Uri.parse(path)) as handle:
                size = handle.size()
                parquet = pq.ParquetFile(handle)
                metadata, schema = parquet.metadata, parquet.schema_arrow
        else:
            size = path.stat().st_size
            metadata = pq.read_metadata(path)
            schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable Parquet file ({first})") from None
    pairs = {
        k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in (schema.metadata or {}).items()
    }
    codecs = sorted(
        {
            metadata.row_group(g).column(c).compression
            for g in range(metadata.num_row_groups)
            for c in range(metadata.num_columns)
        }
    )
    try:
        index = (schema.pandas_metadata or {}).get("index_columns", [])
    except (ValueError, TypeError):
        index = []
    return {
        "path": str(path),
        "format": "parquet",
        "file_size": size,
        "rows": metadata.num_rows,
        "row_groups": metadata.num_row_groups,
        "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
        "compression": codecs,
        "created_by": metadata.created_by,
        "pandas_index": index,
        "provenance": {
            k.removeprefix(PROVENANCE_PREFIX): v for k, v in pairs.items() if k.startswith(PROVENANCE_PREFIX)
        },
    }
