"""One walker for a dataset's folder form (``data/``) and glob form (``'data/**/*.csv'``).

The walk follows symlinks to folders and to files, and lists each real folder once — a
folder is known by its ``(st_dev, st_ino)``, so a link back up the tree (``self -> .``,
``sub/back -> ..``) or two links to one folder never repeat it and never loop. Among the
paths that reach one real folder, the one with the fewest symlinks wins, then the
shallowest, then the first in natural order: a folder inside the dataset keeps its own name
even when a link to it sorts first. The walk is bounded in depth (:data:`MAX_DEPTH` folders
below the root) and in time (:data:`MAX_SECONDS`); beyond either it refuses, naming the
bound, rather than return part of the set.

Names starting with ``.`` or ``_`` are not data (Spark's ``_temporary/``, ``_SUCCESS``,
editors' ``.~lock`` files), folders included, unless the glob names them explicitly (a
pattern component starting with that character). Anything else the walk would use and
cannot — a folder it cannot list, a dangling symlink, a symlink loop, a FIFO or device named
like data, a file without read permission — refuses the run with a :class:`DataError` that
names the path and the reason (exit 3): the set would be incomplete, and nothing is ever
skipped without a word (docs/specification.md §9).

A glob's components after its fixed prefix are matched one folder level each with
:func:`fnmatch.fnmatchcase` (``*``, ``?``, ``[…]``); a component that is exactly ``**``
matches any number of folders, none included — :mod:`glob`'s ``recursive=True`` rules.
The folder form is the pattern ``**/*`` restricted to data file names.
"""

from __future__ import annotations

import errno
import heapq
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from modelrouter.errors import DataError

__all__ = [
    "MAX_DEPTH",
    "MAX_SECONDS",
    "Visited",
    "Walk",
    "natural_key",
    "walk_tree",
]

#: Folders below the root a walk descends at most (deeper trees are refused, not cut).
MAX_DEPTH = 64
#: Seconds a walk may take before it refuses (a tree on a hung network mount, say).
MAX_SECONDS = 300.0

_FOLDER_FORM = ("**", "*")
_HIDDEN = (".", "_")


def natural_key(path: object) -> list[Any]:
    """Sort key where ``part-2`` comes before ``part-10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


@dataclass(frozen=True)
class Visited:
    """A folder the walk listed: the path it was listed under, its real path, and the
    pattern positions still to match below it."""

    path: Path
    real: str
    state: frozenset[int]


@dataclass(frozen=True)
class Walk:
    """The data files a walk found (in walk order) and the folders it listed."""

    root: Path
    parts: tuple[str, ...]
    files: tuple[Path, ...]
    folders: tuple[Visited, ...]
    #: Folders not entered because they are (inside) ``exclude``, as the walk reached them.
    excluded: tuple[Path, ...] = ()


def _hidden(name: str, component: str) -> bool:
    """A hidden or underscore name, not named explicitly by the pattern component."""
    return name.startswith(_HIDDEN) and not component.startswith(name[0])


def _closure(parts: Sequence[str], state: Iterable[int]) -> frozenset[int]:
    """``**`` also matches zero folders: an active ``**`` activates the component after it."""
    active = set(state)
    for start in sorted(active):
        i = start
        while i < len(parts) and parts[i] == "**":
            i += 1
            active.add(i)
    return frozenset(active)


def _enter(parts: Sequence[str], state: frozenset[int], name: str) -> frozenset[int]:
    """The pattern positions active inside the subfolder ``name`` (empty: not entered)."""
    below: set[int] = set()
    for i in state:
        if i >= len(parts):
            continue
        component = parts[i]
        if _hidden(name, component):
            continue
        if component == "**":
            below.add(i)
        elif i < len(parts) - 1 and fnmatchcase(name, component):
            below.add(i + 1)
    return _closure(parts, below)


def _lists(parts: Sequence[str], state: frozenset[int], name: str) -> bool:
    """Whether the file ``name`` in a folder at ``state`` matches the pattern's last part."""
    last = len(parts) - 1
    return any(
        i == last and not _hidden(name, parts[i]) and (parts[i] == "**" or fnmatchcase(name, parts[i]))
        for i in state
    )


def _root_state(parts: Sequence[str] | None) -> frozenset[int]:
    return _closure(_FOLDER_FORM if parts is None else tuple(parts), {0})


def _refuse(path: Path | str, reason: str) -> DataError:
    return DataError(f"{path}: {reason}; the set would be incomplete")


