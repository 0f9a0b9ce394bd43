"""One borrowing's hold on a pool, and how a borrower waiting in line is woken.

A :class:`Claim` is created when a borrow starts and lives until its instance is back; the
pool (:mod:`modelrouter.pool`) changes it under its lock only. A thread waits on the claim's
``threading.Event``, a coroutine on an ``asyncio`` future of its own loop, completed through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

from modelrouter.backends import Model

__all__ = ["Claim", "checked_timeout", "wake_with"]


class Claim:
    """One borrowing's hold on the pool, from the moment it queues until its instance is back.

    Its states change under the pool's lock only: *in line* (in the pool's ``_waiters``);
    *offered* (``instance`` set, not ``lent``: handed over, not yet taken — the instance is
    still the pool's, and one offered to a coroutine whose event loop is not running is taken
    back by the next borrower); *lent*; and back. Whatever raises in between (a
    ``KeyboardInterrupt`` in a blocking wait, a cancellation, a timeout) ends in
    :meth:`modelrouter.pool.ModelPool._abandon`, which puts back whatever the claim holds, so no
    ``BaseException`` loses an instance (docs/specification.md §7).

    ``calls`` counts model calls still running on the lent instance, per thread: a thread started by
    ``asyncio.to_thread`` outlives the task that was cancelled around it, so the instance
    goes back when the last call ends (``returning``), never while a thread still uses it.
    """

    __slots__ = (
        "calls",
        "error",
        "event",
        "failed",
        "future",
        "instance",
        "lent",
        "loop",
        "queued_elsewhere",
        "returning",
        "started",
    )

    def __init__(self, queued_at: float | None = None) -> None:
        self.event: threading.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[None] | None = None
        self.instance: Model | None = None
        self.error: BaseException | None = None
        self.lent = False
        #: Model calls running on the lent instance, per thread (see _release).
        self.calls: dict[int, int] = {}
        self.returning = False
        self.failed = False
        #: Whether the borrower had been waiting in a line of its own before it came to the
        #: pool (a service's request queue): its borrow then counts as a wait from then on.
        self.queued_elsewhere = queued_at is not None
        self.started = time.perf_counter() if queued_at is None else queued_at


def checked_timeout(timeout: float | None) -> float | None:
    """A borrow timeout in seconds, validated: ``None`` (also for ∞ and huge values) or ≥ 0.

    ``inf`` or a value beyond what the platform can wait (``1e300``) means no timeout rather
    than an ``OverflowError``; NaN and negative values raise :class:`ValueError` naming them.
    """
    if timeout is None:
        return None
    value = float(timeout)
    if math.isnan(value) or value < 0:
        raise ValueError(f"timeout must be None or ≥ 0 (got {timeout})")
    if value > threading.TIMEOUT_MAX:
        return None
    return value


def wake_with(waiter: Claim, error: BaseException) -> None:
    """Wake a borrower in line with ``error`` instead of an instance."""
    waiter.error = error
    if waiter.event is not None:
        waiter.event.set()
    elif waiter.loop is not None:
        try:
            waiter.loop.call_soon_threadsafe(_fail, waiter)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            pass


def _fail(waiter: Claim) -> None:
    """On the waiter's loop: complete its future with the error it was woken with."""
    if waiter.future is not None and not waiter.future.done() and waiter.error is not None:
        waiter.future.set_exception(waiter.error)
