"""ModelPool under interruption: no BaseException or cancellation loses an instance or lends
one twice (docs/specification.md §7).

Interrupts are real ``SIGINT`` signals sent to the main thread while it waits in ``borrow``;
cancellations are real ``Task.cancel`` calls. Ordering is fixed with events (a line that
signals when a borrower joins it, a model whose call signals when it starts), not sleeps.
"""

from __future__ import annotations

import _thread
import asyncio
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from modelrouter import ModelPool, ModelType, PoolTimeoutError
from modelrouter.backends.base import Prediction
from modelrouter.features import Frame, frame_length

from tests.fake_models import OneFeatureModel
from tests.waiting import SignallingLine

FRAME = pd.DataFrame({"x": [1.0, 2.0]})


class GatedModel(OneFeatureModel):
    """Records overlapping holders; a call can be held at a gate until the test opens it."""

    def __init__(self, name: str) -> None:
        super().__init__(Path(name))
        self.holders = 0
        self.max_holders = 0
        self.started = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction:
        with self._lock:
            self.holders += 1
            self.max_holders = max(self.max_holders, self.holders)
        try:
            self.started.set()
            assert self.gate.wait(30), "the test never opened the gate"
            return Prediction(labels=np.zeros(frame_length(frame)), probabilities=None)
        finally:
            with self._lock:
                self.holders -= 1


def make_pool(size: int = 1) -> tuple[ModelPool, list[GatedModel], SignallingLine]:
    instances = [GatedModel(f"m{i}") for i in range(size)]
    pool = ModelPool(ModelType.SKLEARN, instances)
    line = SignallingLine()
    pool._waiters = line
    return pool, instances, line


def assert_all_back(pool: ModelPool, instances: Sequence[GatedModel]) -> None:
    stats = pool.stats()
    assert (stats.available, stats.in_use) == (stats.size, 0), stats
    assert max(m.max_holders for m in instances) <= 1
    # Every instance can really be borrowed again, all at once.
    with contextmanager_all(pool, len(instances)) as held:
        assert {id(m.model) for m in held} == {id(m) for m in instances}


