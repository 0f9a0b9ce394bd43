"""Adaptive batching (``modelrouter serve --max-batch-rows N``): requests that are waiting for
the same pool are scored together, in one model call.

On by default (``--max-batch-rows 0`` turns it off: every request then borrows an instance
itself, as docs/specification.md §10 first described). A pool of N instances has N
dispatchers. Each waits for a queued request, borrows an instance with ``async with
router.acquire_model(kind)``, and only then takes from the queue
every request it can score together with the first one: same endpoint, same ``keep``
columns, same Arrow schema, at most ``max_rows`` rows in all. The concatenated table is
scored in the service's inference threads (a small batch of a model known to be fast: on
the event loop itself, see :mod:`~modelrouter.serve.inline_calls`) and the answers are
split back by row counts.

A dispatcher that holds an instance waits for companions only for requests that are known
to be on their way: announced with :meth:`Batcher.arriving` when the server starts reading
them, not queued yet (their bodies being received or decoded). It takes the queue as soon as
none is left on its way, when the queued rows reach ``max_rows``, or after ``window``
seconds, whichever comes first (and before the ``timeout`` of any queued request runs out).
A lone request — none other on its way — is taken at once: the window never adds latency to
it, and nothing is ever waited for on speculation. Under concurrency, one model call then
serves many requests, and the per-call cost of a model (a forest's per-tree overhead,
validation, thread hops) is paid once for all of them: on a CPU-bound machine fewer, larger
calls leave more of the CPU to everything else a request needs.

While another call of the same pool runs in a thread, a small batch (at most
:data:`~modelrouter.serve.inline_calls.INLINE_MAX_ROWS` rows) of a model whose recent small
calls each cost at most :data:`HOLD_BUDGET` of CPU is not started beside it: it waits until
no call of the pool runs in a thread (at most :data:`HOLD_LIMIT` seconds, never past a
queued request's timeout), gathering what arrives meanwhile. Two such calls side by side
only pay a fast model's fixed per-call cost twice and take turns at the GIL; one call after
the other, on a batch twice the size, serves the same requests with less CPU. Large batches
and slow models still run side by side, one per instance.

Guarantees:

- Each request gets exactly the rows of its own table back, in order. A batch whose call
  fails is halved and each half scored again, down to single requests, so every request gets
  its own answer or its own error, with 0-based rows counted in its own body (never another
  request's error).
- ``--timeout`` bounds the wait until a dispatcher takes the request; then 503 as without
  batching. Once taken, the request is answered.
- Pool stats count model calls: ``borrows`` is the number of batches, and
  ``modelrouter_http_batch_requests`` (a histogram) says how many requests each one served.
  A batch whose oldest request was queued while every instance was in a model call counts
  as a wait (``waits``), as long as that request waited; a request refused with 503 counts
  in ``timeouts``, as a borrow that gave up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa
from modelrouter import DataError, ModelRouter, ModelRouterError, ModelType, PoolTimeoutError
from modelrouter.backends import Prediction
from modelrouter.pool import BorrowedModel
from modelrouter.serve.inline_calls import DEFAULT_BUDGET, InlineCalls

__all__ = ["DEFAULT_WINDOW", "Arrival", "Batcher", "busy_message"]

#: Seconds a dispatcher may wait for requests on their way (never when there are none).
DEFAULT_WINDOW = 0.02
#: A request's timeout cuts the window short by this much, so it is taken, not refused.
_TIMEOUT_MARGIN = 0.001
#: A small batch waits for the pool's call in flight when small calls cost at most this (CPU s)…
HOLD_BUDGET = 0.002
#: …and at most this long (s), then it is started beside it.
HOLD_LIMIT = 0.005

log = logging.getLogger("modelrouter.serve")


def busy_message(router: ModelRouter, kind: ModelType, timeout: float) -> str:
    """The 503's text: no instance of ``kind`` within ``timeout`` (and how busy the pool is)."""
    stats = router.stats().get(kind)  # None: the pool was unregistered meanwhile
    state = "the pool is gone" if stats is None else f"{stats.in_use} of {stats.size} in use"
    return f"no {kind} model instance became free within {timeout:g} s: {state}"


Outcome = Prediction | Exception


