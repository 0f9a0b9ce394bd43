"""Which model calls run on the event loop (router/serve/inline_calls.py): only small batches
of a model whose recent calls were cheap; never a model that sleeps or waits; never again
after one ran long there."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from modelrouter.serve.inline_calls import DEFAULT_BUDGET, HISTORY, INLINE_MAX_ROWS, SLOW_WALL, InlineCalls


def _spin(seconds: float) -> None:
    """Burn CPU (not sleep) for ``seconds``."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_the_first_calls_are_measured_before_any_runs_on_the_loop() -> None:
    calls = InlineCalls(budget=0.01)
    for _ in range(HISTORY - 1):
        assert not calls.allows(1)
        calls.timed(lambda: None, 1)
    assert not calls.allows(1)
    calls.timed(lambda: None, 1)
    assert calls.allows(1)
    assert not calls.allows(INLINE_MAX_ROWS + 1)  # a big batch: a thread, whatever the record


def test_one_expensive_call_among_the_last_ones_keeps_calls_in_threads() -> None:
    calls = InlineCalls(budget=0.002)
    for _ in range(HISTORY):
        calls.timed(lambda: None, 1)
    calls.timed(lambda: _spin(0.01), 1)
    assert not calls.allows(1)
    for _ in range(HISTORY - 1):
        calls.timed(lambda: None, 1)
    assert not calls.allows(1)  # still among the last HISTORY
    calls.timed(lambda: None, 1)
    assert calls.allows(1)


def test_a_model_that_sleeps_is_never_run_on_the_loop() -> None:
    """Little CPU, long calls (I/O, a lock, a sleep): its wall time counts."""
    calls = InlineCalls(budget=0.002)
    for _ in range(HISTORY):
        calls.timed(lambda: time.sleep(SLOW_WALL + 0.01), 1)
    assert not calls.allows(1)


def test_a_long_call_on_the_loop_sends_every_later_call_to_threads() -> None:
    calls = InlineCalls(budget=0.002)
    for _ in range(HISTORY):
        calls.timed(lambda: None, 1)
    assert calls.allows(1)
    calls.run_here(lambda: _spin(0.02), 1)
    assert calls.tripped
    for _ in range(3 * HISTORY):
        calls.timed(lambda: None, 1)
    assert not calls.allows(1)


def test_budget_zero_runs_everything_in_threads() -> None:
    calls = InlineCalls(budget=0.0)
    for _ in range(HISTORY):
        calls.timed(lambda: None, 1)
    assert not calls.allows(1)


def test_large_batches_do_not_count_toward_the_record() -> None:
    calls = InlineCalls(budget=0.002)
    for _ in range(HISTORY):
        calls.timed(lambda: None, 1)
    calls.timed(lambda: _spin(0.01), INLINE_MAX_ROWS + 1)
    assert calls.allows(1)


# -- in a batcher: which thread scored the batch -------------------------------------------------


class _Recording:
    """A model stand-in recording the thread of each call; ``delay`` sleeps first."""

    def __init__(self, threads: list[str], delay: float) -> None:
        self.threads, self.delay = threads, delay

    def run(self, table: pa.Table, *, labels: bool, probabilities: bool, exclude: tuple[str, ...]) -> Any:
        from modelrouter.backends import Prediction

        if self.delay:
            time.sleep(self.delay)
        self.threads.append(threading.current_thread().name)
        return Prediction(labels=np.asarray(table.column("x")) * 2, probabilities=None)


class _Router:
    def __init__(self, delay: float) -> None:
        self.threads: list[str] = []
        self.delay = delay

    def acquire_model(
        self, kind: Any, timeout: float | None = None, *, queued_at: float | None = None
    ) -> Any:
        router = self

        class _Async:
            async def __aenter__(self) -> _Recording:
                return _Recording(router.threads, router.delay)

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Async()

    def stats(self) -> dict[Any, Any]:
        return {}


def _threads_used(delay: float, requests: int, budget: float | None = 0.002) -> list[str]:
    """The threads that scored ``requests`` 1-row requests in turn (``budget`` None: the
    Batcher's default)."""
    from modelrouter import ModelType
    from modelrouter.serve.batching import Batcher

    router = _Router(delay)

    async def main() -> None:
        with ThreadPoolExecutor(1, thread_name_prefix="inference") as executor:
            batcher = Batcher(
                router,  # type: ignore[arg-type]
                ModelType.SKLEARN,
                instances=1,
                max_rows=64,
                executor=executor,
                inline_budget=DEFAULT_BUDGET if budget is None else budget,
            )
            batcher.start()
            try:
                for i in range(requests):
                    table = pa.table({"x": pa.array([float(i)])})
                    answer = await batcher.infer(table, probabilities=False, exclude=(), timeout=5)
                    assert answer.labels is not None and answer.labels.tolist() == [2.0 * i]
            finally:
                await batcher.stop()

    asyncio.run(main())
    return router.threads


def test_a_fast_model_is_scored_on_the_loop_once_measured() -> None:
    threads = _threads_used(delay=0.0, requests=HISTORY + 5)
    assert all(name.startswith("inference") for name in threads[:HISTORY])
    assert threads[HISTORY:] == ["MainThread"] * 5


@pytest.mark.parametrize("budget", [0.0, 0.002])
def test_a_slow_model_or_no_budget_keeps_every_call_in_a_thread(budget: float) -> None:
    delay = SLOW_WALL + 0.01 if budget else 0.0
    threads = _threads_used(delay=delay, requests=HISTORY + 3, budget=budget)
    assert all(name.startswith("inference") for name in threads)


def test_by_default_every_call_runs_off_the_event_loop() -> None:
    """The service's promise: inference runs off the event loop unless an app opts in."""
    from modelrouter.serve.asgi import ServeConfig

    assert ServeConfig().inline_budget == 0
    threads = _threads_used(delay=0.0, requests=HISTORY + 5, budget=None)
    assert len(threads) == HISTORY + 5
    assert all(name.startswith("inference") for name in threads)


def test_inline_budget_is_checked() -> None:
    from modelrouter.errors import InvalidOptionError
    from modelrouter.serve.asgi import ServeConfig

    with pytest.raises(InvalidOptionError, match="inline_budget: must be a number ≥ 0 seconds"):
        ServeConfig(inline_budget=float("nan"))
