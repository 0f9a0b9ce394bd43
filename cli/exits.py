"""Exit codes, the signal handler and the mapping from exceptions to one ``error:`` line.

docs/specification.md §5: 1 internal error (a bug), 2 usage (Click), 3 input data, 4 model or
config, 5 output, 128 + signal number when interrupted (SIGHUP 129, SIGINT 130, SIGTERM
143). Shared by every command.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

import typer
from modelrouter.cli import process, render
from modelrouter.known_warnings import is_known_false_warning
from modelrouter.storage import inflight

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_DATA",
    "EXIT_INTERNAL",
    "EXIT_MODEL",
    "EXIT_OUTPUT",
    "Failed",
    "Interrupted",
    "errors_to_exit",
    "exit_code_for",
    "hard_exit",
    "install_signal_handlers",
    "on_signal",
    "report_interruptions",
    "settle",
    "warnings_to_stderr",
]

# -- exit codes (docs/specification.md §5) -----------------------------------------------------

EXIT_INTERNAL, EXIT_DATA, EXIT_MODEL, EXIT_OUTPUT = 1, 3, 4, 5
EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE


class Interrupted(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Failed(typer.Exit):
    """A command failed; its one ``error:`` line is printed and kept here for the run reports
    (stats JSON, metrics textfile) that a failed run still writes."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code)
        self.message = message


#: How long the main thread gets to handle a signal itself before the watchdog acts.
SIGNAL_GRACE_SECONDS = 3.0

#: The signals that interrupt a run: ^C, `timeout`/`kill`, and a closed terminal or SSH
#: session (SIGHUP), which would otherwise kill the process and leave its temporary files.
INTERRUPTING: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

#: What an interrupted command still writes (its stats JSON and metrics), given its exit
#: code: run once, by whichever of the main thread and the watchdog gets there first.
_INTERRUPT_REPORTS: list[Callable[[int], None]] = []
_REPORTS_LOCK = threading.Lock()


@contextmanager
def report_interruptions(report: Callable[[int], None]) -> Iterator[None]:
    """While inside, an interruption calls ``report(exit code)`` before the process exits
    (best effort: its own errors are ignored, the interruption's exit code stands)."""
    _INTERRUPT_REPORTS.append(report)
    try:
        yield
    finally:
        with _REPORTS_LOCK:
            if report in _INTERRUPT_REPORTS:
                _INTERRUPT_REPORTS.remove(report)


def _report_interruption(code: int) -> None:
    with _REPORTS_LOCK:
        reports = list(_INTERRUPT_REPORTS)
        _INTERRUPT_REPORTS.clear()
    for report in reports:
        try:
            report(code)
        except Exception:
            pass


def install_signal_handlers() -> None:
    """SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` in the main thread; a watchdog backs it up.

    Python runs signal handlers only between bytecodes of the main thread. When that thread is
    stuck in native code — pyarrow waiting on a stalled stdin pipe or a hung network mount —
    the handler would run only when data arrives. The C-level handler still writes the signal
    number to a wake-up pipe: a watchdog thread reading it removes the temporary output files
    and exits with 128 + signal if the main thread has not done so within the grace period.
    """
    global _interrupting
    _interrupting = None
    for signum in INTERRUPTING:
        signal.signal(signum, on_signal)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(
        target=_watchdog, args=(read_end,), name="modelrouter-signal-watchdog", daemon=True
    ).start()


def _watchdog(read_end: int) -> None:
    while True:
        received = os.read(read_end, 1)
        if not received:
            return
        signum = received[0]
        if signum not in INTERRUPTING:
            continue
        time.sleep(SIGNAL_GRACE_SECONDS)
        # Still running: the main thread could not get to its handler. Act for it — after a
        # commit in progress is through (its lock), never against one that is done.
        inflight.current().commit.lock.acquire(timeout=30)
        if inflight.current().commit.committed:
            render.error(f"{signal.Signals(signum).name} after the output was committed; exiting")
            hard_exit(0)
        inflight.current().drop_temporaries()
        render.error(interrupted_message(signum))
        _report_interruption(128 + signum)
        hard_exit(128 + signum)


def interrupted_message(signum: int) -> str:
    """What an interrupted run says about its outputs (a dataset keeps the files it finished)."""
    name = signal.Signals(signum).name
    if not inflight.current().writes_output:
        return f"interrupted by {name}"
    published = inflight.current().commit.published
    if published:
        return (
            f"interrupted by {name}; the {published} output file(s) completed so far stay "
            "(rerun with --resume)"
        )
    return f"interrupted by {name}; no output was written"


#: The signal that interrupted the command (the first one :func:`on_signal` raised for).
_interrupting: int | None = None