@dataclass(eq=False)
class _Request:
    table: pa.Table
    probabilities: bool
    exclude: tuple[str, ...]
    future: asyncio.Future[Prediction]
    queued: float = field(default_factory=time.perf_counter)
    taken: bool = False
    deadline: float = math.inf  # the event loop's time when its timeout runs out
    found_busy: bool = False  # queued while every instance was in a dispatcher's model call

    def fits_with(self, first: _Request) -> bool:
        return (
            self.probabilities == first.probabilities
            and self.exclude == first.exclude
            and self.table.schema.equals(first.table.schema)
        )


class Arrival:
    """A request on its way to :meth:`Batcher.infer` (its body being read and decoded): while
    it is, a dispatcher may wait for it (within the window). Leaving the ``with`` block
    without queueing the request (an error, an empty body) tells the dispatchers so."""

    __slots__ = ("_batcher", "_pending")

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher
        self._pending = False

    def __enter__(self) -> Arrival:
        self._pending = True
        self._batcher._arriving += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()

    def done(self) -> None:
        if self._pending:
            self._pending = False
            self._batcher._arriving -= 1
            self._batcher._changed.set()


class Batcher:
    """The queue and dispatchers of one pool; create and :meth:`start` it on the event loop."""

    def __init__(
        self,
        router: ModelRouter,
        kind: ModelType,
        *,
        instances: int,
        max_rows: int,
        executor: Executor,
        on_batch: Callable[[list[float]], None] = lambda waits: None,
        window: float = DEFAULT_WINDOW,
        inline_budget: float = DEFAULT_BUDGET,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1 (got {max_rows})")
        if not window >= 0:
            raise ValueError(f"window must be ≥ 0 seconds (got {window})")
        self._router = router
        self._kind = kind
        self._instances = instances
        self._max_rows = max_rows
        self._executor = executor
        self._on_batch = on_batch
        self._window = window
        self._queue: deque[_Request] = deque()
        self._pending = asyncio.Event()
        # Set when a request is queued, an arrival given up or a call in a thread ends.
        self._changed = asyncio.Event()
        self._calls_in_threads = 0  # this pool's model calls running in inference threads now
        self._arriving = 0  # Arrival blocks whose request is not queued yet
        self._lent = 0  # instances the dispatchers hold now
        self._taking = asyncio.Lock()  # held by the dispatcher gathering and taking a batch
        self._tasks: list[asyncio.Task[None]] = []
        self._inline = InlineCalls(inline_budget)  # which calls may run on the loop itself

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._dispatch(), name=f"modelrouter-batch-{self._kind}-{i}")
            for i in range(self._instances)
        ]

    async def stop(self) -> None:
        """Cancel the dispatchers (after the server has answered the requests in flight)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def arriving(self) -> Arrival:
        """``with batcher.arriving() as arrival:`` around reading and decoding a request that
        will be passed to :meth:`infer` with ``arrival=arrival``."""
        return Arrival(self)

    async def infer(
        self,
        table: pa.Table,
        *,
        probabilities: bool,
        exclude: tuple[str, ...],
        timeout: float,
        arrival: Arrival | None = None,
    ) -> Prediction:
        """Queue ``table`` and wait for its answer; 503 (:class:`PoolTimeoutError`) when no
        dispatcher takes it within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request = _Request(
            table,
            probabilities,
            exclude,
            loop.create_future(),
            deadline=deadline,
            found_busy=self._lent >= self._instances,
        )
        self._queue.append(request)
        self._pending.set()
        self._changed.set()
        if arrival is not None:
            arrival.done()
        try:
            # One turn of the loop lets an idle dispatcher take it (so --timeout 0 means "only
            # if an instance is free now", as without batching).
            await asyncio.sleep(0)
            if request.taken or request.future.done():
                return await request.future
            if deadline - loop.time() <= 0:
                self._drop(request)
                self._count_timeout()
                raise PoolTimeoutError(busy_message(self._router, self._kind, timeout))
            # Not taken yet: a timer fails it at the deadline unless a dispatcher has taken it
            # by then (one timer handle, where asyncio.wait cost a task's worth of futures).
            expiry = loop.call_at(deadline, self._expire, request, timeout)
            try:
                return await request.future
            finally:
                expiry.cancel()
        except asyncio.CancelledError:
            # The client went away: a queued request is not scored; a taken one's answer is
            # dropped when it comes (a cancelled future takes none, and logs nothing).
            self._drop(request)
            request.future.cancel()
            raise

    def _expire(self, request: _Request, timeout: float) -> None:
        """At ``request``'s deadline: 503 unless a dispatcher has taken it (then it is
        answered when its batch is scored). Decided one turn of the loop later: a dispatcher
        whose window the deadline cut short (by :data:`_TIMEOUT_MARGIN`) may be due in the
        same turn, and is then resumed first, to take it."""
        asyncio.get_running_loop().call_soon(self._expire_now, request, timeout)

    def _expire_now(self, request: _Request, timeout: float) -> None:
        if not request.taken and not request.future.done():
            self._drop(request)
            self._count_timeout()
            request.future.set_exception(PoolTimeoutError(busy_message(self._router, self._kind, timeout)))

    def _count_timeout(self) -> None:
        """A request gave up waiting for an instance: the pool's ``timeouts`` count it."""
        with contextlib.suppress(ModelRouterError):  # the pool is gone: nobody to tell
            self._router.pool(self._kind).count_timeout()

    def _returned(self) -> None:
        self._lent -= 1

    def _drop(self, request: _Request) -> None:
        if not request.taken:
            try:
                self._queue.remove(request)
            except ValueError:
                pass
            self._changed.set()  # a dispatcher waiting on the queue looks again

    def _take(self) -> list[_Request]:
        """The oldest queued request and every later one that can share its model call."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()
        if not self._queue:
            return []
        first = self._queue.popleft()
        batch, rows, left = [first], first.table.num_rows, deque[_Request]()
        while self._queue and rows < self._max_rows:
            candidate = self._queue.popleft()
            if candidate.future.done():
                continue
            if candidate.fits_with(first) and rows + candidate.table.num_rows <= self._max_rows:
                batch.append(candidate)
                rows += candidate.table.num_rows
            else:
                left.append(candidate)
        left.extend(self._queue)
        self._queue = left
        for request in batch:
            request.taken = True
        return batch

    def _take_all(self) -> list[_Request]:
        taken = [r for r in self._queue if not r.future.done()]
        self._queue.clear()
        for request in taken:
            request.taken = True
        return taken

    async def _dispatch(self) -> None:
        while True:
            while not self._queue:
                self._pending.clear()
                await self._pending.wait()
            try:
                await self._serve_batch()
            except ModelRouterError as exc:
                # No instance to borrow (the pool was closed or unregistered): every waiting
                # request is told why, instead of waiting for its timeout.
                for request in self._take_all():
                    request.future.set_exception(exc)
            except Exception as exc:
                # A fault of ours: its batch has been answered (500, see _serve_batch); the
                # dispatcher goes on, so the pool never loses one. A fault before a batch was
                # taken would meet the same requests again at once: they are answered too
                # (500), so that a lasting fault cannot spin the dispatcher.
                log.exception("error: batch dispatcher for %s", self._kind)
                for request in self._take_all():
                    request.future.set_exception(
                        RuntimeError(f"the {self._kind} batch was not scored: {exc}")
                    )

    def _gathering(self) -> bool:
        """Whether to wait for more: requests queued, others on their way, room for rows."""
        return (
            self._arriving > 0
            and bool(self._queue)
            and sum(r.table.num_rows for r in self._queue) < self._max_rows
        )

    async def _gather(self) -> None:
        """Wait, at most the window, for the requests on their way (module docstring)."""
        if self._window and self._gathering():
            await self._wait_while(self._gathering, self._window)

    def _call_ended(self, work: asyncio.Future[list[Outcome]]) -> None:
        self._calls_in_threads -= 1
        self._changed.set()

    def _holding(self) -> bool:
        """Whether the queued batch should wait for the call in flight (module docstring)."""
        if not self._calls_in_threads or not self._queue:
            return False
        rows = sum(r.table.num_rows for r in self._queue)
        return self._inline.recently_within(HOLD_BUDGET, rows)

    async def _hold_small_batch(self) -> None:
        """Wait, at most :data:`HOLD_LIMIT`, while :meth:`_holding` says so."""
        await self._wait_while(self._holding, HOLD_LIMIT)

    async def _wait_while(self, condition: Callable[[], bool], limit: float) -> None:
        """Wait while ``condition()`` holds (checked whenever :attr:`_changed` is set), at most
        ``limit`` seconds and never past the first queued request's timeout (less
        :data:`_TIMEOUT_MARGIN`, so that it is taken, not refused)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while condition():
            # An absolute time, not a delay: measured from a clock read a preempted process
            # may take late, a delay could put this wake-up after the request's own timer
            # (then, both due in one turn, the request would be refused, not taken).
            until = min(end, min((r.deadline for r in self._queue), default=math.inf) - _TIMEOUT_MARGIN)
            if until <= loop.time():
                return
            self._changed.clear()
            try:
                async with asyncio.timeout_at(until):
                    await self._changed.wait()
            except TimeoutError:
                return

    async def _serve_batch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with contextlib.AsyncExitStack() as borrowed:
                # One dispatcher at a time gathers, borrows and takes: a borrow always takes
                # a batch (pool ``borrows`` = model calls), and the window overlaps the wait
                # for a free instance.
                async with self._taking:
                    if not self._queue:
                        return
                    await self._gather()
                    await self._hold_small_batch()
                    if not self._queue:  # all given up meanwhile: no borrow without a call
                        return
                    model = await borrowed.enter_async_context(
                        self._router.acquire_model(self._kind, queued_at=self._waited_since())
                    )
                    self._lent += 1
                    borrowed.callback(self._returned)
                    batch = self._take()
                if not batch:
                    return
                try:
                    now = time.perf_counter()
                    self._on_batch([now - request.queued for request in batch])
                    rows = sum(request.table.num_rows for request in batch)
                    call = partial(_score, model, batch)
                    if self._inline.allows(rows):
                        outcomes = self._inline.run_here(call, rows)  # inline_calls.py
                    else:
                        work = loop.run_in_executor(self._executor, partial(self._inline.timed, call, rows))
                        # Counted until the thread is done, whatever happens to this task.
                        self._calls_in_threads += 1
                        work.add_done_callback(self._call_ended)
                        try:
                            outcomes = await asyncio.shield(work)
                        except asyncio.CancelledError:
                            # The thread still uses the instance: it goes back only when done.
                            await asyncio.wait([work])
                            for request in batch:
                                request.future.cancel()
                            raise
                    _deliver(batch, outcomes)
                finally:
                    # Whatever went wrong above, no request it took is left waiting.
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(
                                RuntimeError(f"the {self._kind} batch was not scored")
                            )
                if any(_model_failure(outcome) for outcome in outcomes):
                    # Counted by the pool as a borrow whose body failed (its ``errors``); a
                    # request's bad values (422) are the client's, counted in /metrics.
                    raise _FailedRequests
        except _FailedRequests:
            pass

    def _waited_since(self) -> float | None:
        """When the oldest queued request started waiting, if it found every instance busy:
        the pool counts the batch's borrow as a wait of that long (module docstring)."""
        first = next((r for r in self._queue if not r.future.done()), None)
        return first.queued if first is not None and first.found_busy else None