@contextmanager
def contextmanager_all(pool: ModelPool, n: int) -> Iterator[list[Any]]:
    borrows = [pool.borrow(timeout=5) for _ in range(n)]
    held = []
    try:
        for b in borrows:
            held.append(b.__enter__())
        yield held
    finally:
        for b in borrows[: len(held)]:
            b.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def sigint_raises() -> Iterator[None]:
    """The interrupts are real SIGINTs: a process that started with SIGINT ignored (a
    background job of a non-interactive shell) would drop them, and each test would hang."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt_main() -> None:
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def test_keyboard_interrupt_while_waiting_keeps_the_instance() -> None:
    pool, instances, line = make_pool()
    holder = pool.borrow()
    holder.__enter__()

    def interrupt_once_in_line() -> None:
        line.joined.wait(10)
        interrupt_main()

    killer = threading.Thread(target=interrupt_once_in_line)
    killer.start()
    with pytest.raises(KeyboardInterrupt), pool.borrow():
        pytest.fail("the interrupted borrow must not get an instance")
    killer.join()
    holder.__exit__(None, None, None)  # would be handed to the interrupted borrower
    assert_all_back(pool, instances)


def test_a_signal_pending_before_the_wait_blocks_still_interrupts_it() -> None:
    """The race a real Ctrl-C can hit: the signal is recorded but no blocking call is woken.

    ``_thread.interrupt_main`` does exactly that (it trips the handler without sending a
    signal). A plain ``Event.wait()`` then sleeps until the holder returns the instance; the
    pool's wait must end within a slice. The holder is returned after 5 s at the latest so
    that the old behaviour fails here instead of hanging.
    """
    pool, instances, line = make_pool()
    holder = pool.borrow()
    holder.__enter__()
    returned = threading.Event()

    def trip_once_in_line_then_return_late() -> None:
        line.joined.wait(10)
        _thread.interrupt_main()
        if not returned.wait(5):
            holder.__exit__(None, None, None)
            returned.set()

    helper = threading.Thread(target=trip_once_in_line_then_return_late)
    helper.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), pool.borrow():
        pytest.fail("the interrupted borrow must not get an instance")
    waited = time.monotonic() - started
    late = returned.is_set()
    returned.set()
    helper.join()
    assert not late, f"the interrupt waited {waited:.1f} s for the instance to come back"
    holder.__exit__(None, None, None)
    assert_all_back(pool, instances)


def test_keyboard_interrupt_just_after_the_hand_over_keeps_the_instance() -> None:
    """The instance is handed over and the interrupt arrives before the waiter runs again."""
    pool, instances, line = make_pool()
    interrupted = 0
    for _ in range(30):
        line.joined.clear()
        holder = pool.borrow()
        holder.__enter__()

        def release_then_interrupt(held: Any = holder) -> None:
            line.joined.wait(10)
            held.__exit__(None, None, None)
            interrupt_main()

        killer = threading.Thread(target=release_then_interrupt)
        killer.start()
        try:
            with pool.borrow(timeout=10) as model:
                model.predict(FRAME)
                killer.join()  # the interrupt lands at the latest here
        except KeyboardInterrupt:
            interrupted += 1
        killer.join()
        assert_all_back(pool, instances)
    assert interrupted == 30


def test_async_waiter_on_a_stopped_loop_does_not_swallow_the_instance() -> None:
    pool, instances, line = make_pool()
    holder = pool.borrow()
    holder.__enter__()
    loop = asyncio.new_event_loop()
    try:

        async def borrower() -> None:
            async with pool.borrow(timeout=30) as model:
                await asyncio.to_thread(model.predict, FRAME)

        async def until_in_line() -> None:
            while not line.joined.is_set():
                await asyncio.sleep(0)

        task = loop.create_task(borrower())
        loop.run_until_complete(until_in_line())  # the loop stops with the task waiting
        holder.__exit__(None, None, None)  # offered to the waiter whose loop is stopped
        with pool.borrow(timeout=5) as model:  # ... which must not keep it from others
            model.predict(FRAME)
        assert pool.stats().available == 1
        loop.run_until_complete(task)  # the loop runs again: the waiter gets its turn
    finally:
        loop.close()
    assert_all_back(pool, instances)


def test_cancelled_task_does_not_return_an_instance_a_thread_still_uses() -> None:
    pool, instances, _ = make_pool()
    model_in_use = instances[0]

    async def main() -> None:
        async def body() -> None:
            async with pool.borrow() as model:
                await asyncio.to_thread(model.predict, FRAME)

        model_in_use.gate.clear()
        task = asyncio.create_task(body())
        assert await asyncio.to_thread(model_in_use.started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The thread still predicts on the instance: it is in use, not lent again.
        assert pool.stats().in_use == 1
        with pytest.raises(PoolTimeoutError, match="1 of 1 in use"):
            async with pool.borrow(timeout=0.05):
                pass
        model_in_use.gate.set()
        async with pool.borrow(timeout=10) as model:
            await asyncio.to_thread(model.predict, FRAME)

    asyncio.run(main())
    assert_all_back(pool, instances)


def test_a_borrowed_model_refuses_calls_after_the_borrow_ended() -> None:
    pool, instances, _ = make_pool()
    with pool.borrow() as model:
        model.predict(FRAME)
    with pytest.raises(RuntimeError, match="returned to its pool"):
        model.predict(FRAME)
    assert_all_back(pool, instances)


def test_stats_count_instances_where_they_are() -> None:
    pool, _, _ = make_pool(size=2)
    with pool.borrow():
        stats = pool.stats()
        assert (stats.available, stats.in_use) == (1, 1)
    # An instance lost by a bug would show as missing, not as available.
    pool._free.clear()
    stats = pool.stats()
    assert (stats.available, stats.in_use) == (0, 0)


def _competitor(pool: ModelPool, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        try:
            with pool.borrow(timeout=rng.choice([None, 0.001, 0.01])) as model:
                model.predict(FRAME)
        except PoolTimeoutError:
            pass


async def _coroutines(pool: ModelPool, rng: random.Random) -> None:
    async def one() -> None:
        async with pool.borrow(timeout=rng.choice([None, 0.002, 0.05])) as model:
            await asyncio.to_thread(model.predict, FRAME)

    for _ in range(150):
        tasks = [asyncio.create_task(one()) for _ in range(8)]
        await asyncio.sleep(rng.uniform(0, 0.003))
        for task in rng.sample(tasks, 4):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _borrow_while_interrupted(pool: ModelPool, inside: threading.Event, rng: random.Random) -> int:
    """1,500 borrows in the main thread; returns how many a SIGINT interrupted."""
    interrupts = 0
    for _ in range(1500):
        try:
            try:
                inside.set()
                with pool.borrow(timeout=rng.choice([None, 0.01])) as model:
                    model.predict(FRAME)
            except PoolTimeoutError:
                pass
            finally:
                inside.clear()
        except KeyboardInterrupt:
            interrupts += 1
    return interrupts


# A known window remains: a signal landing inside the few lines run under the pool's lock can
# still lose an instance (seen once in ~1,000 interrupts under coverage's tracer, which widens
# it). It concerns borrows on the main thread only (a Python signal handler runs there; the
# batch engine borrows on worker threads). The deterministic interrupt tests above run in
# make test; this random soak runs in make fuzz until the window is closed.
@pytest.mark.slow
@pytest.mark.soak
def test_random_interrupts_and_cancellations_lose_nothing_and_never_share() -> None:
    """Stress: SIGINTs at random moments of blocking borrows and bodies in the main thread,
    competing threads, and coroutines cancelled or timed out at random, all on one pool."""
    rng = random.Random(20261206)
    pool, instances, _ = make_pool(size=2)
    stop = threading.Event()
    inside = threading.Event()  # the main thread is in the borrow-or-body region

    def handler(signum: int, frame: FrameType | None) -> None:
        if inside.is_set():
            raise KeyboardInterrupt

    def killer() -> None:
        while not stop.is_set():
            time.sleep(rng.uniform(0, 0.003))  # random moments, not synchronisation
            interrupt_main()

    previous = signal.signal(signal.SIGINT, handler)
    threads = [threading.Thread(target=_competitor, args=(pool, stop, random.Random(i))) for i in range(2)]
    threads.append(threading.Thread(target=lambda: asyncio.run(_coroutines(pool, random.Random(7)))))
    threads.append(threading.Thread(target=killer))
    try:
        for t in threads:
            t.start()
        interrupts = _borrow_while_interrupted(pool, inside, rng)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        signal.signal(signal.SIGINT, previous)
    assert interrupts > 20
    assert_all_back(pool, instances)
