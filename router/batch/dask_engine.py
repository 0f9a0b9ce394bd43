"""``--engine dask``: one task per input file on a Dask cluster, same results as locally.

Workers never receive live models (onnxruntime sessions cannot be pickled): a
:class:`RouterPlugin` carries the run's options — config path, model path, sha256 pin — and
each worker process loads its own pool once, sized to its thread count, with one native
thread per instance. Each task streams one file in chunks on the worker and writes that
file's output atomically, exactly as the local engine does (the same ``score_file``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin
from modelrouter import DataError, ModelRouterError, get_router
from modelrouter.batch.datasets import DatasetPlan, DatasetSummary, begin, finish, per_file_options
from modelrouter.batch.run import ProgressSink, RunOptions, prepare_pool, score_file
from modelrouter.errors import InvalidOptionError, OutputError
from modelrouter.locations import model_location
from modelrouter.storage.object_store import Location

__all__ = ["SCHEDULER_CONNECT_TIMEOUT", "RouterPlugin", "checked_scheduler", "score_dataset_on_dask"]

#: Seconds to reach a remote scheduler before the run fails naming it (Dask's default, 30 s,
#: made an unreachable address look like a hang that then ended in an internal error).
SCHEDULER_CONNECT_TIMEOUT = 5.0


def checked_scheduler(address: str) -> str:
    """``address`` when it is a Dask scheduler address (``[PROTOCOL://]HOST:PORT``), else
    :class:`InvalidOptionError` naming it and the expected form (a usage error: exit 2)."""
    from distributed.comm.registry import backends

    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in backends:
        known = ", ".join(sorted(backends))
        raise InvalidOptionError(
            "--scheduler", f"{address!r} has an unknown protocol {scheme!r} (known: {known})"
        )
    if scheme == "inproc":
        return address
    host, colon, port = rest.rpartition(":")
    if (
        not colon
        or not host
        or any(c.isspace() for c in rest)
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        raise InvalidOptionError(
            "--scheduler",
            f"{address!r} is not a scheduler address: expected [tcp://]HOST:PORT, like tcp://127.0.0.1:8786",
        )
    return address


#: How many pools this process has loaded (the tests check "once per worker").
LOADS: dict[str, int] = {}


class RouterPlugin(WorkerPlugin):
    """A Dask ``WorkerPlugin`` that builds the worker's router from the run's options."""

    name = "modelrouter"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def setup(self, worker: Any) -> None:
        from threadpoolctl import threadpool_limits

        options = _options_from_dict(self.options)
        threads = worker.state.nthreads
        # One instance per worker thread, one native thread each: threads × 1 ≤ the cores
        # this worker was given. BLAS/OpenMP pools are process-wide: set them once here.
        threadpool_limits(limits=1)
        prepare_pool(replace(options, pool_size=threads), threads=1)
        key = str(options.model_type or options.model_path or "default")
        LOADS[key] = LOADS.get(key, 0) + 1

    def teardown(self, worker: Any) -> None:
        from modelrouter import reset_router
        from modelrouter.storage import inflight

        # A worker closed mid-task (SIGTERM) removes the temporary files (and uploads) its
        # tasks were writing; the task runs again elsewhere and writes its own.
        inflight.current().drop_temporaries()
        reset_router()


def _options_to_dict(options: RunOptions) -> dict[str, Any]:
    raw = asdict(options)
    for key in ("config", "model_path"):
        if raw[key] is not None:
            raw[key] = str(model_location(raw[key]))  # a URI stays as it is
    raw["keep"] = list(options.keep)
    raw["model_type"] = None if options.model_type is None else str(options.model_type)
    return raw


def _options_from_dict(raw: dict[str, Any]) -> RunOptions:
    from modelrouter import ModelType

    values = dict(raw)
    values["config"] = None if raw["config"] is None else Path(raw["config"])
    values["model_path"] = None if raw["model_path"] is None else model_location(raw["model_path"])
    values["model_type"] = None if raw["model_type"] is None else ModelType(raw["model_type"])
    values["keep"] = tuple(raw["keep"])
    return RunOptions(**values)


def score_file_on_worker(raw: dict[str, Any]) -> dict[str, Any]:
    """The task: score one file with this worker's pool; return its summary."""
    options = _options_from_dict(raw)
    pool = get_router().pool(options.model_type)
    summary: dict[str, Any] = score_file(options, pool=pool, final=False, checked=True).as_dict()["summary"]
    return summary


def worker_report() -> dict[str, Any]:
    """Run on each worker at the end: its pool stats and how often it loaded a pool."""
    return {
        "pid": os.getpid(),
        "loads": dict(LOADS),
        "pools": {str(k): v.as_dict() for k, v in get_router().stats().items()},
    }


def _client(cluster: Any, scheduler: str | None) -> Any:
    """A client of the local ``cluster``, or of the remote ``scheduler`` reached within
    :data:`SCHEDULER_CONNECT_TIMEOUT` (:class:`OutputError` naming it otherwise)."""
    from distributed import Client

    if scheduler is None:
        return Client(cluster)
    try:
        return Client(checked_scheduler(scheduler), timeout=SCHEDULER_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputError(
            f"{scheduler}: cannot reach the Dask scheduler within {SCHEDULER_CONNECT_TIMEOUT:g} s "
            f"({first}); nothing was scored"
        ) from None


def _local_cluster(factory: Any, processes: int, threads: int) -> Any:
    """A local cluster of ``processes`` worker processes, or :class:`OutputError` naming why it
    did not start (a worker process killed or out of memory while starting): the run stops
    before anything is scored, never with an internal error."""
    try:
        return factory(
            n_workers=processes,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # task errors are reported once, by us
        )
    except Exception as exc:  # distributed raises RuntimeError, TimeoutError, OSError, …
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputError(
            f"the local Dask cluster of {processes} worker process(es) did not start "
            f"({type(exc).__name__}: {first}); nothing was scored"
        ) from None


def score_dataset_on_dask(
    options: RunOptions,
    plan: DatasetPlan,
    resume: bool,
    scheduler: str | None,
    workers: int | None,
    progress: ProgressSink | None,
    side_files: Callable[[dict[str, Any]], Sequence[tuple[Location, str]]] | None = None,
    *,
    summary: DatasetSummary | None = None,
) -> DatasetSummary:
    """Score every file of ``plan`` on a cluster (``scheduler``) or a local one.

    A failed task raises its error (the router's exception types travel back intact), naming
    the file; outputs already completed stay, ``_SUCCESS`` is not written. ``options.keep_going``
    and ``summary`` as for :func:`~modelrouter.batch.datasets.score_dataset_locally`.
    """
    from distributed import LocalCluster

    started = time.perf_counter()
    if summary is None:
        summary = DatasetSummary(input=options.input, output=str(plan.out_dir), engine="dask")
    todo, summary.skipped, summary.stale = begin(plan, resume)
    if not todo:  # --resume with every output in place: no cluster, no models
        summary.workers = 0
        summary.chunk_size = options.chunk_size
        summary.wall_seconds = time.perf_counter() - started
        finish(plan, side_files(summary.as_dict()) if side_files is not None else ())
        return summary
    # Fail fast on the client for model/config problems, before any cluster starts.
    prepare_pool(replace(options, pool_size=1))
    cores = os.cpu_count() or 1
    processes = workers or max(1, min(cores, 2))
    cluster = None
    if scheduler is None:
        cluster = _local_cluster(LocalCluster, processes, max(1, cores // processes))
    try:
        with _client(cluster, scheduler) as client:
            raw = _options_to_dict(replace(options, workers=1, limit_native_threads=False))
            client.register_plugin(RouterPlugin(raw), name=RouterPlugin.name)
            summary.workers = len(client.scheduler_info()["workers"])
            summary.chunk_size = options.chunk_size
            futures = {
                client.submit(score_file_on_worker, _options_to_dict(per_file_options(
                    replace(options, workers=1, limit_native_threads=False), source, target
                )), key=f"modelrouter-{i}-{source.name}", pure=False): source
                for i, (source, target) in enumerate(todo)
            }  # fmt: skip
            results: dict[Location, dict[str, Any]] = {}
            try:
                _collect(futures, results, options, summary, progress)
            except BaseException:
                for pending in futures:
                    pending.cancel()
                raise
            finally:  # the files finished (before a failure, too) count, in input order
                for source, _ in todo:
                    if source in results:
                        summary.add(results[source])
                summary.wall_seconds = time.perf_counter() - started
            reports = client.run(worker_report)
            summary.worker_pools = {address: report["pools"] for address, report in reports.items()}
            summary.worker_loads = {address: report["loads"] for address, report in reports.items()}
            summary.pools = dict(_total_pools(reports))
    finally:
        if cluster is not None:
            cluster.close()
    summary.wall_seconds = time.perf_counter() - started
    summary.check_failures()
    finish(plan, side_files(summary.as_dict()) if side_files is not None else ())
    return summary


def _collect(
    futures: dict[Any, Location],
    results: dict[Location, dict[str, Any]],
    options: RunOptions,
    summary: DatasetSummary,
    progress: ProgressSink | None,
) -> None:
    """Each task's summary into ``results`` as it completes; a failed task raises its error
    (a data error is recorded instead under ``options.keep_going``)."""
    from distributed import as_completed

    for future in as_completed(futures):
        source = futures[future]
        try:
            results[source] = future.result()
        except DataError as exc:
            if not options.keep_going:
                raise
            summary.fail(source, exc)
            continue
        except ModelRouterError:
            raise
        except Exception as exc:
            raise RuntimeError(f"{source}: task failed on the cluster: {exc}") from exc
        if progress is not None:
            progress.advance(int(results[source]["rows_in"]))


def _total_pools(reports: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Sum the per-worker pool stats into one row per model type."""
    totals: dict[str, dict[str, Any]] = {}
    capacity: dict[str, float] = {}
    for report in reports.values():
        for kind, stats in report["pools"].items():
            total = totals.setdefault(kind, dict.fromkeys(stats, 0))
            capacity[kind] = capacity.get(kind, 0.0) + stats["size"] * stats["wall_time"]
            for key, value in stats.items():
                if key in ("wait_max", "wall_time"):
                    total[key] = max(total[key], value)
                elif key != "closed":
                    total[key] += value
    for kind, total in totals.items():
        total["wait_mean"] = total["wait_total"] / total["borrows"] if total["borrows"] else 0.0
        total["utilisation"] = min(1.0, total["busy_time"] / capacity[kind]) if capacity[kind] else 0.0
    return totals
