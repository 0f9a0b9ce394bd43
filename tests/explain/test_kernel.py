"""The compiled TreeSHAP kernel: built once per process, and again after a failed build."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from modelrouter.explain import tree_kernel
from modelrouter.explain.tree_models import tree_method
from sklearn.tree import DecisionTreeRegressor


def _check() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(x, x[:, 0] * x[:, 1])
    method = tree_method(model)
    assert method is not None
    explained = method.explain(x, np.zeros(50, np.int64))
    np.testing.assert_allclose(
        explained.base + explained.contributions.sum(axis=1), model.predict(x), rtol=1e-9
    )


def test_rebuilt_after_a_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second build rebinds fresh compiled functions (it once re-jitted a compiled one)."""
    tree_kernel._compile()
    monkeypatch.setattr(tree_kernel, "_compiled", None)
    _check()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_an_unusable_cache_falls_back_to_compiling_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    build = tree_kernel._build
    calls: list[bool] = []

    def failing_cache(*, cache: bool) -> Any:
        calls.append(cache)
        if cache:
            raise OSError("cache index being rewritten")
        return build(cache=cache)

    monkeypatch.setattr(tree_kernel, "_compiled", None)
    monkeypatch.setattr(tree_kernel, "_build", failing_cache)
    _check()
    assert calls == [True, False]
