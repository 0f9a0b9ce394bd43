"""What ``modelrouter models`` reports about each configured model type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router import ModelPool, ModelRouterError, load_settings
from router.pool import sha256_of

__all__ = ["describe_models"]


def describe_models(config: Path | None) -> dict[str, Any]:
    """Load each configured model once and describe it (errors are reported, not raised)."""
    settings = load_settings(config)
    described: list[dict[str, Any]] = []
    for kind, model in settings.models.items():
        entry: dict[str, Any] = {
            "model_type": str(kind),
            "default": kind == settings.default_model_type,
            "path": str(model.path),
            "format": {"sklearn": "pickle"}.get(str(kind), str(kind)),
            "sha256": sha256_of(model.path) if model.path.is_file() else "(missing)",
            "pinned": model.sha256 is not None,
            "pool_size": model.pool_size,
            "loads": False,
            "error": None,
            "inputs": {"names": None, "dtypes": [], "width": 0},
            "classes": None,
        }
        try:
            pool = ModelPool.load(kind, model.path, 1, sha256=model.sha256, trusted=model.trusted)
        except ModelRouterError as exc:
            entry["error"] = str(exc)
        else:
            instance = pool.prototype
            schema = instance.schema
            entry["loads"] = True
            entry["inputs"] = {
                "names": None if schema.names is None else list(schema.names),
                "dtypes": list(schema.dtypes),
                "width": schema.width,
            }
            classes = instance.classes
            entry["classes"] = None if classes is None else [_plain(c) for c in classes]
            pool.close()
        described.append(entry)
    return {"config": str(settings.source), "models": described}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
