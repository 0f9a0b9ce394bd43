"""ModelPool: exclusive lending under contention, return on failure, timeouts, close, stats."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelrouter import ModelPool, ModelType, PoolClosedError, PoolTimeoutError
from modelrouter.backends.base import Prediction
from modelrouter.features import Frame, frame_length

from tests.fake_models import OneFeatureModel
from tests.waiting import SignallingLine


class RecordingModel(OneFeatureModel):
    """A fake backend that records who holds it and fails loudly if two borrowers overlap."""

    def __init__(self, name: str, delay: float = 0.0) -> None:
        super().__init__(Path(name))
        self.delay = delay
        self.holders = 0
        self.max_holders = 0
        self.calls = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.holders += 1
            self.max_holders = max(self.max_holders, self.holders)
            self.calls += 1

    def leave(self) -> None:
        with self._lock:
            self.holders -= 1

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction:
        self.enter()
        try:
            if self.delay:
                time.sleep(self.delay)
            return Prediction(labels=np.zeros(frame_length(frame)), probabilities=None)
        finally:
            self.leave()


def make_pool(size: int = 2, delay: float = 0.0) -> tuple[ModelPool, list[RecordingModel]]:
    instances = [RecordingModel(f"m{i}", delay) for i in range(size)]
    return ModelPool(ModelType.SKLEARN, instances), instances


def test_sixteen_threads_never_share_an_instance() -> None:
    pool, instances = make_pool(size=2)
    borrows_per_thread = 2_000
    errors: list[BaseException] = []
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})

    def hammer() -> None:
        try:
            for _ in range(borrows_per_thread):
                with pool.borrow() as model:
                    inner = model.model
                    assert isinstance(inner, RecordingModel)
                    inner.enter()  # held for the whole body, not only inside predict
                    try:
                        model.predict(frame)
                    finally:
                        inner.leave()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    # enter() in the body plus enter() in predict: one borrower means at most 2 nested holds.
    assert all(m.max_holders <= 2 for m in instances)
    stats = pool.stats()
    assert stats.available == stats.size == 2
    assert stats.in_use == 0
    assert stats.borrows == 16 * borrows_per_thread
    assert stats.chunks == 16 * borrows_per_thread
    assert stats.rows == 3 * 16 * borrows_per_thread
    assert stats.errors == 0
    assert sum(m.calls for m in instances) == 2 * 16 * borrows_per_thread


def test_exclusive_holders_with_slow_model() -> None:
    pool, instances = make_pool(size=2, delay=0.002)
    frame = pd.DataFrame({"x": [1.0]})

    def work() -> None:
        for _ in range(25):
            with pool.borrow() as model:
                model.predict(frame)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(m.max_holders for m in instances) == 1
    stats = pool.stats()
    assert stats.borrows == 200
    assert stats.waits > 0
    assert stats.wait_max >= stats.wait_mean > 0
    assert stats.busy_time > 0


def test_exception_in_body_returns_the_instance() -> None:
    pool, _ = make_pool(size=1)
    with pytest.raises(ZeroDivisionError), pool.borrow():
        _ = 1 / 0
    stats = pool.stats()
    assert stats.available == 1
    assert stats.errors == 1
    with pool.borrow(timeout=0.1):  # it really is back
        pass


def test_timeout_error_says_how_many_are_in_use() -> None:
    pool, _ = make_pool(size=2)
    with pool.borrow(), pool.borrow():
        started = time.perf_counter()
        with pytest.raises(PoolTimeoutError) as excinfo, pool.borrow(timeout=0.05):
            pass
        assert time.perf_counter() - started < 1.0
    assert str(excinfo.value) == "no sklearn model instance became free within 0.05 s: 2 of 2 in use"
    stats = pool.stats()
    assert stats.timeouts == 1
    assert stats.available == 2


def test_closed_pool_refuses_and_close_is_idempotent() -> None:
    pool, _ = make_pool(size=1)
    pool.close()
    pool.close()
    assert pool.closed
    with pytest.raises(PoolClosedError, match="the sklearn pool is closed"), pool.borrow():
        pass


def test_instance_returned_after_close_is_dropped() -> None:
    pool, _ = make_pool(size=1)
    with pool.borrow():
        pool.close()
    stats = pool.stats()
    assert stats.in_use == 0
    assert stats.available == 1
    assert stats.closed


def test_negative_timeout_is_rejected_eagerly() -> None:
    pool, _ = make_pool()
    with pytest.raises(ValueError, match=r"timeout must be None or ≥ 0 \(got -1\)"):
        pool.borrow(timeout=-1)


def test_empty_pool_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one instance"):
        ModelPool(ModelType.SKLEARN, [])


def test_async_borrowing_from_many_tasks() -> None:
    pool, instances = make_pool(size=2, delay=0.001)
    frame = pd.DataFrame({"x": [1.0, 2.0]})

    async def task() -> int:
        total = 0
        for _ in range(10):
            async with pool.borrow(timeout=5) as model:
                total += len(model.predict(frame))
                await asyncio.sleep(0)
        return total

    async def main() -> list[int]:
        return await asyncio.gather(*(task() for _ in range(12)))

    results = asyncio.run(main())
    assert results == [20] * 12
    stats = pool.stats()
    assert stats.borrows == 120
    assert stats.available == 2
    assert max(m.max_holders for m in instances) == 1


def test_async_borrow_returns_on_exception() -> None:
    pool, _ = make_pool(size=1)

    async def failing() -> None:
        async with pool.borrow():
            raise KeyError("boom")

    with pytest.raises(KeyError):
        asyncio.run(failing())
    assert pool.stats().available == 1
    assert pool.stats().errors == 1


def test_stats_snapshot_is_immutable_and_consistent() -> None:
    pool, _ = make_pool(size=3)
    with pool.borrow():
        inside = pool.stats()
    after = pool.stats()
    assert (inside.in_use, inside.available) == (1, 2)
    assert (after.in_use, after.available) == (0, 3)
    with pytest.raises(AttributeError):
        after.borrows = 5  # type: ignore[misc]
    assert 0.0 <= after.utilisation <= 1.0
    assert set(after.as_dict()) >= {
        "size", "available", "in_use", "borrows", "wait_total", "wait_mean", "wait_max",
        "busy_time", "utilisation", "chunks", "rows", "errors",
    }  # fmt: skip


def test_close_wakes_blocked_borrowers() -> None:
    pool, _ = make_pool(size=1)
    outcome: list[BaseException] = []

    def wait_for_instance() -> None:
        try:
            with pool.borrow(timeout=None):
                pass
        except BaseException as exc:
            outcome.append(exc)

    line = SignallingLine()
    pool._waiters = line
    with pool.borrow():
        waiters = [threading.Thread(target=wait_for_instance) for _ in range(3)]
        for t in waiters:
            t.start()
        line.wait_joined(3)  # all three are blocked, waiting for the instance
        pool.close()
        for t in waiters:
            t.join(timeout=2)
        assert not any(t.is_alive() for t in waiters)
    assert len(outcome) == 3
    assert all(isinstance(e, PoolClosedError) for e in outcome)


# -- async borrows wait without holding a thread (issue 11) --------------------------------


@pytest.mark.parametrize("timeout", [None, 2.0])
def test_32_async_borrows_with_to_thread_bodies_do_not_deadlock(timeout: float | None) -> None:
    """The bodies need the default executor (6 threads on 2 cores); waiting borrows must not hold it."""
    pool, instances = make_pool(size=2, delay=0.01)
    frame = pd.DataFrame({"x": [1.0, 2.0]})

    async def task() -> int:
        async with pool.borrow(timeout=timeout) as model:
            labels = await asyncio.to_thread(model.predict, frame)
            return len(labels)

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=2))  # as few threads as 2 cores give
        return await asyncio.wait_for(asyncio.gather(*(task() for _ in range(32))), 30)

    assert asyncio.run(main()) == [2] * 32
    assert max(m.max_holders for m in instances) == 1  # never lent twice
    stats = pool.stats()
    assert (stats.borrows, stats.in_use, stats.available, stats.timeouts) == (32, 0, 2, 0)


def test_async_and_thread_borrowers_share_one_line() -> None:
    pool, instances = make_pool(size=1, delay=0.002)
    frame = pd.DataFrame({"x": [1.0]})

    def in_thread() -> None:
        for _ in range(10):
            with pool.borrow(timeout=10) as model:
                model.predict(frame)

    async def main() -> None:
        async def one() -> None:
            async with pool.borrow(timeout=10) as model:
                await asyncio.to_thread(model.predict, frame)

        await asyncio.gather(*(one() for _ in range(20)))

    threads = [threading.Thread(target=in_thread) for _ in range(3)]
    for t in threads:
        t.start()
    asyncio.run(main())
    for t in threads:
        t.join(10)
    assert instances[0].max_holders == 1
    assert pool.stats().borrows == 50
    assert pool.stats().available == 1


def test_cancelled_async_waiter_gives_nothing_away() -> None:
    pool, _ = make_pool(size=1)
    line = SignallingLine()
    pool._waiters = line

    async def main() -> None:
        held = pool.borrow()
        await held.__aenter__()
        waiting = asyncio.ensure_future(pool.borrow().__aenter__())
        await line.until_joined()
        await held.__aexit__(None, None, None)  # handed to the waiter …
        waiting.cancel()  # … which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with pool.borrow(timeout=1):
            assert pool.stats().in_use == 1

    asyncio.run(main())
    assert pool.stats().available == 1


def test_async_timeout_then_the_instance_goes_to_the_next() -> None:
    pool, _ = make_pool(size=1)

    async def main() -> None:
        async with pool.borrow():
            with pytest.raises(PoolTimeoutError, match="1 of 1 in use"):
                async with pool.borrow(timeout=0.05):
                    pass
        async with pool.borrow(timeout=0.05):
            pass

    asyncio.run(main())
    assert pool.stats().timeouts == 1
    assert pool.stats().available == 1


@pytest.mark.parametrize("timeout", [float("inf"), 1e300])
def test_infinite_timeouts_mean_no_timeout(timeout: float) -> None:
    pool, _ = make_pool(size=1)
    line = SignallingLine()
    pool._waiters = line
    held = threading.Event()

    def hold_until_waited_for(joins: int) -> None:  # so that the borrows below really wait
        with pool.borrow():
            held.set()
            line.wait_joined(joins)

    holder = threading.Thread(target=hold_until_waited_for, args=(1,))
    holder.start()
    assert held.wait(10)
    with pool.borrow(timeout=timeout):
        pass
    holder.join(10)

    async def main() -> None:
        held.clear()
        holder = threading.Thread(target=hold_until_waited_for, args=(2,))
        holder.start()
        assert await asyncio.to_thread(held.wait, 10)
        async with pool.borrow(timeout=timeout):
            pass
        holder.join(10)

    asyncio.run(main())
    assert pool.stats().borrows == 4
    assert pool.stats().waits == 2


@pytest.mark.parametrize("timeout", [float("nan"), -0.5, float("-inf")])
def test_nan_and_negative_timeouts_are_refused(timeout: float) -> None:
    pool, _ = make_pool()
    with pytest.raises(ValueError, match=rf"timeout must be None or ≥ 0 \(got {timeout}\)"):
        pool.borrow(timeout=timeout)


def test_close_wakes_async_waiters() -> None:
    pool, _ = make_pool(size=1)
    line = SignallingLine()
    pool._waiters = line

    async def main() -> None:
        async with pool.borrow():
            waiting = asyncio.ensure_future(pool.borrow().__aenter__())
            await line.until_joined()
            pool.close()
            with pytest.raises(PoolClosedError):
                await waiting

    asyncio.run(main())


def test_pool_size_is_bounded_before_loading(tmp_path: Path) -> None:
    from modelrouter.limits import MAX_POOL_SIZE

    with pytest.raises(ValueError, match=f"between 1 and {MAX_POOL_SIZE} \\(got 100000\\)"):
        ModelPool.load(ModelType.SKLEARN, tmp_path / "never-read.pkl", size=100_000)


def test_a_borrow_queued_elsewhere_counts_as_a_wait_from_then() -> None:
    """A borrower that waited in a line of its own (serve's batching queue) tells the pool
    since when: a free instance still counts as a wait, timed from then."""
    pool, _ = make_pool(size=1)
    with pool.borrow(queued_at=time.perf_counter() - 0.25):
        pass
    with pool.borrow():
        pass
    stats = pool.stats()
    assert (stats.borrows, stats.waits, stats.timeouts) == (2, 1, 0)
    assert 0.25 <= stats.wait_max < 5
    pool.count_timeout()
    assert (pool.stats().borrows, pool.stats().timeouts) == (2, 1)
