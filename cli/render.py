"""Everything human-facing: errors, warnings, the progress bar, the stats and model tables.

The only module that imports rich (a ruff ``banned-api`` rule enforces it). stdout carries a
command's product only: here, the tables of the commands whose product is a table
(``models``, ``inspect``, ``compare``); everything else goes to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from modelrouter.batch.run import ProgressSink
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

# rich is imported inside the functions that draw: `modelrouter --help`, `--version` and every
# command that fails before drawing anything never pay for it (~0.1 s).

__all__ = [
    "error",
    "print_json",
    "product_stream",
    "progress",
    "stats_table",
    "stderr_console",
    "stdout_console",
    "warning",
]

_console: Console | None = None
_stdout_console: Console | None = None


def stderr_console() -> Console:
    """The process's stderr console (lazy singleton, like rich's ``get_console``).

    Off a terminal (cron mail, CI logs) it is wide and colourless, so nothing is truncated.
    """
    global _console
    if _console is None:
        _console = _new_console(sys.stderr, width_off_terminal=200)
    return _console


def stdout_console() -> Console:
    """The console for a command's product table (``models``, ``inspect``, ``compare``).

    Off a terminal (a pipe into grep, a file) lines are never wrapped, so a sha256 or a path
    stays on one line for the next tool in the pipe.
    """
    global _stdout_console
    if _stdout_console is None:
        _stdout_console = _new_console(product_stream(), width_off_terminal=1000)
    return _stdout_console


def product_stream() -> TextIO:
    """``sys.stdout``, for a command's product; :class:`OutputError` (exit 5) when the
    process was started without one (``>&-``): the product has nowhere to go, which is an
    output error like a full disk, never an internal one."""
    if sys.stdout is None:
        from modelrouter.errors import OutputError

        raise OutputError("<stdout>: closed (the process was started without a standard output)")
    return sys.stdout


def _new_console(stream: TextIO | None, width_off_terminal: int) -> Console:
    import os

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's own handler exits 1, which means a bug here: the reader of the pipe
            # left (`| head`), so stop as a process killed by SIGPIPE would (cli.exits).
            self.quiet = True
            raise BrokenPipeError

    if stream is None:  # stderr closed: messages have nowhere to go
        return _Console(file=open(os.devnull, "w"), quiet=True)
    tty = stream.isatty()
    return _Console(
        file=stream,
        width=None if tty else width_off_terminal,
        color_system="auto" if tty else None,
        highlight=False,
        soft_wrap=not tty,
    )


#: The most characters one error or warning message may print. A message quoting a library's
#: exception can carry a whole array (skl2onnx printed 225,000 characters); the head names
#: what failed and the tail the cause and the hint, so the middle is what gets cut.
MESSAGE_LIMIT = 1_000


def capped(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` cut to about ``limit`` characters, its head and tail kept."""
    text = message
    if len(text) <= limit:
        return text
    head, tail = (limit * 2) // 3, limit // 3
    cut = len(text) - head - tail
    return f"{text[:head]} … [{cut:,} characters cut] … {text[-tail:]}"


def error(message: str) -> None:
    """One plain ``error: …`` line (no markup, no wrapping of paths), capped in length."""
    print(f"error: {capped(message)}", file=sys.stderr, flush=True)


def warning(message: str) -> None:
    """One plain ``warning: …`` line, capped in length."""
    print(f"warning: {capped(message)}", file=sys.stderr, flush=True)


#: Lines one part of a ``--debug`` traceback (a frame, an exception's message) may print.
TRACEBACK_PART_LINES = 40


def traceback_text(exc: BaseException) -> str:
    """The traceback of ``exc`` (with its causes), every part capped in lines and width.

    A library exception whose message holds a large array would otherwise print thousands
    of lines (154,000 were seen): each part keeps its first and last lines.
    """
    import traceback

    parts = []
    for part in traceback.format_exception(exc):
        lines = part.splitlines()
        if len(lines) > TRACEBACK_PART_LINES:
            keep = TRACEBACK_PART_LINES // 2
            cut = len(lines) - keep - 5
            lines = [*lines[:keep], f"    … [{cut:,} lines cut] …", *lines[-5:]]
        parts.append("\n".join(line if len(line) <= 400 else line[:400] + " …" for line in lines))
    return "\n".join(parts)


class _NullProgress:
    def advance(self, rows: int) -> None:
        pass


class _RichProgress:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, rows: int) -> None:
        self._progress.advance(self._task, rows)

    def position(self, done: int, total: int) -> None:
        """The input's bytes read of its size (CSV): shown as a percentage and an ETA."""
        self._progress.update(self._task, fraction=min(1.0, done / total) if total else None)


