"""Exit codes, the signal handler and the mapping from exceptions to one ``error:`` line.

CONTRACT section 5: 1 internal error (a bug), 2 usage (Click), 3 input data, 4 model or
config, 5 output, 128 + signal number when interrupted. Shared by every command.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

import typer

from cli import render

__all__ = [
    "EXIT_DATA",
    "EXIT_INTERNAL",
    "EXIT_MODEL",
    "EXIT_OUTPUT",
    "Interrupted",
    "errors_to_exit",
    "exit_code_for",
    "hard_exit",
    "on_signal",
    "warnings_to_stderr",
]

# -- exit codes (CONTRACT section 5) -----------------------------------------------------

EXIT_INTERNAL, EXIT_DATA, EXIT_MODEL, EXIT_OUTPUT = 1, 3, 4, 5


class Interrupted(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def on_signal(signum: int, frame: FrameType | None) -> None:
    # Only the first signal interrupts; a second one must not break the clean-up it started.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def exit_code_for(exc: BaseException) -> int:
    from router.errors import DataError, ModelError, OutputError, PoolError

    if isinstance(exc, DataError):
        return EXIT_DATA
    if isinstance(exc, OutputError):
        return EXIT_OUTPUT
    if isinstance(exc, ModelError | PoolError):
        return EXIT_MODEL
    return EXIT_INTERNAL


@contextmanager
def errors_to_exit(debug: bool) -> Iterator[None]:
    """Turn exceptions into one ``error:`` line and the contract's exit code."""
    from router.errors import ModelRouterError

    try:
        yield
    except typer.Exit:
        raise
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        render.error(f"interrupted by {name}; no output was written")
        hard_exit(128 + exc.signum)
    except ModelRouterError as exc:
        if debug:
            traceback.print_exc()
        render.error(str(exc))
        raise typer.Exit(exit_code_for(exc)) from None
    except Exception as exc:
        if debug:
            traceback.print_exc()
            render.error(f"internal error: {type(exc).__name__}: {exc}")
        else:
            render.error(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
            )
        raise typer.Exit(EXIT_INTERNAL) from None


def hard_exit(code: int) -> NoReturn:
    # Worker threads may still be inside a native predict call; the interpreter would join
    # them at exit. Clean-up is done (the temporary file is gone), so leave now.
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def warnings_to_stderr(quiet: bool) -> Iterator[None]:
    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        render.warning(str(message))

    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        else:
            warnings.showwarning = show
        yield
