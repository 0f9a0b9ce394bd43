"""Waiting for something a test can observe, always with a deadline — never a sleep.

A sleep used to order two things ("let them block", "a few chunks scored") is a guess that a
loaded machine proves wrong, and costs its full length on an idle one. These helpers wait
for the event itself, and fail the test (instead of hanging it) when the product never
gets there.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SignallingLine", "all_threads_asleep", "unread_bytes", "wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = 30.0, every: float = 0.02) -> T:
    """Poll ``condition`` until it returns something true (returned); AssertionError naming
    ``what`` after ``timeout`` seconds. ``condition`` may itself assert (a process that died)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)
    return value


class SignallingLine(deque[Any]):
    """A pool's line of waiting borrowers (``pool._waiters = SignallingLine()``) that tells
    the test when a borrower joins it: ``joined`` is set at the first, and
    :meth:`wait_joined` waits for the n-th since the line was made."""

    def __init__(self) -> None:
        super().__init__()
        self.joined = threading.Event()
        self.joins = 0
        self._changed = threading.Condition()

    def append(self, item: Any) -> None:
        super().append(item)
        with self._changed:
            self.joins += 1
            self._changed.notify_all()
        self.joined.set()

    def wait_joined(self, joins: int = 1, timeout: float = 10.0) -> None:
        """Return once ``joins`` borrowers in all have joined; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.joins >= joins, timeout):
                raise AssertionError(f"{self.joins} of {joins} borrowers joined the line within {timeout} s")

    async def until_joined(self, joins: int = 1, timeout: float = 10.0) -> None:
        """:meth:`wait_joined` for a coroutine whose borrowers wait on its own event loop:
        lets the loop run until they have joined, without blocking it."""
        deadline = time.monotonic() + timeout
        while self.joins < joins:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.joins} of {joins} borrowers joined the line within {timeout} s")
            await asyncio.sleep(0)


def unread_bytes(pipe: int) -> int:
    """Bytes written to a pipe that its reader has not taken yet (Linux: FIONREAD works on
    either end of a pipe)."""
    count: int = struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0" * 4))[0]
    return count


def all_threads_asleep(pid: int) -> bool:
    """Whether every thread of process ``pid`` is blocked (state S or D in /proc): none is
    running or ready to run, so the process is waiting for something from outside."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # a thread that just ended
            continue
        states.append(stat.rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in "SD" for state in states)