@contextmanager
def progress(enabled: bool, description: str, total: int | None) -> Iterator[ProgressSink]:
    """A rich progress bar on stderr when ``enabled``; otherwise a sink that does nothing."""
    if not enabled:
        yield _NullProgress()
        return
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
    from rich.text import Text

    class RowsColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            done = int(task.completed)
            shown = f"/{int(task.total):,}" if task.total is not None else ""
            return Text(f"{done:,}{shown} rows")

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} rows/s")

    class FractionColumn(ProgressColumn):
        """A CSV's share of bytes read and the time left at the pace so far."""

        def render(self, task: Task) -> Text:
            fraction = task.fields.get("fraction")
            if fraction is None or task.total is not None:
                return Text("")
            elapsed = task.finished_time if task.finished else task.elapsed
            if fraction >= 1.0 or task.finished:
                return Text(f"{min(fraction, 1.0):.0%}")
            if not fraction or not elapsed:
                return Text(f"{fraction:.0%}")
            left = int(elapsed * (1.0 - fraction) / fraction)
            return Text(f"{fraction:.0%} ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}")

    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [FractionColumn(), RowsColumn(), RateColumn(), TimeElapsedColumn()]
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
    from rich.table import Table

    console = stderr_console()
    if pools:
        table = Table(title=title, title_justify="left", show_lines=False)
        table.add_column("", no_wrap=True)
        for name in pools:
            table.add_column(name, justify="right", no_wrap=True)
        for label, key, spec in _STAT_ROWS:
            table.add_row(label, *(format(stats[key], spec) for stats in pools.values()))
        console.print(table)
    skipped = summary.get("files_skipped", 0) if summary is not None else 0
    if summary is not None and "files" in summary and summary["files"] == 0 and skipped:
        console.print(
            f"{_count(skipped, 'file')} skipped (output made from this very input), nothing to do "
            f"→ {summary['output']}",
            markup=False,
        )
        return
    if summary is not None:
        files = f"{_count(summary['files'], 'file')}, " if "files" in summary else ""
        if skipped:
            files += f"{_count(skipped, 'file')} skipped, "
        stale = summary.get("files_stale", 0)
        if stale:
            files += f"{_count(stale, 'stale output')} rescored, "
        console.print(
            f"{summary['rows_out']:,} rows scored in {summary['wall_seconds']:.2f} s "
            f"({summary['rows_per_second']:,.0f} rows/s, {files}{_count(summary['chunks'], 'chunk')}, "
            f"{_count(summary['workers'], 'worker')}) → {summary['output']}",
            markup=False,
        )
        if summary.get("rejects"):
            console.print(
                f"{summary['rows_rejected']:,} rows rejected → {summary['rejects']}",
                markup=False,
            )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def models_table(rows: Sequence[Mapping[str, str]]) -> None:
    """The ``modelrouter models`` table on stdout: one block per configured model type.

    Facts run down the rows, without borders, so that a sha256 (64 characters) and the field
    names fit an 80-column terminal; paths and digests are never folded inside (a long path
    runs past the edge rather than breaking, so it can still be copied or grepped).
    """
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    for row in rows:
        table = Table(
            title=row.get("type", ""), title_justify="left", box=None, show_header=False, pad_edge=False
        )
        table.add_column("field", no_wrap=True)
        table.add_column("value", overflow="fold")
        for field, value in row.items():
            if field == "type":
                continue
            unbreakable = field in _UNBREAKABLE
            table.add_row(
                field, Text(value, no_wrap=unbreakable, overflow="ignore" if unbreakable else "fold")
            )
        console.print(table)
        console.print()


#: Facts that must never be broken inside: digests and paths are copied and grepped.
_UNBREAKABLE = frozenset({"path", "sha256", "model", "file"})


def _fact(field: str, value: str) -> Text:
    """A table value: folded when too wide, except digests and paths, which run past the edge."""
    from rich.text import Text

    if field in _UNBREAKABLE:
        return Text(value, no_wrap=True, overflow="ignore")
    return Text(value, overflow="fold")


# -- model tooling: convert, compare, inspect ---------------------------------------------


