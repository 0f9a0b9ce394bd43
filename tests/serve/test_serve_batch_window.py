"""Adaptive batching's window (serve/batching.py): a batch waits only for requests already on
their way to it, never for a lone request, never past a queued request's timeout; and the
float fast path of JSON rows bodies gives the tables of the per-column conversion.

In-process, with a stand-in model whose calls are recorded: which requests shared a call is
exactly known, without timing assumptions. A large window makes "not delayed" observable:
a lone request that waited for it would take the whole window.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

WINDOW = 30.0  # seconds: far longer than any test may take


class _Doubling:
    """A borrowed model stand-in: doubles ``x``, refuses a negative one (naming its row)."""

    def __init__(self, calls: list[int]) -> None:
        self.calls = calls

    def run(self, table: pa.Table, *, labels: bool, probabilities: bool, exclude: tuple[str, ...]) -> Any:
        from modelrouter import ConversionError
        from modelrouter.backends import Prediction

        self.calls.append(table.num_rows)
        values = table.column("x").to_numpy()
        bad = np.flatnonzero(values < 0)
        if bad.size:
            raise ConversionError("column 'x': negative", column="x", row=int(bad[0]))
        return Prediction(labels=values * 2, probabilities=None)


class _Router:
    """What a Batcher asks of the router: ``acquire_model`` (one instance) and ``stats``."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.borrows = 0

    def acquire_model(
        self, kind: Any, timeout: float | None = None, *, queued_at: float | None = None
    ) -> Any:
        router = self

        class _Async:
            async def __aenter__(self) -> _Doubling:
                router.borrows += 1
                return _Doubling(router.calls)

            async def __aexit__(self, *exc: object) -> None:
                return None

        return _Async()

    def stats(self) -> dict[Any, Any]:
        return {}


def _table(*values: float) -> pa.Table:
    return pa.table({"x": pa.array(values, pa.float64())})


async def _with_batcher(router: _Router, body: Any, *, window: float = WINDOW) -> Any:
    from modelrouter import ModelType
    from modelrouter.serve.batching import Batcher

    batches: list[int] = []
    with ThreadPoolExecutor(1) as threads:
        batcher = Batcher(
            router,  # type: ignore[arg-type]
            ModelType.SKLEARN,
            instances=1,
            max_rows=64,
            executor=threads,
            on_batch=lambda waits: batches.append(len(waits)),
            window=window,
        )
        batcher.start()
        try:
            result = await asyncio.wait_for(body(batcher), 20)
        finally:
            await batcher.stop()
    return result, batches


def test_a_lone_request_is_not_delayed_by_the_window() -> None:
    router = _Router()

    async def lone(batcher: Any) -> tuple[Any, float]:
        started = time.monotonic()
        with batcher.arriving() as arrival:
            answer = await batcher.infer(
                _table(1.0, 2.0), probabilities=False, exclude=(), timeout=5, arrival=arrival
            )
        return answer, time.monotonic() - started

    (answer, took), batches = asyncio.run(_with_batcher(router, lone))
    assert answer.labels.tolist() == [2.0, 4.0]
    assert batches == [1]
    assert took < WINDOW / 3  # it would have taken the whole window had it waited


def test_requests_on_their_way_share_one_call_and_each_gets_its_own_answer() -> None:
    """Three requests announced together, queued one by one: one model call, three answers,
    the bad one's error counted in its own rows."""
    from modelrouter import ConversionError

    router = _Router()

    async def three(batcher: Any) -> list[Any]:
        arrivals = [batcher.arriving().__enter__() for _ in range(3)]
        tables = [_table(1.0), _table(2.0, -1.0), _table(3.0, 4.0, 5.0)]

        async def one(i: int) -> Any:
            for _ in range(i * 3):  # queued a few event-loop turns apart
                await asyncio.sleep(0)
            try:
                return await batcher.infer(
                    tables[i], probabilities=False, exclude=(), timeout=5, arrival=arrivals[i]
                )
            except ConversionError as exc:
                return exc

        return await asyncio.gather(*(one(i) for i in range(3)))

    answers, batches = asyncio.run(_with_batcher(router, three))
    assert batches == [3]  # one batch of the three requests
    assert answers[0].labels.tolist() == [2.0]
    assert isinstance(answers[1], ConversionError) and answers[1].row == 1
    assert answers[2].labels.tolist() == [6.0, 8.0, 10.0]
    # One call for all three, then halving finds the bad request: its half, then each alone.
    assert router.calls[0] == 6 and router.borrows == 1