def on_signal(signum: int, frame: FrameType | None) -> None:
    # A run whose outputs are being renamed into place, or are in place, is not interrupted:
    # the renames finish (a held signal is raised again after a dataset file's commit), and a
    # committed run exits 0 (docs/specification.md §5).
    if inflight.current().commit.defer(signum):
        return
    global _interrupting
    _interrupting = _interrupting or signum
    # Only the first signal interrupts; a second one must not break the clean-up it started.
    for other in INTERRUPTING:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def settle(code: int) -> None:
    """The command is over with ``code``; a signal must not change that any more.

    A signal arriving while the interpreter shuts down (joining threads, atexit) would
    otherwise raise into that machinery ('Exception ignored … Interrupted'). After a success
    SIGINT/SIGTERM are ignored: a Python handler would not do, since the interpreter resets
    its handlers to the default (death by the signal) late in its shut-down, while it keeps an
    ignored one; nothing is left to stop anyway. After a failure they end the process at once
    with the failure's code (worker threads stuck in a model would otherwise be joined)."""
    if code == 0:
        for signum in INTERRUPTING:
            signal.signal(signum, signal.SIG_IGN)
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        process.end_process(code)

    for signum in INTERRUPTING:
        signal.signal(signum, leave)


def exit_code_for(exc: BaseException) -> int:
    from modelrouter.errors import DataError, ModelError, OutputError, PoolError

    if isinstance(exc, DataError):
        return EXIT_DATA
    if isinstance(exc, OutputError):
        return EXIT_OUTPUT
    if isinstance(exc, ModelError | PoolError):
        return EXIT_MODEL
    return EXIT_INTERNAL


@contextmanager
def errors_to_exit(debug: bool, *, writes_output: bool = True) -> Iterator[None]:
    """Turn exceptions into one ``error:`` line and the contract's exit code.

    ``writes_output``: whether the command makes output files or tables, of which an
    interruption's line then says what became (``serve``, ``models``, ``inspect``: no)."""
    from modelrouter.errors import InvalidOptionError, ModelRouterError

    inflight.current().writes_output = writes_output
    try:
        yield
    except (typer.Exit, typer.TyperException):
        raise  # usage errors (exit 2, typer.BadParameter) keep Click's form
    except InvalidOptionError as exc:
        # Refused by the run before it read anything (an existing --to-table): exit 2.
        raise typer.BadParameter(exc.reason, param_hint=exc.option) from None
    except Interrupted as exc:
        _end_interrupted(exc.signum)
    except BrokenPipeError:
        # The reader of stdout went away (`modelrouter … -o - | head`): stop quietly, like
        # a process killed by SIGPIPE, and keep Python from complaining while it exits.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except ModelRouterError as exc:
        if _interrupting is not None:
            _end_interrupted(_interrupting, exc, debug)
        if debug:
            print(render.traceback_text(exc), file=sys.stderr)
        render.error(str(exc))
        raise Failed(exit_code_for(exc), str(exc)) from None
    except Exception as exc:
        if _interrupting is not None:
            _end_interrupted(_interrupting, exc, debug)
        message = f"internal error: {type(exc).__name__}: {_redacted(str(exc))}"
        if debug:
            print(render.traceback_text(exc), file=sys.stderr)
            render.error(message)
        else:
            render.error(f"{message} (rerun with --debug for the traceback)")
        raise Failed(EXIT_INTERNAL, message) from None


def _end_interrupted(signum: int, failure: BaseException | None = None, debug: bool = False) -> NoReturn:
    """The command was interrupted by ``signum``: temporaries gone, one line, exit 128 + signum.

    ``failure``: what the command failed with after the signal. The signal's exception can
    surface as another one — raised inside an extension module's initialisation it becomes
    ``ImportError: initialization failed``, inside a loader a model error — so any failure
    after an interrupting signal is that interruption, not a bug (exit 1) nor a bad model."""
    if failure is not None and debug:
        print(render.traceback_text(failure), file=sys.stderr)
    inflight.current().drop_temporaries()
    render.error(interrupted_message(signum))
    _report_interruption(128 + signum)
    hard_exit(128 + signum)


def _redacted(text: str) -> str:
    """``text`` with database passwords masked (a driver's unexpected error may quote a URL)."""
    from modelrouter.storage.tables import redact

    return redact(text)


def hard_exit(code: int) -> NoReturn:
    # Worker threads may still be inside a native predict call; the interpreter would join
    # them at exit. Clean-up is done (the temporary file is gone), so leave now.
    sys.stderr.flush()
    process.end_process(code)


@contextmanager
def warnings_to_stderr(quiet: bool, into: list[str] | None = None) -> Iterator[list[str]]:
    """Show each distinct warning once as a ``warning:`` line; yield the list of them.

    The list is filled under ``quiet`` too (nothing is printed then), so a run's warnings
    still reach its stats JSON (``into``: a list to fill, readable after the block too). A
    warning repeated with the same text (one per model
    instance, one per file) is shown and recorded once. A warning known to be false
    (:func:`modelrouter.known_warnings.is_known_false_warning`) is neither shown nor recorded:
    the hook is process-wide, so this covers every thread and whatever re-issues it.
    """
    recorded: list[str] = [] if into is None else into

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = str(message)
        if text in recorded or is_known_false_warning(message, category):
            return
        recorded.append(text)
        if not quiet:
            render.warning(text)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield recorded
