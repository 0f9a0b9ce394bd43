"""The router's public surface, and that it stays a library (no CLI imports)."""

from __future__ import annotations

import subprocess
import sys

import router


def test_all_is_exactly_the_public_names() -> None:
    public = {name for name in dir(router) if not name.startswith("_")}
    modules = {"backends", "config", "errors", "features", "model_router", "model_type", "pool"}
    modules.add("annotations")  # from __future__ import annotations
    assert set(router.__all__) == public - modules
    assert router.__all__ == sorted(router.__all__)


def test_router_never_imports_the_cli_or_presentation_libraries() -> None:
    code = (
        "import sys, router, router.backends.sklearn_backend, router.backends.onnx_backend, "
        "router.backends.skops_backend; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'cli', 'click')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
