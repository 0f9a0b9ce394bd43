"""Where a run's predictions came from: the key-value metadata a Parquet output carries in
its footer (and a CSV output's sidecar), with the model's sha256."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from modelrouter import ModelPool
from modelrouter.batch.options import RunOptions

__all__ = ["provenance"]


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _model_sha256(pool: ModelPool) -> str:
    """The model's sha256: the pool's when it knows it (pinned, or read from a store), else
    the local file's (cached per path, size and mtime: datasets hash it once)."""
    from modelrouter.pool import sha256_of

    path = pool.path
    if pool.sha256 is not None:
        return pool.sha256
    if not isinstance(path, Path):
        return "unknown"
    try:
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = sha256_of(path)
        return _DIGESTS[key]
    except OSError:
        return "unknown"


def provenance(pool: ModelPool, options: RunOptions, source: str) -> dict[str, str]:
    """Key-value metadata a Parquet output carries: where its predictions came from."""
    from importlib.metadata import version

    path = str(pool.path)
    shown = path if "://" in path else os.path.abspath(path)
    command = "predict-proba" if options.mode == "proba" else "predict"
    metadata = {
        "modelrouter.version": version("modelrouter"),
        "modelrouter.command": command,
        "modelrouter.input": source if source.startswith("<") or "://" in source else os.path.abspath(source),
        "modelrouter.model_type": str(pool.model_type),
        "modelrouter.model_path": shown,
        "modelrouter.model_sha256": _model_sha256(pool),
        "modelrouter.created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if options.threshold is not None:
        metadata["modelrouter.threshold"] = repr(options.threshold)
    return metadata
