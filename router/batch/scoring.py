"""Bounded, order-preserving scheduling of chunks on a thread pool.

``Executor.map`` on Python 3.11 submits its whole input at once (the file would be read into
memory ahead of the workers); here at most ``max_in_flight`` chunks are submitted and not yet
consumed. The caller's thread reads the next chunk while workers score, and consumes results
strictly in submission order as soon as the oldest one is done. On the first failure (or an
interruption) every queued task is cancelled and the error propagates; tasks already running
finish their chunk, which bounds how long a stop takes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["run_ordered"]

T = TypeVar("T")
R = TypeVar("R")


def run_ordered(
    items: Iterable[T],
    work: Callable[[T], R],
    consume: Callable[[T, R], None],
    *,
    workers: int,
    max_in_flight: int | None = None,
    thread_name_prefix: str = "modelrouter-score",
) -> int:
    """Run ``work`` on every item on ``workers`` threads; ``consume`` results in input order.

    ``consume`` runs on the calling thread. At most ``max_in_flight`` (default
    ``2 × workers``) items are submitted but not yet consumed. Returns the number of items.
    Raises the first exception of ``work`` or ``consume`` (or of iterating ``items``) after
    cancelling the work not yet started.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    window = max_in_flight if max_in_flight is not None else 2 * workers
    if window < 1:
        raise ValueError(f"max_in_flight must be at least 1 (got {window})")

    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name_prefix)
    pending: deque[tuple[T, Future[R]]] = deque()
    count = 0
    try:
        for item in items:
            pending.append((item, executor.submit(work, item)))
            count += 1
            # Consume whatever is done at the head, and block only when the window is full.
            while pending and (len(pending) >= window or pending[0][1].done()):
                head, future = pending.popleft()
                consume(head, future.result())
        while pending:
            head, future = pending.popleft()
            consume(head, future.result())
    except BaseException:
        for _, future in pending:
            future.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return count
