"""ModelPool.load(background=True): the first instance lends while the next one loads.

The pool has its full size from the start; a borrower that finds every loaded instance busy
has one more loaded and waits for it (never fails because of it); a load that fails fails
the waiting borrowers, every later borrow and ``wait_loaded`` — never a hang, never a
silently smaller pool. Instances nobody needed are not loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrouter import ModelLoadError, ModelPool, PoolClosedError, PoolTimeoutError
from modelrouter.backends.base import Model, Prediction
from modelrouter.features import Frame, frame_length

from tests.fake_models import OneFeatureModel


class GatedModel(OneFeatureModel):
    """A fake backend whose loads after the first wait for the test to open a gate."""

    gate: ClassVar[threading.Event] = threading.Event()
    loads: ClassVar[int] = 0
    #: 1-based load that raises (``None``: every load succeeds).
    fail_at: ClassVar[int | None] = None

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> Model:
        cls.loads += 1
        number = cls.loads
        if number > 1:
            assert cls.gate.wait(10), "the test never opened the gate"
        if number == cls.fail_at:
            raise RuntimeError(f"load {number} broke")
        return cls(Path(str(path)))

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction:
        return Prediction(labels=np.zeros(frame_length(frame)), probabilities=None)


@pytest.fixture(autouse=True)
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[GatedModel]]:
    monkeypatch.setattr("modelrouter.pool.backend_for", lambda kind: GatedModel)
    GatedModel.gate = threading.Event()
    GatedModel.loads = 0
    GatedModel.fail_at = None
    yield GatedModel
    GatedModel.gate.set()  # never leave a loading thread blocked


def load(size: int) -> ModelPool:
    return ModelPool.load("sklearn", "m.pkl", size, data=b"model", background=True)


def borrow_in_thread(pool: ModelPool) -> tuple[threading.Thread, list[object]]:
    """Borrow on a thread, hold until the pool is closed or the test ends; record the outcome."""
    outcome: list[object] = []

    def run() -> None:
        try:
            with pool.borrow(timeout=10) as model:
                outcome.append(model.model)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_first_instance_lends_and_a_busy_pool_loads_the_next() -> None:
    pool = load(3)
    assert pool.size == 3 and pool.stats().size == 3 and pool.loading == 0
    with pool.borrow() as first:
        assert GatedModel.loads == 1  # nobody needed a second one yet
        thread, outcome = borrow_in_thread(pool)
        thread.join(0.2)
        assert thread.is_alive() and outcome == []  # waits for the instance it asked for
        assert pool.loading == 1
        GatedModel.gate.set()
        thread.join(5)
        assert len(outcome) == 1 and outcome[0] is not first.model
    pool.wait_loaded(timeout=5)
    assert pool.loading == 0 and GatedModel.loads == 2  # the third was never needed
    stats = pool.stats()
    assert (stats.size, stats.available, stats.in_use, stats.borrows) == (3, 3, 0, 2)


def test_unneeded_instances_are_never_loaded() -> None:
    pool = load(4)
    for _ in range(5):
        with pool.borrow(timeout=1):
            pass
    pool.wait_loaded(timeout=1)
    assert GatedModel.loads == 1 and pool.stats().size == 4


def test_failed_later_instance_fails_waiters_later_borrows_and_wait_loaded() -> None:
    GatedModel.fail_at = 2
    pool = load(2)
    with pool.borrow():
        thread, outcome = borrow_in_thread(pool)
        thread.join(0.2)
        assert thread.is_alive()
        GatedModel.gate.set()
        thread.join(5)
        assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, ModelLoadError)
    assert str(error) == "m.pkl: loading instance 2 of 2 failed (RuntimeError: load 2 broke)"
    with pytest.raises(ModelLoadError, match="instance 2 of 2"):
        pool.wait_loaded(timeout=5)
    with pytest.raises(ModelLoadError, match="instance 2 of 2"), pool.borrow(timeout=1):
        pass


def test_async_waiter_gets_the_load_error() -> None:
    import asyncio

    GatedModel.fail_at = 2
    pool = load(2)

    async def main() -> None:
        async with pool.borrow():
            waiter = asyncio.ensure_future(pool.borrow(timeout=10).__aenter__())
            await asyncio.sleep(0.1)
            assert not waiter.done()
            GatedModel.gate.set()
            with pytest.raises(ModelLoadError, match="instance 2 of 2"):
                await asyncio.wait_for(waiter, 5)

    asyncio.run(main())


def test_wait_loaded_times_out_naming_the_count() -> None:
    pool = load(2)
    with pool.borrow():
        thread, _ = borrow_in_thread(pool)  # asks for the second instance
        with pytest.raises(PoolTimeoutError, match=r"within 0.05 s \(1 of 2 loaded\)"):
            pool.wait_loaded(timeout=0.05)
        with pytest.raises(PoolTimeoutError, match="1 of 2 in use, 1 still loading"), pool.borrow(0.05):
            pass
        GatedModel.gate.set()
    thread.join(5)
    pool.wait_loaded(timeout=5)


def test_close_while_loading_stops_the_loader_and_wait_loaded_returns() -> None:
    pool = load(3)
    with pool.borrow():
        thread, outcome = borrow_in_thread(pool)
        thread.join(0.1)
        pool.close()
        pool.wait_loaded(timeout=1)  # nothing left to wait for
        GatedModel.gate.set()
        thread.join(5)
    assert [type(o) for o in outcome] == [PoolClosedError]


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(1, 4),
    fail_at=st.one_of(st.none(), st.integers(2, 4)),
    borrowers=st.integers(1, 6),
)
def test_every_borrower_gets_an_instance_or_the_load_error(
    size: int, fail_at: int | None, borrowers: int
) -> None:
    """For any size, failing load and number of borrowers: no instance is lent twice at
    once, every borrower ends (an instance or the load error), no more instances load than
    borrowers needed, and wait_loaded raises exactly when a load failed."""
    GatedModel.gate = threading.Event()
    GatedModel.loads = 0
    GatedModel.fail_at = fail_at if fail_at is not None and fail_at <= size else None
    failing = GatedModel.fail_at is not None
    pool = load(size)
    held: set[int] = set()
    lock = threading.Lock()
    shared: list[bool] = []
    outcomes: list[object] = []

    def run() -> None:
        try:
            with pool.borrow(timeout=10) as model:
                with lock:
                    shared.append(id(model.model) in held)
                    held.add(id(model.model))
                threading.Event().wait(0.005)
                with lock:
                    held.discard(id(model.model))
                outcomes.append("ok")
        except ModelLoadError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(borrowers)]
    for thread in threads:
        thread.start()
    GatedModel.gate.set()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == borrowers and not any(shared)
    assert GatedModel.loads <= min(size, borrowers)  # never more than were needed at once
    failed = failing and GatedModel.loads >= (GatedModel.fail_at or 0)
    if failed:
        with pytest.raises(ModelLoadError):
            pool.wait_loaded(timeout=5)
    else:
        pool.wait_loaded(timeout=5)
        assert outcomes == ["ok"] * borrowers and pool.stats().available == size
    pool.close()
