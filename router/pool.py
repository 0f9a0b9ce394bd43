"""ModelPool: a fixed set of loaded model instances lent to one borrower at a time.

The shape follows urllib3's ``HTTPConnectionPool``: a pre-filled LIFO stack (the most
recently used instance is warm in cache), a blocking borrow with a timeout whose error says
how many instances are in use, and an idempotent ``close``.

Borrowers that find no free instance wait in one FIFO line, threads and coroutines alike. A
returned instance is handed straight to the first one in line: a thread is woken through its
own event, a coroutine through an asyncio future completed on its event loop
(``loop.call_soon_threadsafe``). An async borrow therefore never occupies an executor
thread while it waits — it used to park in ``run_in_executor``, where 8 waiting borrows
took every thread of the default executor that their own bodies' ``asyncio.to_thread``
calls needed, and deadlocked.

Around this core: the counters and their snapshot (:mod:`modelrouter.pool_stats`), a
borrowing's claim and how a waiter is woken (:mod:`modelrouter.pool_claims`), reading,
pinning and building the instances (:mod:`modelrouter.pool_loading`), and the borrower's
``with`` / ``async with`` side (:mod:`modelrouter.pool_borrow`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from modelrouter.backends import Model, backend_for
from modelrouter.backends.base import InputSchema
from modelrouter.errors import (
    ModelLoadError,
    ModelRouterError,
    PoolClosedError,
    PoolTimeoutError,
)
from modelrouter.interruptible import wait_event
from modelrouter.limits import MAX_POOL_SIZE
from modelrouter.locations import ModelLocation, is_uri
from modelrouter.model_type import ModelType
from modelrouter.pool_borrow import Borrow, BorrowedModel
from modelrouter.pool_claims import Claim, checked_timeout, wake_with
from modelrouter.pool_loading import default_threads, instance_builder, pinned_bytes, sha256_of, warned_once
from modelrouter.pool_stats import Counters, PoolStats

# Borrow, BorrowedModel, PoolStats, default_threads and sha256_of live beside the pool and
# are public here, where the library's users and modelrouter's lazy exports import them.
__all__ = [
    "Borrow",
    "BorrowedModel",
    "ModelPool",
    "PoolStats",
    "default_threads",
    "sha256_of",
]


class ModelPool:
    """``size`` loaded instances of one model, lent out one borrower at a time.

    Thread-safe. :meth:`borrow` blocks until an instance is free (or the timeout passes) and
    always takes it back, even when the body raises. :meth:`close` is idempotent.
    """

    def __init__(
        self, model_type: ModelType | str, instances: Sequence[Model], *, size: int | None = None
    ) -> None:
        if not instances:
            raise ValueError("a pool needs at least one instance (got 0)")
        if size is not None and size < len(instances):
            raise ValueError(f"size must be at least the {len(instances)} instances given (got {size})")
        self.model_type = ModelType.parse(model_type)
        self._instances: list[Model] = list(instances)
        #: The pool's size: instances beyond those given are loaded on demand (see :meth:`load`).
        self._size = len(self._instances) if size is None else size
        self._free: list[Model] = list(self._instances)  # a stack: the last returned goes out first
        self._waiters: deque[Claim] = deque()
        #: Claims handed an instance they have not taken yet (see :class:`Claim`).
        self._offered: set[Claim] = set()
        self._closed = False
        self._load_error: BaseException | None = None
        self._lock = threading.Lock()
        #: Loading on demand (see :meth:`load`): instances asked for and not yet started,
        #: instances being built; the loading thread and wait_loaded wait on ``_changed``.
        self._requested = 0
        self._building = 0
        self._changed = threading.Condition(self._lock)
        #: The sha256 of the model bytes the instances were built from, when :meth:`load`
        #: knew it without extra work (a pin was checked, or the bytes came from a URI).
        self.sha256: str | None = None
        self._counters = Counters()
        self._created = time.perf_counter()

    @classmethod
    def load(
        cls,
        model_type: ModelType | str,
        path: str | Path,
        size: int = 1,
        *,
        threads: int | None = None,
        sha256: str | None = None,
        trusted: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        data: bytes | None = None,
        background: bool = False,
    ) -> ModelPool:
        """Load ``size`` instances of the model at ``path`` through the type's backend.

        ``threads`` is each instance's native thread budget (default: cores // size).
        When ``sha256`` is given the file's digest is checked *before* anything is unpickled;
        a mismatch raises :class:`IntegrityError`. ``trusted`` is passed to backends that
        check types (skops); ``classes`` names the classes of a model that records none
        (:meth:`Model.assign_classes`). A warning raised while loading (say, a version
        mismatch) is issued once for the pool, not once per instance. ``data`` is the model
        file's bytes already fetched by the caller (required for a URI ``path``, which then
        only names the model): the library reads local files only.

        ``background``: return as soon as the first instance is loaded; each further one
        is loaded on a thread (``modelrouter-load-<type>``) when a borrower finds every
        loaded instance busy — as urllib3's and SQLAlchemy's pools open connections — so
        the first instance scores while the second loads, and an input that one instance
        scores alone never pays for the others. The pool has its full ``size`` from the
        start; the borrower that asked waits in line as for an instance being returned
        (whichever comes first). If a load fails, the waiting and every later borrow raise
        that error, and so does :meth:`wait_loaded`, which a caller calls before trusting
        the result of a run: a failure is never a silently smaller pool. Loads run under
        ``warnings.catch_warnings`` (process-wide state, as for any load) and repeat no
        warning the first instance already gave.
        """
        if not 1 <= size <= MAX_POOL_SIZE:
            # Checked before anything is read: each instance is a full copy of the model.
            raise ValueError(f"pool size must be between 1 and {MAX_POOL_SIZE} (got {size})")
        location: ModelLocation = path if is_uri(path) else Path(path)
        backend = backend_for(model_type)
        data, actual = pinned_bytes(backend, location, data, sha256)
        build = instance_builder(
            backend,
            location,
            data,
            threads=threads if threads is not None else default_threads(size),
            concurrent=size > 1,
            trusted=trusted,
            classes=classes,
        )

        # Every instance is built from the same bytes, so each repeats the same warnings.
        seen: set[tuple[type[Warning], str]] = set()
        now = size if not background else 1
        instances = warned_once(seen, lambda: [build() for _ in range(now)])
        pool = cls(model_type, instances, size=size)
        pool.sha256 = actual
        if now < size:
            threading.Thread(
                target=pool._load_on_demand,
                args=(lambda: warned_once(seen, build),),
                name=f"modelrouter-load-{pool.model_type}",
                daemon=True,  # an interrupted run does not wait for a model to finish loading
            ).start()
        return pool

    def _load_on_demand(self, build: Callable[[], Model]) -> None:
        """The loading thread: build one instance per request until the pool is full."""
        while True:
            with self._changed:
                while not self._requested and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                self._requested -= 1
                self._building += 1
            try:
                instance = build()
            except BaseException as exc:  # handed to the borrowers and wait_loaded, never lost
                self._fail_loading(exc)
                return
            with self._changed:
                self._building -= 1
                self._changed.notify_all()
                if self._closed:
                    return
                self._instances.append(instance)
                self._hand_over(instance)
                if len(self._instances) == self._size:
                    return

    def _request_instance(self) -> None:
        """A borrower found no free instance: have one more loaded if the pool is not full
        (under the lock)."""
        if len(self._instances) + self._requested + self._building < self._size:
            self._requested += 1
            self._changed.notify_all()

    def _fail_loading(self, exc: BaseException) -> None:
        """A later instance failed to load: fail the waiting borrowers and every later one."""
        with self._changed:
            if not isinstance(exc, ModelRouterError):
                exc = ModelLoadError(
                    f"{self.path}: loading instance {len(self._instances) + 1} of {self._size} "
                    f"failed ({type(exc).__name__}: {exc})"
                )
            self._load_error = exc
            self._requested = self._building = 0
            waiters, self._waiters = self._waiters, deque()
            self._changed.notify_all()
        for waiter in waiters:
            wake_with(waiter, exc)

    def wait_loaded(self, timeout: float | None = None) -> None:
        """Block until no instance is being loaded; raise the error of one that failed.

        Returns at once for a pool loaded in the foreground, and for one whose borrowers
        never needed more than the instances loaded. Raises :class:`PoolTimeoutError` when
        ``timeout`` seconds pass first.
        """
        with self._changed:
            done = self._changed.wait_for(
                lambda: self._closed or not (self._requested or self._building),
                checked_timeout(timeout),
            )
            if not done:
                raise PoolTimeoutError(
                    f"the {self.model_type} pool did not finish loading within {timeout:g} s "
                    f"({len(self._instances)} of {self._size} loaded)"
                )
            if self._load_error is not None:
                raise self._load_error

    @property
    def loading(self) -> int:
        """Instances asked for and still being loaded in the background."""
        with self._lock:
            return self._requested + self._building

    # -- metadata ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of instances, counting those loaded on demand (see :meth:`load`)."""
        return self._size

    @property
    def path(self) -> ModelLocation:
        """The model file (or URI) the instances were loaded from."""
        return self._instances[0].path

    @property
    def prototype(self) -> Model:
        """One instance, for its immutable metadata (schema, classes); do not score with it."""
        return self._instances[0]

    @property
    def schema(self) -> InputSchema:
        """The input schema shared by every instance."""
        return self._instances[0].schema

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    # -- lending -------------------------------------------------------------------------

    def borrow(self, timeout: float | None = None, *, queued_at: float | None = None) -> Borrow:
        """A context manager (``with`` or ``async with``) that lends one instance.

        ``timeout`` is in seconds; ``None`` (or ``inf``) waits forever; NaN or a negative
        value raise :class:`ValueError` here. Raises :class:`PoolTimeoutError` (saying how
        many are in use) or :class:`PoolClosedError` when entered.

        ``queued_at`` (a ``time.perf_counter()`` reading) is for a borrower that has been
        waiting for an instance of this pool in a line of its own, such as the request queue
        of ``serve``'s batching: the borrow counts as a wait (``waits``), timed from then.
        """
        return Borrow(self, checked_timeout(timeout), queued_at)

    def count_timeout(self) -> None:
        """Count, in ``timeouts``, a borrower that gave up waiting for an instance in a line of
        its own (see ``queued_at`` of :meth:`borrow`), as if it had waited here."""
        with self._lock:
            self._counters.timeouts += 1

    def _checkout(self, claim: Claim, timeout: float | None) -> None:
        """Blocking borrow for threads: on return ``claim`` holds its lent instance.

        Whatever this raises (including a ``KeyboardInterrupt`` while it waits), the caller
        passes ``claim`` to :meth:`_abandon`, which returns anything it was handed."""
        with self._lock:
            if self._take_free(claim):
                self._lend(claim, waited=False)
                return
            claim.event = threading.Event()
            self._waiters.append(claim)
        wait_event(claim.event, timeout)  # a Ctrl-C ends it even in the race before blocking
        with self._lock:
            if claim.error is not None:
                raise claim.error
            if claim.instance is None:
                self._waiters.remove(claim)  # still in line: nobody handed it anything
                raise self._timeout_error(timeout)
            self._lend(claim, waited=True)

    async def _acheckout(self, claim: Claim, timeout: float | None) -> None:
        """Borrow for coroutines: waits on a future of the running loop, holding no thread.

        The instance is lent on the loop (:meth:`_deliver`) at the moment the future
        completes; a timeout or cancellation after that is undone by :meth:`_abandon`."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._take_free(claim):
                self._lend(claim, waited=False)
                return
            claim.loop, claim.future = loop, loop.create_future()
            self._waiters.append(claim)
        try:
            await asyncio.wait_for(claim.future, timeout)
        except TimeoutError:
            with self._lock:
                self._abandon_locked(claim)
                raise self._timeout_error(timeout) from None

    def _take_free(self, claim: Claim) -> bool:
        """Move a free instance into ``claim`` (under the lock); False when none is free.
        Raises when closed.

        An instance offered to a coroutine whose event loop is not running (stopped between
        ``run_until_complete`` calls, or never to run again) counts as free: it is taken
        back, and that coroutine, should its loop run again, queues afresh (:meth:`_deliver`).
        The instance is stored in the claim before it leaves the stack, with no call in
        between, so an interrupt landing here leaves it in one of them (:meth:`_abandon`).
        """
        if self._closed:
            raise PoolClosedError(f"the {self.model_type} pool is closed")
        if self._load_error is not None:
            raise self._load_error
        if self._free:
            claim.instance = self._free[-1]
            del self._free[-1]
            return True
        for other in self._offered:
            if other.loop is not None and not other.loop.is_running():
                claim.instance = other.instance
                other.instance = None
                self._offered.discard(other)
                return True
        self._request_instance()
        return False

    def _lend(self, claim: Claim, *, waited: bool) -> None:
        """Record the borrow of the instance ``claim`` holds (under the lock)."""
        instance = claim.instance
        assert instance is not None
        now = time.perf_counter()
        key = id(instance)
        c = self._counters
        if key in c.lent:
            raise RuntimeError(f"the {self.model_type} pool was about to lend an instance twice")
        self._offered.discard(claim)
        # No call between these two stores: an interrupt cannot land between them.
        c.lent[key] = now
        claim.lent = True
        wait = now - claim.started
        c.borrows += 1
        c.waits += waited or claim.queued_elsewhere
        c.wait_total += wait
        c.wait_max = max(c.wait_max, wait)

    def _timeout_error(self, timeout: float | None) -> PoolTimeoutError:
        """Count a timeout and describe it (under the lock)."""
        self._counters.timeouts += 1
        in_use = len(self._counters.lent)
        loading = self._requested + self._building
        return PoolTimeoutError(
            f"no {self.model_type} model instance became free within {timeout:g} s: "
            f"{in_use} of {self.size} in use" + (f", {loading} still loading" if loading else "")
        )

    def _hand_over(self, instance: Model) -> None:
        """Give a free instance to the first borrower in line that can take it now, else put
        it on the free stack (under the lock).

        A coroutine whose event loop is not running cannot take it now: it keeps its place
        and the instance goes to the next in line; only when nobody else waits is it offered
        to such a coroutine, and then any later borrower may take it back (:meth:`_take_free`).
        """
        chosen: Claim | None = None
        parked: Claim | None = None
        for claim in list(self._waiters):
            if claim.instance is not None or (claim.loop is not None and claim.loop.is_closed()):
                # Holds one already (an interrupted hand-over), or can never resume.
                self._waiters.remove(claim)
            elif claim.loop is None or claim.loop.is_running():
                chosen = claim
                break
            elif parked is None:
                parked = claim
        target = chosen if chosen is not None else parked
        if target is None:
            self._free.append(instance)
            return
        target.instance = instance
        self._offered.add(target)
        self._waiters.remove(target)
        if target.loop is None:
            assert target.event is not None
            target.event.set()
            return
        try:
            target.loop.call_soon_threadsafe(self._deliver, target)
        except RuntimeError:  # its loop closed meanwhile: that borrower is gone
            self._offered.discard(target)
            target.instance = None
            self._hand_over(instance)

    def _deliver(self, claim: Claim) -> None:
        """On the waiter's loop: lend it its instance and complete its future, in one step."""
        assert claim.future is not None
        with self._lock:
            if claim.lent:
                return
            if claim.future.done():  # timed out or cancelled: its coroutine gave up
                self._abandon_locked(claim)
                return
            if claim.instance is None:  # taken back while its loop was not running
                try:
                    found = self._take_free(claim)
                except BaseException as exc:  # closed or failed loading meanwhile
                    claim.future.set_exception(exc)
                    return
                if not found:
                    if claim not in self._waiters:
                        self._waiters.appendleft(claim)  # it had the first place
                    return
            self._lend(claim, waited=True)
            claim.future.set_result(None)

    def _abandon(self, claim: Claim) -> None:
        """Undo whatever ``claim`` holds: leave the line, put back an instance (idempotent)."""
        with self._lock:
            self._abandon_locked(claim)

    def _abandon_locked(self, claim: Claim) -> None:
        if claim in self._waiters:
            self._waiters.remove(claim)
        self._offered.discard(claim)
        instance = claim.instance
        if instance is None:
            return
        if id(instance) in self._counters.lent:
            claim.lent = True  # interrupted between the two stores of _lend
            self._give_back(claim, failed=True)
        elif not self._in_custody(instance):
            self._hand_over(instance)
        claim.instance = None
        # A hand-over interrupted before it woke its thread: wake every thread offered one.
        for other in self._offered:
            if other.event is not None:
                other.event.set()

    def _in_custody(self, instance: Model) -> bool:
        """Whether the pool already holds ``instance`` (free, offered or lent; under the lock)."""
        return (
            any(free is instance for free in self._free)
            or any(other.instance is instance for other in self._offered)
            or id(instance) in self._counters.lent
        )

    def _release(self, claim: Claim, *, failed: bool) -> None:
        """The borrower is done: return the instance, or once its last running call ends.

        A call counted for the thread returning the instance cannot still be running (that
        thread is here): an interrupt cut its bookkeeping short, so it is not waited for."""
        with self._lock:
            claim.failed |= failed
            claim.calls.pop(threading.get_ident(), None)
            if not claim.lent:
                self._abandon_locked(claim)
                return
            if claim.calls:
                claim.returning = True
                return
            self._give_back(claim, failed=claim.failed)

    def _give_back(self, claim: Claim, *, failed: bool) -> None:
        """Take the lent instance back (under the lock).

        The instance stays in ``claim`` until the pool holds it again, so an interrupt
        landing in between leaves it somewhere :meth:`_abandon` finds it."""
        instance = claim.instance
        assert instance is not None
        c = self._counters
        key = id(instance)
        if key not in c.lent:
            raise RuntimeError("returned an instance this pool did not lend")
        lent_at = c.lent[key]
        del c.lent[key]
        claim.lent = False
        c.busy_time += time.perf_counter() - lent_at
        c.errors += failed
        self._hand_over(instance)
        claim.instance = None

    def _begin_call(self, claim: Claim) -> Model:
        """A model call on the lent instance starts (refused once the borrow has ended)."""
        with self._lock:
            if not claim.lent or claim.returning or claim.instance is None:
                raise RuntimeError(
                    f"this {self.model_type} model was returned to its pool; borrow it again to use it"
                )
            me = threading.get_ident()
            claim.calls[me] = claim.calls.get(me, 0) + 1
            return claim.instance

    def _end_call(self, claim: Claim, rows: int | None) -> None:
        with self._lock:
            me = threading.get_ident()
            left = claim.calls.get(me, 0) - 1
            if left > 0:
                claim.calls[me] = left
            else:
                claim.calls.pop(me, None)
            if rows is not None:
                self._counters.chunks += 1
                self._counters.rows += rows
            if claim.returning and not claim.calls:
                self._give_back(claim, failed=claim.failed)

    # -- stats and lifetime --------------------------------------------------------------

    def stats(self) -> PoolStats:
        """A consistent snapshot of the counters (taken under the lock)."""
        with self._lock:
            # Counted where they are, not as size − lent: an instance lost by a bug shows.
            available = len(self._free) + len(self._offered) + self._size - len(self._instances)
            return self._counters.snapshot(
                self.model_type,
                size=self.size,
                available=available,
                created=self._created,
                closed=self._closed,
            )

    def close(self) -> None:
        """Stop lending; idempotent. Instances in use are kept (not lent) when they come back,
        so :meth:`stats` still shows whether every one did.

        Borrowers blocked waiting for an instance wake up with :class:`PoolClosedError`.
        """
        with self._lock:
            self._closed = True
            self._changed.notify_all()  # the loading thread stops; wait_loaded returns
            waiters, self._waiters = self._waiters, deque()
            for waiter in waiters:
                wake_with(waiter, PoolClosedError(f"the {self.model_type} pool is closed"))

    def __repr__(self) -> str:
        s = self.stats()
        return f"<ModelPool {self.model_type} size={s.size} available={s.available} path={self.path}>"
