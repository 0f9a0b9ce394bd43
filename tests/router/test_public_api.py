"""The router's public surface, and that it stays a library (no CLI imports)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import modelrouter


def test_all_is_exactly_the_public_names() -> None:
    assert modelrouter.__all__ == sorted(modelrouter.__all__)
    assert set(modelrouter.__all__) == set(modelrouter._HOME)  # every export has one home
    for name in modelrouter.__all__:
        assert getattr(modelrouter, name) is getattr(importlib.import_module(modelrouter._HOME[name]), name)
    helpers = {"annotations", "importlib", "Any", "TYPE_CHECKING"}
    modules = {  # submodules and subpackages appear as attributes once another test imported them
        "backends",
        "batch",
        "cli",
        "config",
        "errors",
        "explain",
        "feature_names",
        "features",
        "interruptible",
        "known_warnings",
        "limits",
        "locations",
        "model_router",
        "model_type",
        "pool",
        "pool_borrow",
        "pool_claims",
        "pool_loading",
        "pool_stats",
        "remote",
        "serve",
        "storage",
        "store_errors",
        "tools",
    }
    public = {name for name in dir(modelrouter) if not name.startswith("_")}
    assert public - helpers - modules == set(modelrouter.__all__)


def test_importing_the_package_loads_nothing_heavy() -> None:
    """`modelrouter.cli` is a subpackage: `modelrouter --help` must not pay for numpy/pyarrow."""
    code = (
        "import sys, modelrouter, modelrouter.cli; "
        "heavy = ('numpy', 'pyarrow', 'pandas', 'sklearn', 'onnxruntime'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_router_never_imports_the_cli_or_presentation_libraries() -> None:
    code = (
        "import sys, modelrouter, modelrouter.backends.sklearn_backend, modelrouter.backends.onnx_backend, "
        "modelrouter.backends.skops_backend; "
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('typer', 'rich', 'click') or m.startswith('modelrouter.cli')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_local_model_loads_without_the_object_store_clients(tmp_path: Path) -> None:
    """The model fetch (pyarrow.fs, boto3) is imported only for a model at a URI."""
    import joblib
    from sklearn.dummy import DummyClassifier

    model = tmp_path / "m.pkl"
    joblib.dump(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), model)
    code = (
        "import sys, modelrouter; "
        f"modelrouter.ModelPool.load('sklearn', {str(model)!r}, 1).close(); "
        "print(sorted(m for m in sys.modules if m in ('modelrouter.remote', 'pyarrow.fs', 'boto3')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