def _model_failure(outcome: Outcome) -> bool:
    return isinstance(outcome, Exception) and not isinstance(outcome, DataError)


class _FailedRequests(Exception):
    """Raised inside a batch's borrow when one of its requests failed (pool ``errors`` + 1)."""


def _deliver(batch: list[_Request], outcomes: list[Outcome]) -> None:
    for request, outcome in zip(batch, outcomes, strict=True):
        if request.future.done():
            continue
        if isinstance(outcome, Exception):
            request.future.set_exception(outcome)
        else:
            request.future.set_result(outcome)


def _score(model: BorrowedModel, batch: list[_Request]) -> list[Outcome]:
    """Score ``batch`` in one call (in an inference thread); if that fails, each half on its
    own, down to single requests, which then answer with their own error.

    Halving finds k failing requests among n in O(k log n) calls, so one bad request does
    not cost everyone it shared a batch with a call of their own."""
    if len(batch) == 1:
        return [_score_one(model, batch[0])]
    first = batch[0]
    try:
        whole = model.run(
            pa.concat_tables([r.table for r in batch]),
            labels=not first.probabilities,
            probabilities=first.probabilities,
            exclude=first.exclude,
        )
    except Exception:
        # Which request's value was at fault, and at which of its rows, is for that request
        # to say on its own: halve the batch, on the same instance.
        middle = len(batch) // 2
        return _score(model, batch[:middle]) + _score(model, batch[middle:])
    bounds = np.cumsum([0] + [r.table.num_rows for r in batch])
    return [
        Prediction(
            labels=None if whole.labels is None else whole.labels[start:stop],
            probabilities=None if whole.probabilities is None else whole.probabilities[start:stop],
        )
        for start, stop in itertools.pairwise(bounds)
    ]


def _score_one(model: BorrowedModel, request: _Request) -> Outcome:
    try:
        return model.run(
            request.table,
            labels=not request.probabilities,
            probabilities=request.probabilities,
            exclude=request.exclude,
        )
    except Exception as exc:
        return exc
