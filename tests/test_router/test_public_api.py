"""The router's public surface, and that it stays a library (no CLI imports)."""

from __future__ import annotations

import subprocess
import sys

import modelrouter


def test_all_is_exactly_the_public_names() -> None:
    public = {name for name in dir(modelrouter) if not name.startswith("_")}
    # Submodules show up as attributes once imported (the CLI lives at modelrouter.cli).
    modules = {"backends", "cli", "config", "errors", "features", "model_router", "model_type", "pool"}
    modules.add("annotations")  # from __future__ import annotations
    assert set(modelrouter.__all__) == public - modules
    assert modelrouter.__all__ == sorted(modelrouter.__all__)


def test_router_never_imports_the_cli_or_presentation_libraries() -> None:
    code = (
        "import sys, modelrouter, modelrouter.backends.sklearn_backend, modelrouter.backends.onnx_backend, "
        "modelrouter.backends.skops_backend; "
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('typer', 'rich', 'click') or m.startswith('modelrouter.cli')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
