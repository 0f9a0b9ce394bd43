"""A pool's counters and the immutable snapshot of them it reports (docs/specification.md §6).

:class:`Counters` is the mutable record a :class:`~modelrouter.pool.ModelPool` updates under
its lock as it lends and takes back instances; :class:`PoolStats` is the copy handed out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from modelrouter.model_type import ModelType

__all__ = ["Counters", "PoolStats"]


@dataclass(frozen=True)
class PoolStats:
    """An immutable snapshot of one pool's counters (times in seconds).

    ``borrows`` counts successful acquisitions, ``waits`` those that found no free instance
    and had to block, ``timeouts`` those that gave up. ``busy_time`` is the total time
    instances spent lent out; ``chunks``/``rows`` count the frames/rows scored through
    borrowed instances; ``errors`` counts borrows whose body raised. ``wall_time`` is the
    pool's age, so ``utilisation`` = busy_time / (size × wall_time). ``available`` counts
    the instances the pool actually holds — free, handed to a waiter that has not taken it
    yet, or not loaded yet — not ``size − in_use``, so an instance lost by a bug would show;
    after :meth:`ModelPool.close` they are no longer lent (``closed``) but still counted, so a
    post-mortem snapshot shows whether every instance came back.
    """

    model_type: ModelType
    size: int
    available: int
    in_use: int
    borrows: int
    waits: int
    timeouts: int
    wait_total: float
    wait_max: float
    busy_time: float
    chunks: int
    rows: int
    errors: int
    wall_time: float
    closed: bool = False

    @property
    def wait_mean(self) -> float:
        """Mean wait per borrow (0 when nothing was borrowed)."""
        return self.wait_total / self.borrows if self.borrows else 0.0

    @property
    def utilisation(self) -> float:
        """Fraction of the pool's capacity spent lent out since it was created."""
        capacity = self.size * self.wall_time
        return min(1.0, self.busy_time / capacity) if capacity > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The docs/specification.md §6 keys (plus ``waits``, ``timeouts``, ``wall_time``)."""
        return {
            "size": self.size,
            "available": self.available,
            "in_use": self.in_use,
            "borrows": self.borrows,
            "waits": self.waits,
            "timeouts": self.timeouts,
            "wait_total": self.wait_total,
            "wait_mean": self.wait_mean,
            "wait_max": self.wait_max,
            "busy_time": self.busy_time,
            "utilisation": self.utilisation,
            "chunks": self.chunks,
            "rows": self.rows,
            "errors": self.errors,
            "wall_time": self.wall_time,
        }


@dataclass
class Counters:
    """The running totals behind :class:`PoolStats`, changed only under the pool's lock."""

    borrows: int = 0
    waits: int = 0
    timeouts: int = 0
    wait_total: float = 0.0
    wait_max: float = 0.0
    busy_time: float = 0.0
    chunks: int = 0
    rows: int = 0
    errors: int = 0
    lent: dict[int, float] = field(default_factory=dict)  # id(instance) -> lent at

    def snapshot(
        self, model_type: ModelType, *, size: int, available: int, created: float, closed: bool
    ) -> PoolStats:
        """The counters now, for a pool created at ``created`` (``time.perf_counter``)."""
        now = time.perf_counter()
        return PoolStats(
            model_type=model_type,
            size=size,
            available=available,
            in_use=len(self.lent),
            borrows=self.borrows,
            waits=self.waits,
            timeouts=self.timeouts,
            wait_total=self.wait_total,
            wait_max=self.wait_max,
            # Time of borrows still outstanding counts as busy up to now.
            busy_time=self.busy_time + sum(now - t for t in self.lent.values()),
            chunks=self.chunks,
            rows=self.rows,
            errors=self.errors,
            wall_time=now - created,
            closed=closed,
        )
