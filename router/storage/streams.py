"""Outputs written as streams: stdout, and an existing character device or FIFO.

``/dev/null``, ``/dev/full`` or a named pipe given as an output is written in place, never
replaced by a regular file (``os.replace`` onto ``/dev/null`` as root would do exactly that).
What was written to a stream stays written: it cannot be taken back at an abort.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from modelrouter.errors import OutputError

__all__ = ["close_quietly", "is_stream_target", "open_stream", "stdout_failed", "stdout_stream"]


def is_stream_target(path: Path) -> bool:
    """True when ``path`` is an existing character device or FIFO: written as a stream."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def open_stream(path: Path) -> BinaryIO | None:
    """Open an existing device/FIFO for writing (blocks until a FIFO has a reader); ``None``
    when ``path`` is not (or no longer) one."""
    if not is_stream_target(path):
        return None
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):  # replaced since the check
        os.close(fd)
        return None
    return os.fdopen(fd, "wb", buffering=1 << 20)


def close_quietly(stream: BinaryIO) -> None:
    try:
        stream.close()
    except OSError:
        pass  # the write error was reported; a failed flush repeats it on close


def stdout_stream() -> BinaryIO:
    """The process's stdout as bytes; :class:`OutputError` when it is closed (``>&-``)."""
    stream = sys.stdout
    try:
        if stream is None:
            raise OSError(errno.EBADF, "standard output is closed")
        os.fstat(stream.fileno())
        return stream.buffer
    except (OSError, ValueError, AttributeError):
        raise OutputError("<stdout>: cannot write: standard output is closed") from None


def stdout_failed() -> None:
    """After a write error on stdout: point fd 1 at /dev/null so that the interpreter's final
    flush of what is still buffered cannot fail again (and print 'Exception ignored')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
