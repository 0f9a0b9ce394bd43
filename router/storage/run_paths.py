"""Which files a run reads and writes, checked before anything is read or written.

docs/specification.md §2: no path may be written that is read in the same run. An output that is
the same file as an input (the data, the model, the config) or as another output — same
path, a symlink, a hard link — is refused up front. Files are compared by identity, not by
name: ``(st_dev, st_ino)`` for files that exist (docs/specification.md §2: a string comparison misses
links), the fully resolved path (``realpath``, which follows symlinks in every component) for
files that do not exist yet, object-store URIs as normalised strings (there is nothing to
``stat``). Character devices are never a conflict: ``/dev/null`` twice or a terminal as
stdin and stdout hold no data to destroy.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelrouter.storage.location import DataLocation

__all__ = [
    "PathConflict",
    "PathUse",
    "check_paths",
    "is_stream_source",
    "stdin_is_closed",
    "stdin_is_regular",
]


class PathConflict(Exception):
    """An output would overwrite an input or another output: a usage error (exit 2).

    Not a :class:`~modelrouter.errors.ModelRouterError`: the shell turns it into Click's usage
    error for :attr:`option`.
    """

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class PathUse:
    """One path of a run: what it is (``role``, for messages) and the option that named it."""

    path: str
    role: str
    option: str

    @property
    def location(self) -> DataLocation:
        """Where the path is (``-``: stdin among inputs, stdout among outputs)."""
        return DataLocation.of(self.path)


def is_stream_source(path: str | Path) -> bool:
    """True for an input that can only be read once, front to back: a FIFO or a device
    (``/dev/stdin`` on a pipe or terminal)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def stdin_is_closed() -> bool:
    """True when the process was started with fd 0 closed (``<&-``)."""
    if sys.stdin is None:
        return True
    try:
        os.fstat(sys.stdin.fileno())
    except (OSError, ValueError):
        return True
    return False


def stdin_is_regular() -> bool:
    """True when stdin is a regular file (``< data.parquet``): seekable, so any format reads."""
    try:
        return stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:
        return False


_Key = tuple[str, int, int] | tuple[str, str]


def _identity(location: DataLocation, stdio_fd: int) -> _Key | None:
    """What makes two paths the same file; ``None`` for what cannot hold data (a device)."""
    path = location.text
    if location.uri is not None:
        return ("uri", _uri_key(path))
    try:
        info = os.fstat(stdio_fd) if location.is_stream else os.stat(path)
    except FileNotFoundError:
        return ("path", os.path.realpath(path))
    except (OSError, ValueError):
        if location.is_stream:
            return None
        return ("path", os.path.realpath(path))
    if stat.S_ISCHR(info.st_mode):
        return None
    if location.is_stream and not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        return None
    return ("inode", info.st_dev, info.st_ino)


def _uri_key(uri: str) -> str:
    """An object-store URI compared as a string (no ``stat`` on ``s3://``): the scheme's case,
    ``s3a`` and repeated or trailing slashes do not make another object."""
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    return f"{'s3' if scheme == 's3a' else scheme}://{'/'.join(p for p in rest.split('/') if p)}"


def _how(first: DataLocation, second: DataLocation) -> str:
    a, b = first.text, second.text
    if first.uri is not None or second.uri is not None:
        return "" if a == b else " (the same object)"
    if first.is_stream or second.is_stream:
        return " (through a redirection of stdin/stdout)"
    if os.path.abspath(a) == os.path.abspath(b):
        return ""
    if os.path.realpath(a) == os.path.realpath(b):
        return " (through a symlink)"
    return " (a hard link or symlink to it)"


def check_paths(inputs: Sequence[PathUse], outputs: Sequence[PathUse]) -> None:
    """Raise :class:`PathConflict` when an output is an input or another output.

    ``-`` is stdin among ``inputs`` and stdout among ``outputs`` (compared by what the file
    descriptor refers to, so ``- < x.csv -o x.csv`` is caught too). Reads nothing but
    metadata; writes nothing.
    """
    seen: dict[_Key, tuple[PathUse, bool]] = {}  # the first use of each file; is it an input?
    for use in inputs:
        key = _identity(use.location, 0)
        if key is not None:
            seen.setdefault(key, (use, True))
    for use in outputs:
        key = _identity(use.location, 1)
        if key is None:
            continue
        if key in seen:
            other, is_input = seen[key]
            shown = "stdout" if use.location.is_stream else use.path
            first = ("stdin" if is_input else "stdout") if other.location.is_stream else other.path
            verb = "is read by this run" if is_input else "is written by this run as well"
            how = _how(use.location, other.location)
            raise PathConflict(
                f"{shown} is the same file as {other.role} {first}{how}, which "
                f"{verb}; choose another path (nothing was read or written)",
                use.option,
            )
        seen[key] = (use, False)
