"""ModelRouter: singleton identity, reset, default type, routing errors, stats."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pandas as pd
import pytest
from modelrouter import ModelPool, ModelRouter, ModelType, UnknownModelTypeError, get_router, reset_router


def test_singleton_identity_across_threads() -> None:
    seen: list[ModelRouter] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        seen.append(get_router())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in seen}) == 1
    assert seen[0] is get_router()


def test_reset_closes_pools_and_forgets_the_instance(models_dir: Path) -> None:
    router = get_router()
    pool = ModelPool.load(ModelType.SKLEARN, models_dir / "forest.pkl", size=1)
    router.register(ModelType.SKLEARN, pool)
    reset_router()
    assert pool.closed
    assert get_router() is not router
    assert get_router().types == ()


def test_default_type_and_routing(models_dir: Path, wine: tuple[pd.DataFrame, object]) -> None:
    frame, _ = wine
    router = get_router()
    router.register("sklearn", ModelPool.load("sklearn", models_dir / "forest.pkl", size=1))
    assert router.default_type is ModelType.SKLEARN  # the only one registered
    router.register(ModelType.ONNX, ModelPool.load(ModelType.ONNX, models_dir / "forest.onnx", size=1))
    assert router.default_type is None  # two pools, none chosen
    router.default_type = "onnx"
    with router.acquire_model() as model:
        assert model.model_type is ModelType.ONNX
        assert len(model.predict(frame)) == len(frame)
    with router.acquire_model("sklearn") as model:
        assert model.model_type is ModelType.SKLEARN


def test_unregistered_type_names_the_registered_ones(models_dir: Path) -> None:
    router = get_router()
    router.register(ModelType.SKLEARN, ModelPool.load(ModelType.SKLEARN, models_dir / "forest.pkl", size=1))
    with pytest.raises(UnknownModelTypeError) as excinfo:
        router.acquire_model(ModelType.ONNX)
    assert str(excinfo.value) == "no pool for 'onnx' (registered: sklearn)"


def test_unknown_type_name_is_a_config_error() -> None:
    from modelrouter import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"unknown model type 'tensorflow' \(valid: sklearn, onnx, skops, xgboost, lightgbm\)",
    ):
        get_router().acquire_model("tensorflow")


def test_register_rejects_a_pool_of_another_type(models_dir: Path) -> None:
    pool = ModelPool.load(ModelType.SKLEARN, models_dir / "forest.pkl", size=1)
    with pytest.raises(ValueError, match="cannot register a sklearn pool as onnx"):
        get_router().register(ModelType.ONNX, pool)


def test_stats_snapshot_values(models_dir: Path, wine: tuple[pd.DataFrame, object]) -> None:
    frame, _ = wine
    router = get_router()
    router.register(ModelType.SKLEARN, ModelPool.load(ModelType.SKLEARN, models_dir / "forest.pkl", size=2))
    for _ in range(3):
        with router.acquire_model() as model:
            model.predict(frame)
    stats = router.stats()[ModelType.SKLEARN]
    assert (stats.size, stats.available, stats.in_use) == (2, 2, 0)
    assert (stats.borrows, stats.chunks, stats.rows, stats.errors) == (3, 3, 3 * len(frame), 0)
    assert stats.busy_time > 0


def test_async_acquire_model(models_dir: Path, wine: tuple[pd.DataFrame, object]) -> None:
    frame, _ = wine
    router = get_router()
    router.register(ModelType.ONNX, ModelPool.load(ModelType.ONNX, models_dir / "forest.onnx", size=2))

    async def score() -> int:
        async with router.acquire_model(ModelType.ONNX, timeout=5) as model:
            return int(model.predict_proba(frame).shape[0])

    async def main() -> list[int]:
        return await asyncio.gather(*(score() for _ in range(6)))

    assert asyncio.run(main()) == [len(frame)] * 6
    assert router.stats()[ModelType.ONNX].borrows == 6
