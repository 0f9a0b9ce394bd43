"""The run summary and pool stats in the Prometheus text exposition format.

For cron jobs scraped by node_exporter's textfile collector: the file is written to a
temporary name and renamed (the collector must never read half a file), every metric has
``HELP`` and ``TYPE`` lines, and everything describes the *last* run, so all are gauges.
A failed run still writes ``modelrouter_last_run_success 0`` and its exit code, which is
what an alert needs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

__all__ = ["POOL_GAUGES", "failure_metrics", "run_metrics"]

_SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("rows_in", "rows_in", "Rows read from the input in the last run."),
    ("rows_out", "rows_out", "Rows scored into the output in the last run (a failed run: none committed)."),
    ("rows_rejected", "rows_rejected", "Rows set aside by --on-error skip in the last run."),
    ("chunks", "chunks", "Chunks scored in the last run."),
    ("workers", "workers", "Scoring threads of the last run."),
    ("wall_seconds", "duration_seconds", "Wall-clock duration of the last run."),
    ("rows_per_second", "rows_per_second", "Output rows per second of the last run."),
)

POOL_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("size", "pool_size", "Model instances in the pool."),
    ("available", "pool_available", "Instances not lent out at the end of the run."),
    ("in_use", "pool_in_use", "Instances lent out at the end of the run."),
    ("borrows", "pool_borrows", "Instance acquisitions during the run."),
    ("waits", "pool_waits", "Acquisitions that had to wait for a free instance."),
    ("wait_total", "pool_wait_seconds", "Total seconds spent waiting for an instance."),
    ("wait_max", "pool_wait_max_seconds", "Longest wait for an instance, in seconds."),
    ("busy_time", "pool_busy_seconds", "Seconds instances spent lent out, summed over instances."),
    ("utilisation", "pool_utilisation_ratio", "busy time / (pool size × pool lifetime)."),
    ("chunks", "pool_chunks", "Frames scored through the pool."),
    ("rows", "pool_rows", "Rows scored through the pool."),
    ("errors", "pool_errors", "Borrows whose body raised."),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    full = f"modelrouter_{name}"
    lines = [f"# HELP {full} {help_text}", f"# TYPE {full} gauge"]
    lines += [f"{full}{labels} {_number(value)}" for labels, value in samples]
    return lines


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def run_metrics(report: Mapping[str, Any], now: float | None = None) -> str:
    """The exposition text for a successful run's ``RunSummary.as_dict()``."""
    summary = report["summary"]
    model = f'{{model_type="{_escape(str(summary["model_type"]))}"}}'
    lines: list[str] = []
    for key, name, help_text in _SUMMARY:
        lines += _gauge(name, help_text, [(model, summary[key])])
    for key, name, help_text in POOL_GAUGES:
        samples = [
            (f'{{model_type="{_escape(kind)}"}}', stats[key]) for kind, stats in report["pools"].items()
        ]
        lines += _gauge(name, help_text, samples)
    lines += _outcome(0, model, now)
    return "\n".join(lines) + "\n"


def failure_metrics(
    exit_code: int,
    model_type: str | None,
    now: float | None = None,
    *,
    counts: Mapping[str, float] | None = None,
) -> str:
    """The exposition text for a failed or interrupted run: success 0 and the exit code, and
    the summary gauges whose values the run knew (``counts``: ``rows_in``, ``rows_out``,
    ``rows_rejected``, … as in the stats JSON; rows scored but not committed)."""
    labels = f'{{model_type="{_escape(model_type)}"}}' if model_type else ""
    lines: list[str] = []
    for key, name, help_text in _SUMMARY:
        if counts is not None and key in counts:
            lines += _gauge(name, help_text, [(labels, counts[key])])
    lines += _outcome(exit_code, labels, now)
    return "\n".join(lines) + "\n"


def _outcome(exit_code: int, labels: str, now: float | None) -> list[str]:
    stamp = time.time() if now is None else now
    return [
        *_gauge("last_run_success", "1 if the last run succeeded, else 0.", [(labels, int(exit_code == 0))]),
        *_gauge("last_run_exit_code", "Exit code of the last run.", [(labels, exit_code)]),
        *_gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).", [(labels, stamp)]),
    ]
