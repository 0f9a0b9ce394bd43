"""Skip SciPy's docstring rendering at import, in the ``modelrouter`` command only.

Importing scikit-learn imports ``scipy.stats``, and SciPy 1.16+ decorates ~470 functions with
``scipy._lib._array_api.xp_capabilities``, which parses each docstring with numpydoc's
``FunctionDoc`` and renders it again to append an "Array API Standard Support" note. On this
project's machine that is ~0.4 s of the ~0.8 s ``scipy.stats`` import (cProfile: 474
decorator calls, 0.40 s) — a fixed cost every scikit-learn run paid, a quarter of a
1,000-row run, and the reason such a run was slower than the naive pandas script.

:func:`install` adds an import hook that, when the first SciPy submodule outside
``scipy._lib`` is about to be imported, replaces the decorator's ``FunctionDoc`` with a
stand-in that keeps each docstring as written. Nothing else changes: the capabilities table
(what the decorator is for) is filled as before, and only the note is missing from
``help()`` of SciPy functions in this process. The library (``import modelrouter``) never
installs it; if SciPy's private layout differs, the hook does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["install"]


class _AsWritten:
    """What the decorator needs of ``FunctionDoc``: sections to append to, and the text back."""

    def __init__(self, function: Any, *args: Any, **kwargs: Any) -> None:
        self._doc = getattr(function, "__doc__", None) or ""

    def __getitem__(self, section: str) -> list[str]:
        return []  # the appended note goes nowhere

    def __str__(self) -> str:
        # The decorator drops the first line (the signature FunctionDoc renders).
        return "\n" + self._doc


def _patch() -> None:
    try:
        from scipy._lib import _array_api
    except Exception:  # not installed, or laid out differently: leave SciPy alone
        return
    if isinstance(getattr(_array_api, "FunctionDoc", None), type):
        _array_api.FunctionDoc = _AsWritten


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith("scipy.") and not fullname.startswith("scipy._lib") and _scipy_ready():
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _patch()
        return None  # the regular finders import the module


def _scipy_ready() -> bool:
    """``scipy`` itself is imported and done initialising (its ``__init__`` imports private
    submodules too: patching from inside it would import ``scipy._lib`` half-way)."""
    scipy = sys.modules.get("scipy")
    spec = getattr(scipy, "__spec__", None)
    return scipy is not None and not getattr(spec, "_initializing", False)


def install() -> None:
    """Install the hook (idempotent); a no-op once a SciPy submodule is already imported."""
    if any(isinstance(finder, _Hook) for finder in sys.meta_path):
        return
    if any(name.startswith("scipy.") and not name.startswith("scipy._lib") for name in sys.modules):
        return  # too late to matter
    sys.meta_path.insert(0, _Hook())
