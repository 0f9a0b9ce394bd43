"""``modelrouter serve --processes N``: N processes serve one port (docs/serving.md, "Several
processes").

One process serves at most about one core's worth of Python: the event loop, body decoding
and the model's Python parts take turns at the interpreter's lock. With N processes the
service uses N interpreters. This process (the supervisor) serves nothing itself:

1. It has the pools loaded once, exactly as one process would load them, by a short-lived
   child process (:func:`check_pools`), so a bad config or model fails here with its own
   error and exit code, and its warnings are shown once. The child, not this process, pays
   for the models and their libraries: this process keeps only its own imports (about
   105 MB, against about 290 MB when it loaded the shipped models itself).
2. It binds the port, and starts N worker processes (``spawn``: a fresh interpreter, none of
   this process's threads or native libraries' state), which share the listening socket. Each
   loads its own pools (``--pool-size`` instances each) and serves with
   :func:`~modelrouter.serve.server.run_service`, as a single process does. The kernel hands
   each new connection to one of them.
3. Once every worker is serving, it announces the "listening on" line.
4. SIGTERM or SIGINT: it passes a SIGTERM to every worker, each of which stops as a single
   process does (requests already sent are answered), and returns once all have exited.

A worker that ends while the service is not stopping (a crash, an out-of-memory kill) is
replaced and the supervisor says so on the ``note`` line; the port never stops being served
by the others. Workers live in their own process group, so a terminal's Ctrl-C reaches the
supervisor alone (it stops them gracefully, once); a worker whose supervisor is gone (killed
with SIGKILL) stops itself.

``/pool/stats`` and ``/healthz`` describe the worker that answered, named in the
``X-Modelrouter-Process`` header (``"2/4"``). ``/metrics`` is the whole service's: the workers
write their metrics to a temporary folder of the supervisor's (prometheus_client's
multiprocess mode, see :mod:`~modelrouter.serve.metrics_endpoint`), removed when it ends.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import pickle
import signal
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from modelrouter.errors import PoolError
from modelrouter.limits import MAX_SERVE_PROCESSES
from modelrouter.serve.asgi import ServeConfig, load_pools
from modelrouter.serve.server import STOP_SIGNALS, PoolsSummary, Stop

#: The environment variable that puts prometheus_client in its multiprocess mode.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

__all__ = ["NOT_SERVING", "WorkerError", "serve_processes"]

#: Seconds before a worker that died within this long of serving is replaced.
RESTART_PAUSE = 5.0

#: A worker's connection count while it is not serving (loading, or gone): no other worker
#: leaves a connection to it.
NOT_SERVING = 2**31 - 1


class WorkerError(PoolError):
    """No worker process could start serving, or none is left (after the check of the pools
    succeeded: the model file changed meanwhile, memory ran out…), or the process checking
    the pools died. Exit code 4."""


def serve_processes(
    config: ServeConfig,
    host: str,
    port: int,
    processes: int,
    *,
    announce: Callable[[str], None],
    note: Callable[[str], None] | None = None,
) -> Stop | None:
    """Serve ``host:port`` from ``processes`` worker processes (module docstring); arguments
    and result as :func:`~modelrouter.serve.server.serve`."""
    from modelrouter.serve.server import _bind, listening_line, stopped_line

    if not 1 <= processes <= MAX_SERVE_PROCESSES:
        from modelrouter.errors import InvalidOptionError

        raise InvalidOptionError("--processes", f"must be 1 to {MAX_SERVE_PROCESSES} (got {processes})")
    pools = check_pools(config)  # raises as a single process would
    listener = _bind(host, port)
    line = listening_line(host, listener, pools, processes)
    with listener, contextlib.ExitStack() as stack:
        metrics = _metrics_folder(stack)
        if metrics is None:
            (note or announce)(
                "no folder could be created for the processes' shared metrics (the temporary "
                "folder and /dev/shm are not writable): /metrics describes the process that answers"
            )
        supervisor = _Supervisor(config, listener, processes, note or announce, metrics)
        stopped = supervisor.run(lambda: announce(line))
    if stopped is None:
        return None
    (note or announce)(stopped_line(stopped, forced=supervisor.forced))
    return Stop(stopped, supervisor.forced)


class _Worker:
    __slots__ = ("conn", "failed", "index", "process", "ready", "serving_since")

    def __init__(self, index: int, process: BaseProcess, conn: Connection) -> None:
        self.index = index
        self.process = process
        self.conn: Connection | None = conn  # None once the worker's end has closed
        self.ready = False
        self.failed = False  # it reported an error instead of loading
        self.serving_since = 0.0  # monotonic time of its "ready"


class _Supervisor:
    def __init__(
        self,
        config: ServeConfig,
        listener: socket.socket,
        count: int,
        note: Callable[[str], None],
        metrics: str | None,
    ) -> None:
        self._config = config
        self._metrics = metrics  # the folder where the workers write their metrics
        self._listener = listener
        self._count = count
        self._note = note
        self._context = multiprocessing.get_context("spawn")
        # Open connections per worker (server.Balance): written by each, read by all.
        try:
            self._counts = self._context.RawArray("i", count)
        except OSError as exc:  # neither /dev/shm nor the temporary folder is writable
            raise WorkerError(
                f"the serving processes need shared memory, in /dev/shm or the temporary folder: {exc}"
            ) from None
        self._workers: dict[int, _Worker] = {}
        self._restarts: dict[int, float] = {}  # index -> when to start its replacement
        self._stops: list[int] = []
        self._serving = False  # every worker was told to serve (then a replacement is, once ready)
        self.forced = False  # a second SIGINT was passed on: the workers cut their requests

    def run(self, on_ready: Callable[[], None]) -> int | None:
        """Start the workers, serve until a stop signal, return it. Until every worker has
        loaded, a signal interrupts the command as it interrupts a single process's loading
        (the CLI's handlers are still in place)."""
        previous: dict[int, Any] = {}
        try:
            for index in range(self._count):
                self._start(index)
            while self._workers or self._restarts:
                if not self._serving and all(w.ready for w in self._workers.values()):
                    # The CLI's signal watchdog (cli/exits.py) must not turn a graceful stop
                    # into an exit: from here on a stop signal stops the workers gracefully.
                    signal.set_wakeup_fd(-1)
                    previous = {signum: signal.signal(signum, self._stop) for signum in STOP_SIGNALS}
                    # All loaded: they start accepting together, so the first connections are
                    # not all taken by the worker that happened to load first.
                    self._serving = True
                    for worker in self._workers.values():
                        self._go(worker)
                    on_ready()
                self._wait_once()
            return self._stops[0] if self._stops else None
        except BaseException:
            self._terminate_all()
            raise
        finally:
            if self._stops:
                # Stopped: more stop signals (a hammered Ctrl-C) have nothing left to stop,
                # and the CLI's handlers would raise them into the command's last steps
                # (removing the metrics folder, exiting): noted and dropped, as by one process.
                for signum in previous:
                    signal.signal(signum, _dropped)
            else:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    def _start(self, index: int) -> None:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(self._config, self._listener, index, self._count, self._counts, child_end, self._metrics),
            name=f"modelrouter-serve-{index + 1}",
            daemon=False,
        )
        self._counts[index] = NOT_SERVING  # until it serves (its predecessor's are gone)
        # prometheus_client picks its multiprocess mode from the environment when it is
        # imported, which the worker does as it unpickles its arguments: before any code of ours.
        previous = os.environ.get(MULTIPROCESS_DIR)
        if self._metrics is not None:
            os.environ[MULTIPROCESS_DIR] = self._metrics
        try:
            process.start()
        finally:
            if previous is None:
                os.environ.pop(MULTIPROCESS_DIR, None)
            else:
                os.environ[MULTIPROCESS_DIR] = previous
        child_end.close()
        self._workers[index] = _Worker(index, process, parent_end)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        # A second SIGINT forces the stop, as for a single process (uvicorn's rule).
        forward = signal.SIGINT if self._stops and signum == signal.SIGINT else signal.SIGTERM
        self.forced = self.forced or forward == signal.SIGINT
        if not self._stops:
            self._stops.append(signum)
            # No replacement is started from now on: new connections are refused at once,
            # as by a single process that stops, instead of queueing where nobody accepts.
            self._restarts.clear()
            self._listener.close()
        for worker in self._workers.values():
            _signal(worker.process, forward)

    def _wait_once(self) -> None:
        workers = list(self._workers.values())
        conns = {w.conn: w for w in workers if w.conn is not None}
        sentinels = {w.process.sentinel: w for w in workers}
        now = time.monotonic()
        due = min(self._restarts.values(), default=None)
        timeout = None if due is None else max(0.0, due - now)
        for ready in wait([*conns, *sentinels], timeout):
            if isinstance(ready, Connection) and ready in conns:
                self._message(conns[ready])
        for ended in wait(list(sentinels), timeout=0):
            if isinstance(ended, int):
                self._ended(sentinels[ended])
        now = time.monotonic()
        for index, when in list(self._restarts.items()):
            if when <= now and not self._stops:
                del self._restarts[index]
                self._start(index)

    def _message(self, worker: _Worker) -> None:
        assert worker.conn is not None
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            # Its end closed: the process is ending; its sentinel tells when.
            worker.conn.close()
            worker.conn = None
            return
        if kind == "ready":
            worker.ready = True
            worker.serving_since = time.monotonic()
            if self._stops:  # a stop came while it was loading
                _signal(worker.process, signal.SIGTERM)
            elif self._serving:  # a replacement
                self._go(worker)
        elif kind == "error":
            error: BaseException = pickle.loads(payload)
            if not self._serving:
                raise error  # at start: the service does not start
            # A replacement that cannot load (the model file changed since): the others
            # go on serving; its process ends next, and is not replaced again.
            worker.failed = True
            self._note(f"{self._name(worker)} could not be replaced: {error}")

    def _go(self, worker: _Worker) -> None:
        if worker.conn is not None:
            try:
                worker.conn.send("serve")
            except OSError:
                pass  # it is ending: its sentinel tells

    def _ended(self, worker: _Worker) -> None:
        worker.process.join()
        self._counts[worker.index] = NOT_SERVING
        if worker.process.pid is not None and self._metrics is not None:
            _retire_metrics(self._metrics, worker.process.pid)
        if worker.conn is not None:
            if not worker.failed and worker.conn.poll(0):
                self._message(worker)  # its last word (an error) before it ended
            if worker.conn is not None:
                worker.conn.close()
        del self._workers[worker.index]
        if self._stops:
            return
        how = _how_it_ended(worker.process.exitcode)
        if not self._serving:
            raise WorkerError(f"{self._name(worker)} {how} before it was ready")
        if not worker.ready:
            # A replacement that never loaded: replacing it again would most likely fail alike.
            if not worker.failed:
                self._note(f"{self._name(worker)} {how} before it was ready; not replaced")
            if not self._workers and not self._restarts:
                raise WorkerError("no serving process is left")
            return
        lived = time.monotonic() - worker.serving_since
        # One that dies soon after it started serving is replaced after a pause, so a
        # process that crashes at once does not reload the models in a tight loop.
        delay = 0.0 if lived >= RESTART_PAUSE else RESTART_PAUSE
        self._note(f"{self._name(worker)} {how}; restarting it" + (f" in {delay:g} s" if delay else ""))
        self._restarts[worker.index] = time.monotonic() + delay

    def _name(self, worker: _Worker) -> str:
        return f"serving process {worker.index + 1} of {self._count} (pid {worker.process.pid})"

    def _terminate_all(self) -> None:
        self._restarts.clear()
        for worker in self._workers.values():
            _signal(worker.process, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for worker in self._workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                _signal(worker.process, signal.SIGKILL)
                worker.process.join()
        self._workers.clear()


def _signal(process: BaseProcess, signum: int) -> None:
    if process.pid is not None and process.exitcode is None:
        try:
            os.kill(process.pid, signum)
        except ProcessLookupError:
            pass


def check_pools(config: ServeConfig) -> PoolsSummary:
    """Load ``config``'s pools in a child process, close them, and say what was loaded.

    As :func:`~modelrouter.serve.asgi.load_pools` in this process would: its error raised
    here (its type kept, for the exit code; the child's traceback attached as a note, shown
    with ``--debug``) and its warnings issued here, each once, after the child is done.
    Interrupted (a stop signal), the child is ended with this process's call.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_check_main, args=(config, sender), name="modelrouter-serve-check")
    child.start()
    sender.close()
    try:
        try:
            shown, outcome = receiver.recv()
        except EOFError:
            child.join()
            raise WorkerError(f"the process checking the pools {_how_it_ended(child.exitcode)}") from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()  # interrupted: its work no longer matters
        child.join()
    for text in shown:
        warnings.warn(text, UserWarning, stacklevel=1)
    kind, payload = outcome
    if kind == "error":
        error_bytes, trace = payload
        error: BaseException = pickle.loads(error_bytes)
        error.add_note(f"(in the process that checked the pools)\n{trace}")
        raise error
    summary: PoolsSummary = payload
    return summary


def _check_main(config: ServeConfig, conn: Connection) -> None:
    """The child of :func:`check_pools`: its warnings' texts (less those known false) and
    ("ok", summary) or ("error", (exception, traceback text))."""
    import traceback

    from modelrouter.known_warnings import is_known_false_warning

    # A terminal's Ctrl-C reaches this process too: the supervisor, interrupted, ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome: tuple[str, Any]
    with warnings.catch_warnings(record=True) as caught:
        try:
            loaded = load_pools(config)
        except BaseException as exc:
            outcome = ("error", (_portable(exc), traceback.format_exc()))
        else:
            outcome = ("ok", PoolsSummary.of(loaded))
            loaded.close()
    shown = [str(w.message) for w in caught if not is_known_false_warning(w.message, w.category)]
    with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
        conn.send((shown, outcome))
    conn.close()


def _dropped(signum: int, frame: FrameType | None) -> None:
    """The stop signals' handler once the service has stopped."""


def _retire_metrics(folder: str, pid: int) -> None:
    """The metrics files of ended worker ``pid``: its gauges of the instances now leave the
    sums (prometheus_client's ``mark_process_dead``); its counters, histograms and running
    totals stay in, under a name of their own, so that a replacement that is given the
    same pid (pids wrap) starts files of its own instead of overwriting them."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
    for path in Path(folder).glob(f"*_{pid}.db"):
        for serial in itertools.count(1):
            retired = path.with_name(f"{path.stem}-{serial}.db")  # still "<kind>_<pid…>.db"
            if not retired.exists():
                path.rename(retired)
                break


#: The workers' metrics folder: ``modelrouter-metrics-<supervisor pid>-<random>``.
METRICS_FOLDER_PREFIX = "modelrouter-metrics-"


def _metrics_folder(stack: contextlib.ExitStack) -> str | None:
    """A new folder for the workers' metrics, removed when ``stack`` closes: in the usual
    temporary folder, else in ``/dev/shm`` (a container whose file system is read-only),
    else ``None``: each worker then keeps its metrics alone (see :func:`serve_processes`).

    A supervisor killed with SIGKILL leaves its folder behind: the folders there of
    supervisors that no longer run are removed first."""
    for place in (None, "/dev/shm"):
        try:
            folder = stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"{METRICS_FOLDER_PREFIX}{os.getpid()}-", dir=place)
            )
        except OSError:  # FileNotFoundError too: "no usable temporary directory found"
            continue
        _remove_abandoned(Path(folder).parent)
        return folder
    return None


def _remove_abandoned(parent: Path) -> None:
    """Remove this user's metrics folders in ``parent`` whose supervisor is not running."""
    import shutil

    for folder in parent.glob(f"{METRICS_FOLDER_PREFIX}*-*"):
        owner = folder.name[len(METRICS_FOLDER_PREFIX) :].split("-", 1)[0]
        try:
            if not owner.isdigit() or folder.stat().st_uid != os.getuid() or _running(int(owner)):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: another user's process, which runs
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _portable(exc: BaseException) -> bytes:
    """``exc`` pickled, when it survives the trip (a router error keeps its type, so the
    supervisor fails with its exit code); else a :class:`WorkerError` with its text."""
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(WorkerError(f"{type(exc).__name__}: {exc}"))


def _worker_main(
    config: ServeConfig,
    listener: socket.socket,
    index: int,
    count: int,
    counts: Any,
    conn: Connection,
    metrics: str | None,
) -> None:
    """A worker process: load the pools, tell the supervisor, serve until SIGTERM."""
    from modelrouter.serve.server import Balance, run_service

    os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the supervisor, which stops us once
    try:
        with warnings.catch_warnings():
            # The check of the pools loaded the same files and showed their warnings once.
            warnings.simplefilter("ignore")
            loaded = load_pools(config)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
            conn.send(("error", _portable(exc)))
        conn.close()
        return
    if metrics is not None:
        # Its pools in /metrics from the first scrape on, whichever process answers it.
        from modelrouter.serve.metrics_endpoint import publish_shared_pools

        publish_shared_pools({kind: pool.stats() for kind, pool in loaded.pools.items()})
    try:
        conn.send(("ready", None))
        conn.recv()  # "serve": every worker has loaded
    except (EOFError, OSError):
        loaded.close()  # the supervisor is gone
        return

    balance = Balance(counts, index)

    def serving() -> None:
        counts[index] = 0  # others may now leave connections to this one
        threading.Thread(target=_stop_when_orphaned, args=(conn,), daemon=True).start()

    run_service(
        config,
        listener,
        loaded,
        on_ready=serving,
        process=f"{index + 1}/{count}",
        balance=balance,
        shared_metrics=metrics,
    )


def _stop_when_orphaned(conn: Connection) -> None:
    """Wait on the supervisor's end of the pipe: it closes only when the supervisor is gone
    (it writes nothing more after "serve"); then stop gracefully, as on SIGTERM."""
    try:
        conn.recv()
    except (EOFError, OSError):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
