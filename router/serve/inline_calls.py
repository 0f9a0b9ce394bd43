"""Which model calls of the service run on the event loop's own thread (docs/serving.md, "How
requests are run, and batching").

A model call handed to an inference thread costs a thread hop both ways, and while the loop
and the thread take turns at the GIL neither runs at full speed: on a 2-core machine, 1-row
requests from 8 clients cost the service 0.9 ms of CPU each that way, and 0.39 ms when the
(0.2 ms) forest call of each small batch ran on the loop itself. But a call on the loop
blocks every other request meanwhile, and the service promises that inference runs off the
event loop: so this is off unless an app built with ``create_app`` opts in
(``ServeConfig(inline_budget=…)``), and then only calls known to be short run there:

- a batch of at most :data:`INLINE_MAX_ROWS` rows,
- of a model whose last :data:`HISTORY` such calls each cost at most ``budget`` seconds
  (the first ones always run in a thread, which measures them),
- until one call run on the loop costs more than :data:`TRIP` × ``budget``: from then on
  every call of that model runs in a thread, for the life of the service.

A call's cost is the CPU time of the thread that ran it, so that waiting for the GIL does
not count against a fast model under load; a call whose wall time exceeds
:data:`SLOW_WALL` seconds costs its wall time, so that a model that sleeps or waits on I/O
(little CPU, long calls) is never run on the loop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DEFAULT_BUDGET", "HISTORY", "INLINE_MAX_ROWS", "SLOW_WALL", "TRIP", "InlineCalls"]

T = TypeVar("T")

#: Seconds of CPU a call may cost to run on the event loop. Off (0) by default: the service's
#: contract is that inference runs off the event loop (docs/serving.md, "Small batches on the
#: event loop"); an app built with ``create_app`` may opt in with ``ServeConfig(inline_budget=…)``.
DEFAULT_BUDGET = 0.0
#: Batches above this many rows always run in a thread.
INLINE_MAX_ROWS = 256
#: How many past small calls must each have been within the budget.
HISTORY = 8
#: A call run on the loop costing more than TRIP × budget stops all further ones.
TRIP = 4.0
#: Wall seconds above which a call's cost is its wall time, not its CPU time.
SLOW_WALL = 0.04


class InlineCalls:
    """The record of one pool's small model calls, and the rule above (one per batcher)."""

    def __init__(self, budget: float = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._costs: deque[float] = deque(maxlen=HISTORY)
        self._lock = threading.Lock()  # calls are recorded from the inference threads too
        self.tripped = False  # a call on the loop was too slow: threads only from then on

    def allows(self, rows: int) -> bool:
        """Whether a call on ``rows`` rows may run on the event loop now."""
        return not self.tripped and self.budget > 0 and self.recently_within(self.budget, rows)

    def recently_within(self, cost: float, rows: int) -> bool:
        """Whether a batch of ``rows`` rows is small and the last :data:`HISTORY` small calls
        (wherever they ran) each cost at most ``cost`` seconds."""
        if rows > INLINE_MAX_ROWS:
            return False
        with self._lock:
            return len(self._costs) == HISTORY and max(self._costs) <= cost

    def run_here(self, call: Callable[[], T], rows: int) -> T:
        """Run ``call`` on this (the loop's) thread, measured."""
        return self._measured(call, rows, on_loop=True)

    def timed(self, call: Callable[[], T], rows: int) -> T:
        """Run ``call`` (in an inference thread) and record its cost if the batch was small."""
        return self._measured(call, rows, on_loop=False)

    def _measured(self, call: Callable[[], T], rows: int, *, on_loop: bool) -> T:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return call()
        finally:
            if rows <= INLINE_MAX_ROWS:
                wall = time.perf_counter() - wall
                cost = wall if wall > SLOW_WALL else time.thread_time() - cpu
                with self._lock:
                    self._costs.append(cost)
                    if on_loop and cost > TRIP * self.budget:
                        self.tripped = True
