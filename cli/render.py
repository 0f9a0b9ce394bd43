"""Everything human-facing on stderr: errors, warnings, the progress bar, the stats table.

The only module that imports rich (a ruff ``banned-api`` rule enforces it). stdout is never
touched here: it carries data only.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

__all__ = ["ProgressSink", "error", "progress", "stats_table", "stderr_console", "warning"]

_console: Console | None = None


def stderr_console() -> Console:
    """The process's stderr console (lazy singleton, like rich's ``get_console``).

    Off a terminal (cron mail, CI logs) it is wide and colourless, so nothing is truncated.
    """
    global _console
    if _console is None:
        tty = sys.stderr.isatty()
        _console = Console(
            file=sys.stderr,
            width=None if tty else 200,
            color_system="auto" if tty else None,
            highlight=False,
            soft_wrap=not tty,
        )
    return _console


def error(message: str) -> None:
    """One plain ``error: …`` line (no markup, no wrapping of paths)."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def warning(message: str) -> None:
    """One plain ``warning: …`` line."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class ProgressSink(Protocol):
    """What the scoring loop reports progress to."""

    def advance(self, rows: int) -> None: ...


class _NullProgress:
    def advance(self, rows: int) -> None:
        pass


class _RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        done = int(task.completed)
        total = f"/{int(task.total):,}" if task.total is not None else ""
        return Text(f"{done:,}{total} rows")


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s")


class _RichProgress:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, rows: int) -> None:
        self._progress.advance(self._task, rows)


@contextmanager
def progress(enabled: bool, description: str, total: int | None) -> Iterator[ProgressSink]:
    """A rich progress bar on stderr when ``enabled``; otherwise a sink that does nothing."""
    if not enabled:
        yield _NullProgress()
        return
    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [_RowsColumn(), _RateColumn(), TimeElapsedColumn()]
    if total is not None:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=stderr_console(), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield _RichProgress(bar, task)


_STAT_ROWS: Sequence[tuple[str, str, str]] = (
    ("pool size", "size", "d"),
    ("available", "available", "d"),
    ("in use", "in_use", "d"),
    ("borrows", "borrows", "d"),
    ("waits", "waits", "d"),
    ("wait total (s)", "wait_total", ".4f"),
    ("wait mean (s)", "wait_mean", ".4f"),
    ("wait max (s)", "wait_max", ".4f"),
    ("busy time (s)", "busy_time", ".3f"),
    ("utilisation", "utilisation", ".1%"),
    ("chunks", "chunks", "d"),
    ("rows", "rows", ",d"),
    ("errors", "errors", "d"),
)


def stats_table(
    pools: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Any] | None = None,
    title: str = "pool stats",
) -> None:
    """Print the pool-stats table (one column per pool, one row per figure) and a summary line.

    Figures run down the rows so the table stays narrow and no header is ever truncated.
    """
    console = stderr_console()
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("", no_wrap=True)
    for name in pools:
        table.add_column(name, justify="right", no_wrap=True)
    for label, key, spec in _STAT_ROWS:
        table.add_row(label, *(format(stats[key], spec) for stats in pools.values()))
    console.print(table)
    if summary is not None:
        console.print(
            f"{summary['rows_out']:,} rows scored in {summary['wall_seconds']:.2f} s "
            f"({summary['rows_per_second']:,.0f} rows/s, {summary['chunks']} chunks, "
            f"{summary['workers']} workers) → {summary['output']}",
            markup=False,
        )
        if summary.get("rejects"):
            console.print(
                f"{summary['rows_rejected']:,} rows rejected → {summary['rejects']}",
                markup=False,
            )


def models_table(rows: Sequence[Mapping[str, str]]) -> None:
    """The ``modelrouter models`` table: one row per configured model type."""
    console = stderr_console()
    table = Table(title="configured models", title_justify="left", show_lines=True)
    for column in rows[0] if rows else ("type",):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
