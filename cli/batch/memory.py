"""Keeping a batch run's memory flat: how the process's allocators are asked to behave.

A run allocates and frees the same few large buffers per chunk (Arrow batches, feature
matrices, the reader's pages) on several threads. glibc's malloc, which serves both numpy
and Arrow's system pool (chosen by the console script), keeps freed memory it cannot trim
from the top of a heap, and gives each new thread its own heap ("arena"), so what one
worker freed is not reused by another. Measured on 1M rows (README, Performance): one trim
per chunk lowered peak RSS by 20–30 MiB, two arenas by another 5–13 MiB, at the same speed.

Library code never calls these: they are process-wide settings for the command only.
"""

from __future__ import annotations

import ctypes
import os
import sys

import pyarrow as pa

__all__ = ["limit_arenas", "release_unused"]

#: glibc's mallopt parameter for the arena limit (malloc.h: ``#define M_ARENA_MAX -8``).
_M_ARENA_MAX = -8

_limited = False


def limit_arenas() -> None:
    """Cap glibc's malloc arenas at the number of cores (default: 8 per core), before the
    run starts its threads. Idempotent; a ``MALLOC_ARENA_MAX`` the user exported wins; a
    no-op where the C library is not glibc."""
    global _limited
    if _limited or "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    _limited = True
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    if not hasattr(libc, "gnu_get_libc_version"):  # musl has a mallopt that does nothing
        return
    libc.mallopt(_M_ARENA_MAX, max(2, os.cpu_count() or 1))  # ints pass as C ints


def release_unused() -> None:
    """Return freed memory to the system: Arrow's pool releases what it holds (for the
    system pool, glibc's ``malloc_trim``, which trims numpy's heaps as well)."""
    pa.default_memory_pool().release_unused()