def _stat(path: Path) -> os.stat_result:
    """``os.stat`` (links followed) with the reason a dataset entry cannot be used."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: a dangling symlink in the dataset (its target does not exist)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(
                f"{path}: a symlink loop in the dataset (it never reaches a file or folder)"
            ) from None
        raise DataError(f"{path}: cannot read this entry of the dataset ({exc.strerror})") from None


def _entry_stat(entry: os.DirEntry[str], path: Path, is_link: bool) -> os.stat_result:
    """A listed entry's ``stat``, links followed: from the listing for a plain file or folder,
    else with the reason it cannot be used (:func:`_stat`)."""
    if is_link or not (entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)):
        return _stat(path)
    return entry.stat(follow_symlinks=False)


def _check_file(path: Path, mode: int) -> None:
    """A listed file must be a readable regular file: anything else fails the run (exit 3)."""
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) else "not a regular file"
        raise DataError(f"{path}: {kind}, not a regular file; a dataset holds regular files only")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot read this file of the dataset (permission denied)")


@dataclass(frozen=True)
class _Entry:
    """A listed entry the pattern can use: its ``stat`` (links followed), the pattern positions
    active below it if it is a folder (empty: not entered), and whether it is listed as a file."""

    path: Path
    is_link: bool
    info: os.stat_result
    below: frozenset[int]
    as_file: bool


def _usable_entries(
    folder: Path, pattern: tuple[str, ...], state: frozenset[int], is_data: Callable[[str], bool]
) -> Iterator[_Entry]:
    """The entries of ``folder`` the pattern can use, in natural order.

    Entries the pattern cannot use are never looked at (no ``stat``, so no refusal for them);
    the others are ``stat``-ed one by one as they are taken, refusing an entry that cannot be
    used (:func:`_entry_stat`)."""
    try:
        with os.scandir(folder) as entries:
            listed = sorted(entries, key=lambda e: natural_key(e.name))
    except OSError as exc:
        raise DataError(
            f"{exc.filename or folder}: cannot list this folder of the dataset ({exc.strerror}); "
            "the set would be incomplete"
        ) from None
    for entry in listed:
        name = entry.name
        below = _enter(pattern, state, name)
        as_file = _lists(pattern, state, name) and is_data(name)
        if not below and not as_file:
            continue
        path = folder / name
        is_link = entry.is_symlink()
        yield _Entry(path, is_link, _entry_stat(entry, path, is_link), below, as_file)


def _folder_stat(root: Path) -> os.stat_result | None:
    """``root``'s ``stat`` (links followed) when it is a folder, else ``None``."""
    try:
        info = os.stat(root)
    except OSError:
        return None
    return info if stat.S_ISDIR(info.st_mode) else None


def _inside(real: str, exclude: str | None) -> bool:
    """Whether the real path ``real`` is ``exclude`` or inside it."""
    return exclude is not None and (real == exclude or real.startswith(exclude.rstrip(os.sep) + os.sep))


def walk_tree(
    root: Path,
    parts: Sequence[str] | None,
    is_data: Callable[[str], bool],
    *,
    max_depth: int = MAX_DEPTH,
    max_seconds: float = MAX_SECONDS,
    exclude: str | None = None,
) -> Walk:
    """Walk ``root`` for the data files the glob ``parts`` (``None``: the folder form) lists.

    Each real folder is listed once, under its preferred path (see the module docstring),
    so each data file of a real folder is returned once. Raises :class:`DataError` for an entry the
    set needs and cannot read, and when the walk goes deeper than ``max_depth`` folders or
    takes longer than ``max_seconds``; a root that is not a folder gives no files.
    ``exclude`` is a real path (the run's output folder) the walk never enters, under any
    name or link: outputs are never read as inputs.
    """
    pattern = _FOLDER_FORM if parts is None else tuple(parts)
    deadline = time.monotonic() + max_seconds
    files: list[Path] = []
    folders: list[Visited] = []
    excluded: list[Path] = []
    root_info = _folder_stat(root)
    if root_info is None:
        return Walk(root, pattern, (), ())
    seen_folders: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int, str]] = set()
    # (symlinks on the way, depth, natural order, tie-breaker) → the preferred path first.
    queue: list[tuple[int, int, list[Any], int, Path, os.stat_result, frozenset[int]]] = []
    counter = 0
    heapq.heappush(queue, (0, 0, natural_key(root), counter, root, root_info, _root_state(parts)))
    while queue:
        links, depth, _key, _n, folder, info, state = heapq.heappop(queue)
        identity = (info.st_dev, info.st_ino)
        if identity in seen_folders:
            continue  # a real folder already listed: a loop or a second link to it
        seen_folders.add(identity)
        if time.monotonic() > deadline:
            raise _refuse(
                folder,
                f"listing the dataset took more than {max_seconds:g} s ({len(folders):,} folders so far)",
            )
        real = os.path.realpath(folder)
        if depth and _inside(real, exclude):
            excluded.append(folder)
            continue
        folders.append(Visited(folder, real, state))
        for entry in _usable_entries(folder, pattern, state, is_data):
            if stat.S_ISDIR(entry.info.st_mode):
                if not entry.below:
                    continue  # a folder named like a data file, where the pattern lists files only
                if depth + 1 > max_depth:
                    raise _refuse(entry.path, f"deeper than {max_depth} folders below {root}")
                counter += 1
                heapq.heappush(
                    queue,
                    (
                        links + entry.is_link,
                        depth + 1,
                        natural_key(entry.path),
                        counter,
                        entry.path,
                        entry.info,
                        entry.below,
                    ),
                )
            elif entry.as_file:
                key = (info.st_dev, info.st_ino, entry.path.name)
                if key in seen_files:
                    continue
                seen_files.add(key)
                _check_file(entry.path, entry.info.st_mode)
                files.append(entry.path)
    return Walk(root, pattern, tuple(files), tuple(folders), tuple(excluded))
