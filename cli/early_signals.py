"""A Ctrl-C before the command has taken the signals (while its modules are imported).

Python's own SIGINT handling raises ``KeyboardInterrupt`` wherever the main thread is. Raised
inside an extension module's initialisation it becomes ``ImportError: initialization
failed``, which a library's optional import may catch and forget: the interruption would be
lost, and ``serve`` would go on to listen. The handler installed here first thing records
the signal as well; the command checks the record once it has taken the signals itself
(:func:`modelrouter.cli.main.main`). Standard library only: it runs before anything slow.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["install", "received"]

_received: int | None = None


def _record(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = _received or signum
    raise KeyboardInterrupt


def install() -> None:
    """Record a SIGINT from now on (and raise ``KeyboardInterrupt``, as Python does)."""
    signal.signal(signal.SIGINT, _record)


def received() -> int | None:
    """The signal recorded before the command took the signals, if any."""
    return _received
