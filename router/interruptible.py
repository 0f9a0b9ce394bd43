"""Blocking waits that a Ctrl-C always ends, on the main thread.

CPython runs a signal's Python handler between bytecodes, and a blocking lock acquire is
woken by the signal's ``EINTR``. A SIGINT that lands after the interpreter's last check but
before the thread is inside the blocking call wakes nothing: the thread sleeps on until
something else wakes it, and the ``KeyboardInterrupt`` comes only then. A borrower waiting
for an instance whose holder never returns it would ignore that Ctrl-C forever. Waiting in
short slices bounds the delay to one slice, at the price of a wake-up per slice while
waiting (threads other than the main one never get signals, so they block plainly).
"""

from __future__ import annotations

import threading
import time

__all__ = ["MAIN_THREAD_SLICE", "wait_event"]

#: The longest the main thread blocks at a time while it waits (seconds).
MAIN_THREAD_SLICE = 0.1


def wait_event(event: threading.Event, timeout: float | None) -> bool:
    """``event.wait(timeout)``, but on the main thread in slices a pending signal ends.

    Returns the event's flag, like :meth:`threading.Event.wait`.
    """
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is None:
            step = MAIN_THREAD_SLICE
        else:
            step = min(MAIN_THREAD_SLICE, deadline - time.monotonic())
            if step <= 0:
                return event.is_set()
        if event.wait(step):
            return True
