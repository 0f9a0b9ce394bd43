"""Process-wide settings of the ``modelrouter`` command, made here and nowhere else.

The library (:mod:`modelrouter`) never changes process state: an Airflow task or a notebook
that embeds the engine keeps its own allocator, umask and signal handlers. The command owns
its process, so it chooses them once, at its entry point, before any thread starts.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from typing import NoReturn

__all__ = ["configure", "end_process", "hard_exit_enabled", "mask_passwords"]

#: glibc's mallopt parameter for the arena limit (malloc.h: ``#define M_ARENA_MAX -8``).
_M_ARENA_MAX = -8
#: glibc's mallopt parameter for the size from which an allocation gets its own mapping
#: (malloc.h: ``#define M_MMAP_THRESHOLD -3``).
_M_MMAP_THRESHOLD = -3

#: Allocations of this size or more are mapped on their own and unmapped when freed. glibc
#: otherwise raises its threshold to the largest block freed so far and serves such blocks
#: from its heaps: a gzip file of a header and 768 MiB of blank lines (Arrow parses 1 MiB
#: blocks and hands back no rows, so the run never trims) peaked at 916 MiB, linear in the
#: blank lines (2.35 GB for 2 GiB); fixed at 1 MiB, 169 MiB (a header-only run: 154). A
#: 500,000-row forest run took the same wall time and peak RSS either way (+0.15 s of
#: system time for the mappings).
MMAP_THRESHOLD_BYTES = 1 << 20

#: Set to ``1`` to end the command through the interpreter's normal shut-down instead of
#: ``os._exit`` (coverage measurement, profilers, embedding ``main()`` in another program).
NO_HARD_EXIT_ENV = "MODELROUTER_NO_HARD_EXIT"


def configure() -> None:
    """Choose the allocators before pyarrow loads and before any worker thread starts.

    - Arrow's bundled allocator keeps freed chunk buffers mapped: peak RSS for 1M rows was
      372 MiB with it and 290 MiB with the system allocator, at the same speed
      (docs/performance.md). A value the user exported wins.
    - glibc gives each new thread its own malloc arena (8 per core by default), so what one
      scoring thread freed is not reused by another: capped at the number of cores
      (5-13 MiB less peak RSS measured on 1M rows). ``MALLOC_ARENA_MAX`` exported wins; a
      no-op where the C library is not glibc.
    - glibc's mmap threshold is fixed at :data:`MMAP_THRESHOLD_BYTES` (memory stays flat
      on inputs that give no rows to trim after). ``MALLOC_MMAP_THRESHOLD_`` exported wins.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    _limit_arenas()


def _limit_arenas() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    if not hasattr(libc, "gnu_get_libc_version"):  # musl has a mallopt that does nothing
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, max(2, os.cpu_count() or 1))  # ints pass as C ints
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def hard_exit_enabled() -> bool:
    """Whether the command ends with ``os._exit`` (the default) — see :data:`NO_HARD_EXIT_ENV`."""
    return os.environ.get(NO_HARD_EXIT_ENV, "") not in {"1", "true", "yes"}


def end_process(code: int) -> NoReturn:
    """End the process with ``code``: ``os._exit`` unless turned off by the environment.

    With ``os._exit`` the interpreter skips freeing every module (0.3-0.4 s of a 1.6 s
    1,000-row run) and joining worker threads that may still sit in a native predict call;
    the command has already committed or removed its outputs when it gets here.
    """
    if hard_exit_enabled():
        os._exit(code)
    sys.exit(code)


# -- passwords out of the process title ----------------------------------------------------------

_USERINFO = re.compile(rb"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\0]*):[^@\s\0]*@")
_PASSWORD_SETTING = re.compile(rb"(\bpassword\s*=\s*)[^&\s\0]*", re.IGNORECASE)


def _masked(args: bytes) -> bytes:
    return _PASSWORD_SETTING.sub(rb"\1***", _USERINFO.sub(rb"\1:***@", args))


def mask_passwords() -> bool:
    """Rewrite this process's argument area with passwords masked; True when it changed.

    docs/specification.md §12: a password in a database URL is never shown, and ``ps``
    (``/proc/PID/cmdline``) shows the command line as it was typed. Python keeps its own copy
    of the arguments (``sys.argv``), so the kernel's copy — the argument area between the
    ``arg_start`` and ``arg_end`` addresses of ``/proc/self/stat`` — can be rewritten in
    place: the same arguments with ``user:***@host`` and ``password=***``, padded with NULs
    to the same length (what ``setproctitle`` does). Linux only; elsewhere, and on any
    failure, nothing changes. The window before this runs is the interpreter's start-up:
    pass passwords in ``PGPASSWORD`` or ``~/.pgpass`` where even that matters.
    """
    try:
        with open("/proc/self/cmdline", "rb") as handle:
            current = handle.read()
        if b"@" not in current and b"password" not in current.lower():
            return False
        masked = _masked(current)
        if masked == current:
            return False
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
        # Fields after the command name (which may hold spaces and parentheses): field 3 on.
        fields = stat[stat.rindex(b")") + 2 :].split()
        arg_start, arg_end = int(fields[48 - 3]), int(fields[49 - 3])  # proc(5): fields 48, 49
        size = arg_end - arg_start
        if size < len(masked) or size != len(current):
            return False  # not the layout we read: leave it alone
        ctypes.memmove(arg_start, masked.ljust(size, b"\0"), size)
    except (OSError, ValueError, IndexError):
        return False
    return True
