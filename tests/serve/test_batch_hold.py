"""A small batch of a fast model waits for the pool's call in flight instead of starting
beside it (serve/batching.py, "While another call of the same pool runs"): never a slow
model's, never longer than HOLD_LIMIT, never past a queued request's timeout.

In-process, with a stand-in model that records when each call starts and ends and can be
held inside a call (an inference thread blocked on an event) until the test lets it go.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from modelrouter.serve import batching
from modelrouter.serve.inline_calls import HISTORY

BLOCKING = 100.0  # a request whose value is this blocks its call until released


class _Model:
    """Doubles ``x``; a call on BLOCKING blocks until ``release``; ``spin`` burns CPU first."""

    def __init__(self, log: list[tuple[str, float]], started: threading.Event, release: threading.Event,
                 spin: float) -> None:  # fmt: skip
        self.log, self.started, self.release, self.spin = log, started, release, spin

    def run(self, table: pa.Table, *, labels: bool, probabilities: bool, exclude: tuple[str, ...]) -> Any:
        from modelrouter.backends import Prediction

        values = table.column("x").to_numpy()
        first = float(values[0])
        self.log.append(("start", first))
        end = time.thread_time() + self.spin
        while time.thread_time() < end:
            pass
        if first == BLOCKING:
            self.started.set()
            assert self.release.wait(20)
        self.log.append(("end", first))
        return Prediction(labels=values * 2, probabilities=None)


class _Router:
    def __init__(self, spin: float) -> None:
        self.log: list[tuple[str, float]] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.spin = spin

    def acquire_model(
        self, kind: Any, timeout: float | None = None, *, queued_at: float | None = None
    ) -> Any:
        router = self

        class _Async:
            async def __aenter__(self) -> _Model:
                return _Model(router.log, router.started, router.release, router.spin)

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Async()

    def stats(self) -> dict[Any, Any]:
        return {}


def _table(value: float) -> pa.Table:
    return pa.table({"x": pa.array([value], pa.float64())})


def _run(router: _Router, body: Any) -> Any:
    from modelrouter import ModelType

    async def main() -> Any:
        with ThreadPoolExecutor(2, thread_name_prefix="inference") as threads:
            batcher = batching.Batcher(
                router,  # type: ignore[arg-type]
                ModelType.SKLEARN,
                instances=2,
                max_rows=64,
                executor=threads,
                window=0,
            )
            batcher.start()
            try:
                for i in range(HISTORY):  # the record of small calls the hold consults
                    await batcher.infer(_table(float(i)), probabilities=False, exclude=(), timeout=5)
                router.log.clear()
                return await asyncio.wait_for(body(batcher), 20)
            finally:
                router.release.set()
                await batcher.stop()

    return asyncio.run(main())


async def _blocked_call(batcher: Any, router: _Router) -> asyncio.Task[Any]:
    """A call of the pool's, running in a thread until the test releases it."""
    task: asyncio.Task[Any] = asyncio.ensure_future(
        batcher.infer(_table(BLOCKING), probabilities=False, exclude=(), timeout=5)
    )
    while not router.started.is_set():
        await asyncio.sleep(0.001)
    return task


def test_a_small_batch_of_a_fast_model_waits_for_the_call_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "HOLD_LIMIT", 30.0)
    router = _Router(spin=0.0)

    async def body(batcher: Any) -> list[float]:
        blocked = await _blocked_call(batcher, router)
        second = asyncio.ensure_future(batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=5))
        await asyncio.sleep(0.2)
        assert router.log == [("start", BLOCKING)]  # held: not started beside the call
        router.release.set()
        answers = await asyncio.gather(blocked, second)
        return [a.labels.tolist() for a in answers]

    assert _run(router, body) == [[2 * BLOCKING], [2.0]]
    assert router.log == [("start", BLOCKING), ("end", BLOCKING), ("start", 1.0), ("end", 1.0)]


def test_a_slow_models_batch_starts_beside_the_call_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "HOLD_LIMIT", 30.0)
    router = _Router(spin=batching.HOLD_BUDGET * 2)  # each call costs more than the hold allows

    async def body(batcher: Any) -> Any:
        blocked = await _blocked_call(batcher, router)
        second = await batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=5)
        assert not blocked.done()  # answered while the other call still runs
        router.release.set()
        await blocked
        return second.labels.tolist()

    assert _run(router, body) == [2.0]


def test_the_hold_ends_after_hold_limit() -> None:
    router = _Router(spin=0.0)

    async def body(batcher: Any) -> float:
        blocked = await _blocked_call(batcher, router)
        started = time.monotonic()
        second = await batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=5)
        took = time.monotonic() - started
        assert not blocked.done() and second.labels.tolist() == [2.0]
        router.release.set()
        await blocked
        return took

    assert _run(router, body) >= batching.HOLD_LIMIT


def test_the_hold_ends_before_a_queued_requests_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Held past its timeout, the request would be refused (503) though an instance is free."""
    monkeypatch.setattr(batching, "HOLD_LIMIT", 30.0)
    router = _Router(spin=0.0)

    async def body(batcher: Any) -> Any:
        blocked = await _blocked_call(batcher, router)
        second = await batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=0.3)
        assert not blocked.done()
        router.release.set()
        await blocked
        return second.labels.tolist()

    assert _run(router, body) == [2.0]


def test_large_batches_are_never_held(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelrouter.serve.inline_calls import INLINE_MAX_ROWS

    monkeypatch.setattr(batching, "HOLD_LIMIT", 30.0)
    router = _Router(spin=0.0)

    async def body(batcher: Any) -> Any:
        blocked = await _blocked_call(batcher, router)
        rows = pa.table({"x": pa.array(np.ones(INLINE_MAX_ROWS + 1))})
        second = await batcher.infer(rows, probabilities=False, exclude=(), timeout=5)
        assert not blocked.done()
        router.release.set()
        await blocked
        return len(second.labels)

    assert _run(router, body) == INLINE_MAX_ROWS + 1
