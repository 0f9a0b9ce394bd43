"""What ``/pool/stats`` says about waiting under ``serve``, in-process: a request that finds
every instance busy is a pool ``wait``, one refused with 503 a pool ``timeout`` — without
batching (the request waits in the pool's own line) and with it (in the batcher's queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from modelrouter import ModelPool, ModelRouter, ModelType, PoolStats, PoolTimeoutError
from modelrouter.backends.base import Prediction
from modelrouter.features import Frame, frame_length

from tests.fake_models import OneFeatureModel

DELAY = 0.3  # seconds each model call takes
TABLE = pa.table({"x": [1.0, 2.0]})


class SleepyModel(OneFeatureModel):
    """A one-feature regressor whose calls take :data:`DELAY` seconds."""

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction:
        time.sleep(DELAY)
        return Prediction(labels=np.zeros(frame_length(frame)), probabilities=None)


def _router() -> ModelRouter:
    router = ModelRouter()
    router.register(ModelType.SKLEARN, ModelPool(ModelType.SKLEARN, [SleepyModel("sleepy")]))
    return router


async def _per_request(router: ModelRouter, timeout: float, requests: int) -> list[Any]:
    """``requests`` concurrent requests through the service's unbatched borrow."""
    from modelrouter.serve.asgi import ServeConfig, _Service
    from modelrouter.serve.metrics_endpoint import ServeMetrics

    service = _Service(ServeConfig(timeout=timeout, max_batch_rows=0), router, ServeMetrics(router.stats))
    with ThreadPoolExecutor(1) as threads:
        service.inference = threads

        def work(model: Any) -> Prediction:
            result: Prediction = model.run(TABLE)
            return result

        return await asyncio.gather(
            *(service.borrowed(ModelType.SKLEARN, work) for _ in range(requests)), return_exceptions=True
        )


async def _batched(router: ModelRouter, timeout: float, requests: int) -> list[Any]:
    """``requests`` requests through a batcher of one dispatcher, each queued while the
    previous one is being scored (so none can share its call)."""
    from modelrouter.serve.batching import Batcher

    with ThreadPoolExecutor(1) as threads:
        batcher = Batcher(
            router, ModelType.SKLEARN, instances=1, max_rows=64, executor=threads, inline_budget=0
        )
        batcher.start()
        try:
            tasks = []
            for _ in range(requests):
                tasks.append(
                    asyncio.ensure_future(
                        batcher.infer(TABLE, probabilities=False, exclude=(), timeout=timeout)
                    )
                )
                await asyncio.sleep(DELAY / 3)  # the first is in its model call by now
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await batcher.stop()


def _sklearn(router: ModelRouter) -> PoolStats:
    return router.stats()[ModelType.SKLEARN]


@pytest.mark.parametrize("through", [_per_request, _batched], ids=["per-request", "batching"])
def test_a_request_that_finds_every_instance_busy_is_a_wait(through: Any) -> None:
    router = _router()
    try:
        answers = asyncio.run(through(router, 10.0, 2))
        assert [type(a).__name__ for a in answers] == ["Prediction", "Prediction"]
        stats = _sklearn(router)
        assert (stats.borrows, stats.waits, stats.timeouts, stats.in_use) == (2, 1, 0, 0)
        # The second waited for the first's call: most of DELAY (less the head start it gave).
        assert DELAY / 3 < stats.wait_max < 5
        assert stats.wait_total == pytest.approx(stats.wait_max, abs=0.05)
    finally:
        router.close()


@pytest.mark.parametrize("through", [_per_request, _batched], ids=["per-request", "batching"])
def test_a_request_refused_with_503_is_a_timeout(through: Any) -> None:
    router = _router()
    try:
        answers = asyncio.run(through(router, 0.05, 2))
        assert type(answers[0]).__name__ == "Prediction"
        assert isinstance(answers[1], PoolTimeoutError)
        assert "no sklearn model instance became free within 0.05 s" in str(answers[1])
        stats = _sklearn(router)
        assert (stats.borrows, stats.waits, stats.timeouts, stats.in_use) == (1, 0, 1, 0)
    finally:
        router.close()


def test_a_lone_request_is_no_wait() -> None:
    router = _router()
    try:
        answers = asyncio.run(_batched(router, 10.0, 1)) + asyncio.run(_per_request(router, 10.0, 1))
        assert [type(a).__name__ for a in answers] == ["Prediction", "Prediction"]
        stats = _sklearn(router)
        assert (stats.borrows, stats.waits, stats.timeouts) == (2, 0, 0)
        assert stats.wait_max < 0.1
    finally:
        router.close()
