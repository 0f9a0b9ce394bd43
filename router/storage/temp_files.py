"""Hidden temporary files beside an output: named for the run that owns them, swept when it died.

An output is written to ``.<name>.<host>.<pid>.<random>.tmp`` in its destination folder and
renamed over the destination at the commit (:mod:`modelrouter.storage.commit`). The name
carries the host and pid of the run that owns it, so a later run into the same folder can
remove what a killed run left behind (:func:`sweep_stale_temps`) without touching the files
of a run that is still alive. Every temporary file is registered with the run
(:mod:`~modelrouter.storage.inflight`) the moment it exists, so a signal finds it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

from modelrouter.storage import inflight

__all__ = [
    "TEMP_PATTERN",
    "drop_temp",
    "host_tag",
    "replace_keeping",
    "restore",
    "sweep_stale_temps",
    "temp_beside",
]


def host_tag(hostname: str) -> str:
    """The host part of temporary names: the first label, readable, then a digest of the
    whole name — ``node1.cluster-a`` and ``node1.cluster-b`` sharing a folder are two hosts,
    and must not judge each other's pids (their runs' temporaries would be swept alive)."""
    label = re.sub(r"[^A-Za-z0-9-]", "-", hostname.split(".", maxsplit=1)[0])[:24] or "host"
    digest = hashlib.sha256(hostname.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{label}-{digest}"


# The host part keeps a run from judging the pid of a run on another machine (a shared
# folder, Dask workers): only temporary files of this host are ever swept.
_HOST = host_tag(socket.gethostname())
#: ``.<name>.<host>.<pid>.<random>.tmp``; the random part is mkstemp's (8 of [a-z0-9_]).
TEMP_PATTERN = re.compile(
    r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>[0-9]+)\.(?P<rand>[a-z0-9_]{8})\.tmp$"
)


def temp_beside(path: Path) -> Path:
    """An empty hidden temporary file in ``path``'s folder, with the permissions of a new file."""
    run = inflight.current()
    # A signal between the file's creation and its registration would leave it behind: one
    # landing there is held until it is registered (then the interrupted run removes it).
    with run.commit.hold():
        fd, temp = tempfile.mkstemp(
            prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        run.temp_files.add(Path(temp))  # a signal from here on finds it (exits.py)
    try:
        # mkstemp creates 0600; the finished file should get what the umask gives new files.
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        drop_temp(Path(temp))
        raise
    finally:
        os.close(fd)
    return Path(temp)


def replace_keeping(temp: Path, path: Path) -> Path | None:
    """``os.replace(temp, path)``, first keeping the file it replaces under a hidden
    temporary name (a hard link: no copy), so that a run whose later output fails can put it
    back (:meth:`~modelrouter.storage.commit.RunOutputs.commit`). Returns the kept file, or
    ``None`` when there was none (or it could not be kept: a filesystem without hard links)."""
    kept: Path | None = None
    if path.is_file() and not path.is_symlink():
        kept = temp_beside(path)
        try:
            kept.unlink()
            os.link(path, kept)
        except OSError:
            drop_temp(kept)
            kept = None
    try:
        os.replace(temp, path)
    except BaseException:
        if kept is not None:
            drop_temp(kept)
        raise
    return kept


def restore(path: Path, kept: Path | None) -> None:
    """Undo :func:`replace_keeping`: the kept file back in place, or no file. Never raises."""
    try:
        if kept is not None:
            os.replace(kept, path)
            inflight.current().temp_files.discard(kept)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def drop_temp(temp: Path) -> None:
    try:
        temp.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        return  # left for the next run's sweep; still not an output
    inflight.current().temp_files.discard(temp)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # never ours to judge (kill(0) would signal the process group)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def sweep_stale_temps(folders: Sequence[Path]) -> list[Path]:
    """Remove the temporary files that runs on this host left behind when they died.

    Only regular files whose name matches :data:`TEMP_PATTERN` exactly, with this host's name
    and the pid of a process that no longer exists, are removed (a recycled pid only makes us
    keep a stale file). Returns what was removed; never raises.
    """
    removed: list[Path] = []
    for folder in dict.fromkeys(folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            found = TEMP_PATTERN.match(entry.name)
            if found is None or found["host"] != _HOST:
                continue
            pid = int(found["pid"])
            if pid == os.getpid() or _pid_alive(pid):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


@functools.cache
def _umask() -> int:
    """The process's umask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status``. Elsewhere reading it means setting it
    (``os.umask``), a process-wide change that could race with threads creating files, so it
    is done once, on the first write, and cached.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