def test_an_arrival_given_up_ends_the_wait() -> None:
    """A request that never reaches the queue (its body was refused) is not waited for."""
    router = _Router()

    async def one_gives_up(batcher: Any) -> tuple[Any, float]:
        refused = batcher.arriving().__enter__()
        started = time.monotonic()
        with batcher.arriving() as arrival:
            waiting = asyncio.ensure_future(
                batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=5, arrival=arrival)
            )
            for _ in range(5):
                await asyncio.sleep(0)
            assert not waiting.done()  # the dispatcher waits for the other one
            refused.__exit__(None, None, None)
            answer = await waiting
        return answer, time.monotonic() - started

    (answer, took), batches = asyncio.run(_with_batcher(router, one_gives_up))
    assert answer.labels.tolist() == [2.0] and batches == [1]
    assert took < WINDOW / 3


def test_a_queued_request_timeout_cuts_the_window_short() -> None:
    """--timeout bounds the wait until a request is taken: an instance is free, so the
    request is scored before its timeout, never refused for waiting on others."""
    router = _Router()

    async def short_timeout(batcher: Any) -> tuple[Any, float]:
        batcher.arriving().__enter__()  # on its way forever
        started = time.monotonic()
        answer = await batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=0.3)
        return answer, time.monotonic() - started

    (answer, took), batches = asyncio.run(_with_batcher(router, short_timeout))
    assert answer.labels.tolist() == [2.0] and batches == [1]
    assert took < WINDOW / 3


def test_a_request_is_taken_when_the_loop_wakes_late_past_its_timeout() -> None:
    """The event loop blocked past the request's deadline (a long callback, a descheduled
    process): the dispatcher whose window that deadline cut short and the request's timer
    are due in the same turn. The dispatcher is resumed first and takes the request; the
    timeout then finds it taken (a 503 here would refuse a request an instance was free for)."""
    router = _Router()

    async def late_loop(batcher: Any) -> Any:
        batcher.arriving().__enter__()  # on its way forever: the dispatcher waits for it
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, time.sleep, 0.4)  # the loop stalls past the 0.3 s deadline
        return await batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=0.3)

    answer, batches = asyncio.run(_with_batcher(router, late_loop))
    assert answer.labels.tolist() == [2.0] and batches == [1]


def test_a_request_is_taken_when_the_clock_moves_between_two_reads() -> None:
    """The same late wake-up on a loop whose every clock read is 2 ms after the last (a
    process preempted between computing the window's end and arming it): the dispatcher's
    wake-up still falls before the request's timer, so it is taken (under a loaded CI, a
    delay measured from an earlier read once put it after, and the request was refused)."""

    class _SlowClock(asyncio.SelectorEventLoop):
        def time(self) -> float:
            self._offset = getattr(self, "_offset", 0.0) + 0.002
            return super().time() + self._offset

    router = _Router()

    async def late_loop(batcher: Any) -> Any:
        batcher.arriving().__enter__()
        asyncio.get_running_loop().call_later(0.05, time.sleep, 0.4)
        return await batcher.infer(_table(1.0), probabilities=False, exclude=(), timeout=0.3)

    with asyncio.Runner(loop_factory=_SlowClock) as runner:
        answer, batches = runner.run(_with_batcher(router, late_loop))
    assert answer.labels.tolist() == [2.0] and batches == [1]


def test_window_is_checked() -> None:
    from modelrouter.errors import InvalidOptionError
    from modelrouter.serve.asgi import ServeConfig

    with pytest.raises(InvalidOptionError, match="batch_window: must be a number ≥ 0 seconds"):
        ServeConfig(batch_window=-1)
    assert ServeConfig().batch_window == 0.02


# -- JSON rows whose every cell is a float ------------------------------------------------------

_FLOAT = st.floats(allow_nan=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=5).flatmap(
        lambda n: st.lists(st.fixed_dictionaries({"a": _FLOAT, "b": _FLOAT, "c": _FLOAT}), min_size=n)
    ),
    names=st.permutations(["a", "b", "c"]).map(lambda p: list(p[:2])),
)
def test_float_rows_fast_path_equals_the_per_column_conversion(
    rows: list[dict[str, float]], names: list[str]
) -> None:
    from modelrouter.serve.bodies import _column, _float_table

    fast = _float_table(rows, names)
    assert fast is not None
    reference = pa.Table.from_arrays([_column(n, [r[n] for r in rows]) for n in names], names=names)
    assert fast.schema == reference.schema
    assert fast.to_pydict() == reference.to_pydict()


@pytest.mark.parametrize(
    "rows",
    [
        [{"a": 1.0, "b": 2}],  # an integer: its column may be int64
        [{"a": 1.0, "b": True}],
        [{"a": 1.0, "b": None}],
        [{"a": 1.0, "b": "1.5"}],
        [{"a": 1.0, "b": 2.0}, {"a": 1.0}],  # a missing key: rows_table names it
    ],
)
def test_float_rows_fast_path_leaves_other_bodies_to_the_reference(rows: list[dict[str, Any]]) -> None:
    from modelrouter.serve.bodies import _float_table

    assert _float_table(rows, ["a", "b"]) is None
