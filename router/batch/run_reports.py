"""What a run records beside its outputs: the stats JSON and the Prometheus metrics.

A run that finishes commits them with its outputs (:func:`side_files`); one that fails or is
interrupted still writes them (:func:`failure_reports`), with the keys and labels of a
success plus ``error`` and ``exit_code``, so an alert on the labelled series fires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelrouter.batch.options import RunOptions
    from modelrouter.batch.summary import RunSummary
    from modelrouter.storage.object_store import Location

__all__ = ["failure_reports", "known_counts", "resolved_model_type", "side_files"]

#: The files a report is written to, each with its text.
ReportFiles = list[tuple["Location", str]]


def known_counts(summary: RunSummary) -> dict[str, Any]:
    """What a run that did not finish knows for sure: the rows and chunks scored so far
    (none of them committed), where the model came from, the rejects file when it was
    committed (a run over its error budget) and the pools' figures when they were taken
    (under ``"pools"``, for the report's own ``pools``)."""
    known: dict[str, Any] = {
        "rows_in": summary.rows_in,
        "rows_out": summary.rows_out,
        "rows_rejected": summary.rows_rejected,
        "chunks": summary.chunks,
        "model_type": str(summary.model_type),
        "model_path": summary.model_path,
    }
    if summary.rejects_committed:
        known["rejects"] = summary.rejects
    if summary.pools:
        known["pools"] = {kind: stats.as_dict() for kind, stats in summary.pools.items()}
    return known


def resolved_model_type(options: RunOptions) -> str:
    """The model type the run used or would have used (-t, -m's suffix, the config's default),
    for the labels of a failed run's metrics; ``unknown`` when even that cannot be told."""
    if options.model_type is not None:
        return str(options.model_type)
    try:
        from modelrouter import ModelType, load_settings

        if options.model_path is not None:
            return str(ModelType.from_path(options.model_path))
        default = load_settings(options.config).default_model_type
    except Exception:  # the run's own error says what is wrong with the config
        return "unknown"
    return "unknown" if default is None else str(default)


def side_files(options: RunOptions, recorded_warnings: list[str]) -> Callable[[dict[str, Any]], ReportFiles]:
    """Given a finished run's report, the stats JSON and metrics to commit together with the
    run's outputs (a failure to write them fails the whole run)."""
    from modelrouter.storage import object_store as storage

    def files_for(report: dict[str, Any]) -> ReportFiles:
        files: ReportFiles = []
        # Warnings are part of what happened (also under -q, where stderr stays silent).
        report["warnings"] = list(recorded_warnings)
        if not report["summary"].get("model_type"):
            # A run that loaded no model (--resume with every file done, an --allow-empty
            # day) still has the type it would have used: the metrics keep their label.
            report["summary"]["model_type"] = resolved_model_type(options)
        if options.stats_json is not None:
            files.append((storage.as_location(options.stats_json), json.dumps(report, indent=2) + "\n"))
        if options.metrics_textfile is not None:
            from modelrouter.batch.prometheus import run_metrics

            files.append((storage.as_location(options.metrics_textfile), run_metrics(report)))
        return files

    return files_for


def failure_reports(
    options: RunOptions,
    code: int,
    message: str,
    wall: float,
    recorded_warnings: list[str],
    finished: dict[str, Any] | None = None,
    known: dict[str, Any] | None = None,
) -> ReportFiles:
    """The stats JSON and metrics of a run that failed with exit ``code`` and ``message``
    after ``wall`` seconds: the keys of a success, each unknown (null) unless this failure
    knows it (``known``: a single file's counts so far; ``finished``: a dataset's report of
    the files finished) — never a made-up count. The file the run could not write (named
    in ``message``) is left out: no second attempt."""
    from modelrouter import ModelType
    from modelrouter.batch.prometheus import failure_metrics
    from modelrouter.batch.summary import RunSummary
    from modelrouter.storage import object_store as storage
    from modelrouter.storage.tables import redact  # a database URL's password is never stored

    blank = RunSummary(input="", output="", model_type=ModelType.SKLEARN, model_path="")  # keys only
    summary: dict[str, Any] = dict.fromkeys(blank.as_dict()["summary"])
    summary.update(
        input=redact(options.input),
        output=None if options.output is None else redact(options.output),
        model_type=resolved_model_type(options),
        model_path=None if options.model_path is None else str(options.model_path),
        workers=options.workers,
        chunk_size=options.chunk_size,
        wall_seconds=wall,
        error=message,
        exit_code=code,
    )
    known = dict(known or {})
    pools = known.pop("pools", {})
    summary.update(known)
    model_type = str(summary["model_type"])
    report: dict[str, Any] = {"summary": summary, "pools": pools, "warnings": list(recorded_warnings)}
    if finished is not None:
        # A dataset: the files finished before the failure (or beside --keep-going's failed
        # ones) are counted; the run's own wall time and error stay.
        counts = ["output", "engine", "files", "files_skipped", "files_stale", "files_failed"]
        counts += ["rows_in", "rows_out", "rows_rejected", "chunks"]
        summary.update({key: finished["summary"][key] for key in counts})
        report.update(files=finished["files"], failed=finished["failed"], pools=finished["pools"])
    writes: ReportFiles = []
    if options.stats_json is not None:
        writes.append((storage.as_location(options.stats_json), json.dumps(report, indent=2) + "\n"))
    if options.metrics_textfile is not None:
        gauges = {k: summary[k] for k in ("rows_in", "rows_out", "rows_rejected") if summary[k] is not None}
        metrics = failure_metrics(code, model_type, counts=gauges)
        writes.append((storage.as_location(options.metrics_textfile), metrics))
    return [(path, text) for path, text in writes if str(path) not in message]
