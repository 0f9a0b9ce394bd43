"""Keeping a batch run's memory flat: how the process's allocators are asked to behave.

A run allocates and frees the same few large buffers per chunk (Arrow batches, feature
matrices, the reader's pages) on several threads. glibc's malloc, which serves both numpy
and Arrow's system pool (chosen by the console script), keeps freed memory it cannot trim
from the top of a heap, and gives each new thread its own heap ("arena"), so what one
worker freed is not reused by another. Measured on 1M rows (README, Performance): a trim
after every 8 MiB of input lowered peak RSS by 10–40 MiB, two arenas by another 5–13 MiB.

The arena limit is a process-wide setting: the command sets it at its entry point
(:mod:`modelrouter.cli.process`); library code never changes it.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["Trimmer"]

#: Trim after every this many bytes of input consumed. A trim hands free pages back and the
#: next chunks fault them in again (system time). On 1M rows in 32,768-row chunks (2.6 MiB
#: of input each) with a forest: after every chunk, peak 278 MiB and 0.2 s more system
#: time; every 8 MiB, 284 MiB and 0.1 s; every 12 MiB, 288 MiB; never, 294 MiB, and a
#: logistic regression's run grew by 50 MiB over its 31 chunks. Counted in bytes, so small
#: chunks do not trim thousands of times.
TRIM_EVERY_BYTES = 8 << 20


class Trimmer:
    """Returns freed memory to the system every :data:`TRIM_EVERY_BYTES` of input: Arrow's
    pool releases what it holds (for the system pool, glibc's ``malloc_trim``, which trims
    numpy's heaps as well)."""

    def __init__(self, every: int = TRIM_EVERY_BYTES) -> None:
        self.every = every
        self._since = 0
        self.trims = 0

    def consumed(self, nbytes: int) -> None:
        """``nbytes`` of input were scored, written and let go."""
        self._since += nbytes
        if self._since >= self.every:
            self._since = 0
            self.trims += 1
            pa.default_memory_pool().release_unused()