def note(message: str) -> None:
    """One plain ``note: …`` line (information that is neither a warning nor an error)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def details_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """A two-column field/value table on stdout (``modelrouter inspect``'s product).

    Values fold, never truncate; paths and digests are never broken inside."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column("field", no_wrap=True, style="bold")
    table.add_column("value", overflow="fold")
    for field, value in rows:
        unbreakable = field in _UNBREAKABLE
        table.add_row(
            Text(field), Text(value, no_wrap=unbreakable, overflow="ignore" if unbreakable else "fold")
        )
    stdout_console().print(table)


def _diff(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def _agreement(report: Mapping[str, Any]) -> str:
    rows, agreeing = report["rows"], report["agreeing_rows"]
    share = agreeing / rows if rows else 1.0
    # Never round a disagreement up to 100.00%.
    text = f"{share:.2%}" if agreeing == rows or share < 0.99995 else "99.99%"
    return f"{text} ({agreeing:,}/{rows:,})"


def parity_tables(
    reports: Sequence[Mapping[str, Any]], *, shown_rows: int = 10, product: bool = False
) -> None:
    """Parity of models against a common reference (``convert`` and ``compare``).

    ``reports`` are :meth:`modelrouter.tools.parity.ParityReport.as_dict` results. Prints a summary table
    (one row per compared model), the per-class probability differences (one row per class,
    in the reference model's class order) and the first ``shown_rows`` disagreeing rows of each.
    ``product``: the tables are the command's product (``compare``) and go to stdout; for
    ``convert`` (whose product is a file) they are a report on stderr.
    """
    if not reports:
        return
    console = stdout_console() if product else stderr_console()
    console.print(_parity_summary(reports))
    with_classes = [r for r in reports if r["per_class"]]
    if with_classes:
        console.print(_per_class_differences(with_classes))
    disagreeing = [r for r in reports if r["disagreeing_rows"]]
    if disagreeing:
        console.print(_disagreeing_rows(disagreeing, shown_rows))
        for r in disagreeing:
            hidden = r["disagreeing_rows"] - min(shown_rows, len(r["disagreements"]))
            if hidden > 0:
                console.print(
                    f"{r['other']}: {hidden:,} more disagreeing rows not shown (--json lists up to "
                    f"{len(r['disagreements'])})",
                    markup=False,
                )


def _parity_summary(reports: Sequence[Mapping[str, Any]]) -> Table:
    """One row per compared model: agreement, differences and the verdict."""
    from rich.table import Table
    from rich.text import Text

    summary = Table(title="parity", title_justify="left")
    for header in ("model", "vs", "rows", "label agreement", "compared", "max |Δ|", "mean |Δ|", "ok?"):
        summary.add_column(header, no_wrap=True, justify="left" if header in ("model", "vs") else "right")
    for r in reports:
        summary.add_row(
            *map(
                Text,
                (
                    r["other"],
                    r["reference"],
                    f"{r['rows']:,}",
                    _agreement(r),
                    r["compared"],
                    _diff(r["max_abs_diff"]),
                    _diff(r["mean_abs_diff"]),
                    "yes" if r["passed"] else "NO",
                ),
            )
        )
    return summary


def _per_class_differences(with_classes: Sequence[Mapping[str, Any]]) -> Table:
    """One row per class (the first report's class order), a max and a mean column per model."""
    from rich.table import Table
    from rich.text import Text

    per_class = Table(
        title=f"probability |Δ| per class (vs {with_classes[0]['reference']})", title_justify="left"
    )
    per_class.add_column("class", no_wrap=True)
    for r in with_classes:
        per_class.add_column(f"{r['other']} max", justify="right", no_wrap=True)
        per_class.add_column(f"{r['other']} mean", justify="right", no_wrap=True)
    for j, entry in enumerate(with_classes[0]["per_class"]):
        cells = [Text(str(entry["class"]))]
        for r in with_classes:
            figures = r["per_class"][j]
            cells += [Text(_diff(figures["max_abs_diff"])), Text(_diff(figures["mean_abs_diff"]))]
        per_class.add_row(*cells)
    return per_class


def _disagreeing_rows(disagreeing: Sequence[Mapping[str, Any]], shown_rows: int) -> Table:
    """The first ``shown_rows`` disagreeing rows of each model, 1-based."""
    from rich.table import Table
    from rich.text import Text

    rows = Table(title="rows that disagree (1-based data rows)", title_justify="left")
    for header in ("model", "row", "reference label", "its label", "max |Δ|"):
        rows.add_column(header, no_wrap=True)
    for r in disagreeing:
        for d in r["disagreements"][:shown_rows]:
            rows.add_row(
                *map(
                    Text,
                    (
                        r["other"],
                        str(d["row"]),
                        str(d["reference"]),
                        str(d["other"]),
                        _diff(d["max_abs_diff"]),
                    ),
                )
            )
    return rows


def print_json(payload: dict[str, Any]) -> None:
    """A command's JSON product on stdout (``--json``), flushed (a closed pipe is the caller's)."""
    import json

    stream = product_stream()
    json.dump(payload, stream, indent=2)
    stream.write("\n")
    stream.flush()
