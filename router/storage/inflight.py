"""What a run has in flight, for the signal handling of the program that runs it.

One :class:`InFlight` object per run, standard library only, so the command's signal handler
and watchdog (:mod:`modelrouter.cli.exits`) can import it at no cost and ask it directly:

- ``commit`` (a :class:`CommitGuard`): the commit's critical section. A SIGINT/SIGTERM
  arriving during the renames is held until they are done, and a run whose final commit is
  through exits 0 whatever arrives afterwards (docs/specification.md §5).
- ``temp_files`` and ``uploads``: temporary files not yet renamed or removed and
  object-store uploads not yet completed or aborted. :meth:`InFlight.drop_temporaries`
  removes and aborts them when the main thread is stuck in native code and cannot.

A signal handler has no arguments to be given the run by, so the run being executed is
found through :func:`current`; the entry point that starts a run calls :func:`start_run`
(one process runs one command; tests and embedders run many, each with a fresh state). The
writers (:mod:`modelrouter.storage.commit`, :mod:`modelrouter.storage.object_store`)
register and forget their items on :func:`current`; nothing here imports them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

__all__ = ["Abortable", "CommitGuard", "InFlight", "current", "start_run"]


class Abortable(Protocol):
    """An upload in flight: aborting it leaves no object behind, never a partial one."""

    def abort_upload(self) -> None: ...


class CommitGuard:
    """What the signal handler needs to know about the run's commit (one per run).

    ``committing``: renames are in progress — a signal is held (:attr:`deferred`) until they
    are done. ``committed``: the run's final commit is through — the run exits 0 whatever
    signal arrives. ``published``: output files renamed into place so far (a dataset keeps the
    files completed before an interruption). Thread-safe; the handler only reads flags.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.committing = False
        self.committed = False
        self.published = 0
        self.deferred: int | None = None
        self.holding = 0  # open hold() sections, in any thread
        self._hold_lock = threading.Lock()

    def defer(self, signum: int) -> bool:
        """Called by the signal handler: True when the signal must not interrupt the run."""
        if self.committed:
            return True
        if self.committing or self.holding:
            self.deferred = self.deferred or signum
            return True
        return False

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A few statements a signal must not split (a temporary file's creation and its
        registration: between the two, an interrupted run would not know to remove it). A
        signal landing inside is raised again when the last open section ends, unless a
        commit section holds it (its end raises it) or the run is committed."""
        with self._hold_lock:
            self.holding += 1
        try:
            yield
        finally:
            with self._hold_lock:
                self.holding -= 1
                last = self.holding == 0
            if last and not self.committing:
                held, self.deferred = self.deferred, None
                if held is not None and not self.committed:
                    signal.raise_signal(held)

    @contextmanager
    def section(self, *, final: bool) -> Iterator[None]:
        """Renames inside are not interrupted by SIGINT/SIGTERM; ``final`` ends the run's
        commit (signals are ignored from then on). A signal held during a non-final section
        is raised again when it ends."""
        with self.lock:
            self.committing = True
            try:
                yield
                if final:
                    self.committed = True
            finally:
                self.committing = False
        held, self.deferred = self.deferred, None
        if held is not None and not self.committed:
            signal.raise_signal(held)


class InFlight:
    """One run's commit guard, temporary files and uploads (see the module's docstring)."""

    def __init__(self) -> None:
        self.commit = CommitGuard()
        #: Temporary files not yet committed or removed.
        self.temp_files: set[Path] = set()
        #: Object-store uploads not yet completed or aborted.
        self.uploads: set[Abortable] = set()
        #: Whether the command produces output files or tables (``serve``, ``models`` and
        #: ``inspect`` do not: an interruption then has no output to speak of).
        self.writes_output = True

    def drop_temporaries(self) -> None:
        """Remove every temporary output not yet renamed into place, abort every upload in
        flight.

        The run's own clean-up does this on its way out; this catches what it cannot see — a
        signal that landed between a temporary file's creation and the line that keeps it (in
        a constructor that then never returns its object), or a main thread stuck in native
        code.
        """
        for temp in list(self.temp_files):
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass  # left for the next run's sweep of dead processes' temporaries
        for upload in list(self.uploads):
            upload.abort_upload()


_current = InFlight()


def current() -> InFlight:
    """The run being executed in this process (a fresh state until :func:`start_run`)."""
    return _current


def start_run() -> InFlight:
    """A fresh state for the run about to start; the signal handler sees it from now on.

    Items a previous run left registered (a library caller that abandoned a run) are
    dropped first, so they are neither forgotten on disk nor attributed to the new run.
    """
    global _current
    _current.drop_temporaries()
    _current = InFlight()
    return _current
