"""Running the app on uvicorn: bind, announce, serve until SIGTERM/SIGINT, stop gracefully.

On SIGTERM or SIGINT the service stops accepting connections and answers every request a
client had already sent (docs/specification.md §10), then runs the app's shutdown (which
closes the pools) and returns; the process then exits 0. "Already sent" includes what
uvicorn's own stop would reset:

- connections the kernel had completed but the server had not yet accepted (the listen
  backlog): they are accepted and served, not reset by closing the listening socket;
- requests whose bytes were in a socket's buffer, or on their way on a connection made just
  before the stop: a connection that has not sent a complete request yet is given up to
  :data:`FIRST_REQUEST_GRACE` seconds from its connection for it. Only idle keep-alive
  connections (every request answered, nothing received since) are closed at once.

Every answer given during the stop carries ``Connection: close``. uvicorn re-raises the
signal it caught once it is done, for the process's previous handler: that handler here only
notes it, so a graceful stop is not turned into death by signal. A second SIGINT forces the
stop (uvicorn's rule).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any, NamedTuple

import prometheus_client
import uvicorn
from modelrouter.errors import OutputError
from modelrouter.serve.asgi import LoadedPools, ServeConfig, create_app, load_pools
from modelrouter.serve.hot_path import ServeApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "FIRST_REQUEST_GRACE",
    "STOP_SIGNALS",
    "Balance",
    "PoolsSummary",
    "listening_line",
    "run_service",
    "serve",
    "stopped_line",
]

log = logging.getLogger("modelrouter.serve")

#: Signals that stop the service gracefully (SIGHUP too: a closed terminal or a supervisor's
#: reload request should not cut requests in flight).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: Seconds a process that holds more connections than another leaves a new one to the others.
LEAVE_FOR_OTHERS = 0.005

#: Seconds a connection made shortly before a stop may take to send its first request.
FIRST_REQUEST_GRACE = 2.0


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    processes: int = 1,
    announce: Callable[[str], None] = print,
    note: Callable[[str], None] | None = None,
) -> Stop | None:
    """Load the pools, bind ``host:port`` (0: any free port) and serve until a stop signal.

    ``announce`` gets the "listening on URL" line (the command's product: where to send
    requests, also with ``--port 0``); ``note`` the line saying how the service stopped
    (default: ``announce``). ``processes`` > 1: that many processes serve the port, each with
    its own pools (:mod:`~modelrouter.serve.processes`).

    Returns how the service stopped: the signal, and whether a second SIGINT forced the stop
    (``None`` if it stopped otherwise). Raises the
    router's :class:`ConfigError`/:class:`ModelError` when a pool cannot be loaded and
    :class:`OutputError` when the address cannot be bound — before anything is served.
    """
    if processes > 1:
        from modelrouter.serve.processes import serve_processes

        return serve_processes(config, host, port, processes, announce=announce, note=note)
    loaded = load_pools(config)
    try:
        listener = _bind(host, port)
    except BaseException:
        loaded.close()
        raise
    line = listening_line(host, listener, PoolsSummary.of(loaded))
    stop = run_service(config, listener, loaded, on_ready=lambda: announce(line))
    if stop is None:
        return None
    (note or announce)(stopped_line(stop.signum, forced=stop.forced))
    return stop


class PoolsSummary(NamedTuple):
    """What the "listening on" line says of the loaded pools (also sent by the process that
    checks them for ``--processes``): each type with its instance count, and the default."""

    sizes: tuple[tuple[str, int], ...]
    default_type: str | None

    @classmethod
    def of(cls, loaded: LoadedPools) -> PoolsSummary:
        sizes = tuple((str(kind), pool.size) for kind, pool in loaded.pools.items())
        return cls(sizes, None if loaded.default_type is None else str(loaded.default_type))


def listening_line(host: str, listener: socket.socket, pools: PoolsSummary, processes: int = 1) -> str:
    """The "listening on URL (pools: …; default: …)" line."""
    listed = ", ".join(f"{kind} ×{size}" for kind, size in pools.sizes) or "none"
    shown = f"[{host}]" if ":" in host else host
    spread = f"; processes: {processes}" if processes > 1 else ""
    return (
        f"listening on http://{shown}:{listener.getsockname()[1]} "
        f"(pools: {listed}; default: {pools.default_type or 'none'}{spread})"
    )


class Stop(NamedTuple):
    """How :func:`run_service` ended: by which signal, and whether a second SIGINT forced it
    (requests in flight were then cut, and the pools left to the process's exit)."""

    signum: int
    forced: bool


def stopped_line(signum: int, *, forced: bool = False) -> str:
    """The line saying how the service stopped."""
    name = signal.Signals(signum).name
    if forced:
        return (
            f"stopped by {name}, forced by a second SIGINT: "
            "requests in flight were abandoned (a 500, or the connection closed)"
        )
    return f"stopped by {name}; requests in flight answered, pools closed"


def run_service(
    config: ServeConfig,
    listener: socket.socket,
    loaded: LoadedPools,
    *,
    on_ready: Callable[[], None],
    process: str | None = None,
    balance: Balance | None = None,
    shared_metrics: str | None = None,
) -> Stop | None:
    """Serve ``loaded`` on ``listener`` until a stop signal; ``on_ready`` is called once the
    signals are taken, just before serving. ``process``: the process's name among several
    (:func:`create_app`); ``balance``: the connection counts of the processes sharing
    ``listener``, which then spread new connections over them (:class:`_DrainingServer`);
    ``shared_metrics``: the folder where they all write their metrics (:func:`create_app`).
    Returns how it stopped (``None`` if not by a signal)."""
    # Counters' "_created" samples double the exposition for nothing a dashboard uses.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    app = create_app(config, pools=loaded, process=process, shared_metrics=shared_metrics)
    server = _DrainingServer(
        uvicorn.Config(
            app,
            http=_DrainingProtocol,
            log_config=None,  # uvicorn's warnings reach stderr as plain lines; stdout stays empty
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=None,  # in-flight requests always finish
        ),
        balance,
    )
    # uvicorn builds the protocol with fixed arguments: the process's balance is a class
    # attribute (one server per process).
    _DrainingProtocol.balance = balance
    stops = server.signals

    def note_stop(signum: int, frame: FrameType | None) -> None:
        stops.append(signum)
        app.begin_stop()
        # A stop that lands after the announce but before uvicorn takes the signals over (or
        # the one uvicorn hands back when it is done) must still stop the service: uvicorn
        # skips its main loop and drains when it finds should_exit set at start.
        server.should_exit = True

    # The CLI's batch signal set-up (a watchdog that exits 128+signal after a grace period)
    # must not cut a graceful stop short: detach it, and take the signals uvicorn hands back.
    signal.set_wakeup_fd(-1)
    for signum in STOP_SIGNALS:
        signal.signal(signum, note_stop)
    on_ready()
    server.run(sockets=[listener])
    return Stop(stops[0], server.force_exit) if stops else None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot listen on {host}:{port} ({reason})") from None


class Balance:
    """The open connections of each process sharing a listening socket, in shared memory
    (``multiprocessing.RawArray("i", n)``; each process writes its own slot only)."""

    def __init__(self, counts: Any, index: int) -> None:
        self._counts = counts
        self._index = index

    def opened(self) -> None:
        self._counts[self._index] += 1

    def closed(self) -> None:
        self._counts[self._index] -= 1

    def ahead(self) -> bool:
        """Whether another process holds fewer connections than this one."""
        mine = self._counts[self._index]
        return any(count < mine for count in self._counts)


class _DrainingProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, telling the stop whether a request is on its way."""

    stopping = False  # set by the stop: every answer from then on closes its connection
    stop_started = 0.0
    connected_at = 0.0
    received = False  # bytes arrived since the last answer was complete

    balance: Balance | None = None  # this process's, when several share the listening socket

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.connected_at = asyncio.get_running_loop().time()
        if self.balance is not None:
            self.balance.opened()
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.balance is not None:
            self.balance.closed()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.received = True
        super().data_received(data)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.stopping and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        self.received = bool(self.pipeline)
        super().on_response_complete()

    def waiting_for_request(self, now: float) -> bool:
        """Whether the stop must wait for a request that has started, or may still start,
        arriving on this connection (no request in flight on it)."""
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # in flight: it is answered, then the connection closes
        if self.received:  # part of a request is here: its headers are incomplete
            return now < max(self.connected_at, self.stop_started) + FIRST_REQUEST_GRACE
        # Nothing since the last answer: an idle keep-alive connection is closed; one made
        # just before the stop, that has sent nothing yet, gets to send its request.
        return self.cycle is None and now < self.connected_at + FIRST_REQUEST_GRACE


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, whose stop drains the listen backlog and the requests on their way.

    With a :class:`Balance` (a listening socket shared by several processes) it accepts
    connections itself, one each time the socket is readable, and lets a waiting connection
    go to another process when this one holds more connections than another: left to the
    race of waking processes, the one that shares a core with the clients loses nearly every
    race, and a handful of keep-alive clients all land on one process. A connection no other
    process takes within :data:`LEAVE_FOR_OTHERS` seconds (they are all busy, or stuck) is
    accepted here anyway."""

    def __init__(self, config: uvicorn.Config, balance: Balance | None = None) -> None:
        super().__init__(config)
        self.balance = balance
        # The stop signals in the order they came: taken by uvicorn while it serves (below),
        # by run_service's handler before and after. uvicorn raises the ones it took again
        # when it is done, last one first: those come after, so the first here is the first.
        self.signals: list[int] = []
        self._shared: list[socket.socket] = []  # the listening sockets watched here
        self._accepting: set[asyncio.Task[Any]] = set()  # connections being set up

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)
        app = self.config.app
        if isinstance(app, ServeApp):
            app.begin_stop()  # /healthz says 503 while the requests in flight finish
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.balance is None or not sockets:
            await super().startup(sockets)
            return
        await super().startup(sockets=[])  # the app's start-up, without the loop's server
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        self._shared = list(sockets)
        for sock in self._shared:
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._accept_one, sock)

    def _accept_one(self, listener: socket.socket) -> None:
        """The listening socket is readable: take one connection, or leave it to the others."""
        loop = asyncio.get_running_loop()
        if self.balance is not None and self.balance.ahead():
            # Stop watching for a moment; then take what is still waiting.
            loop.remove_reader(listener.fileno())
            loop.call_later(LEAVE_FOR_OTHERS, self._take_waiting, listener)
            return
        try:
            taken = self._accept(listener)
        except BlockingIOError:
            return  # another process took it
        if not taken:
            loop.remove_reader(listener.fileno())
            loop.call_later(1.0, self._take_waiting, listener)

    def _take_waiting(self, listener: socket.socket) -> None:
        """After a pause: every connection still waiting is taken here (no other process took
        it: they are busy, stuck or gone), then the socket is watched again."""
        if self.should_exit or listener.fileno() < 0:
            return  # stopping: the backlog is drained by the stop
        loop = asyncio.get_running_loop()
        while True:
            try:
                taken = self._accept(listener)
            except BlockingIOError:
                break
            if not taken:
                loop.call_later(1.0, self._take_waiting, listener)
                return
        loop.add_reader(listener.fileno(), self._accept_one, listener)

    def _accept(self, listener: socket.socket) -> bool:
        """Accept one connection and serve it; ``False`` when accepting fails for want of
        descriptors or memory (then the caller pauses a second, as the event loop's own server
        does, rather than spin on a socket that stays readable). Raises
        :class:`BlockingIOError` when none is waiting."""
        loop = asyncio.get_running_loop()
        try:
            conn, _ = listener.accept()
        except (InterruptedError, ConnectionAbortedError):
            return True  # the client gave up
        except BlockingIOError:
            raise
        except OSError as exc:
            log.error("error: cannot accept a connection: %s; retrying in 1 s", exc)
            return False
        conn.setblocking(False)
        task = loop.create_task(loop.connect_accepted_socket(self._protocol, conn))
        self._accepting.add(task)
        task.add_done_callback(self._accepting.discard)
        return True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for sock in self._shared:
            if sock.fileno() >= 0:
                loop.remove_reader(sock.fileno())
        # Keep the listening socket open (a duplicate descriptor) while the event loop lets go
        # of it, then accept what the kernel had completed: closing a socket with connections
        # in its backlog resets them.
        spares = [sock.dup() for sock in sockets or []]
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self._mark_stopping(started)
        for spare in spares:
            with spare:
                await self._accept_backlog(spare)
        self._mark_stopping(started)
        while not self.force_exit:
            # One turn of the event loop first: bytes already in a socket's buffer are read.
            await asyncio.sleep(0.01)
            now = loop.time()
            waiting = False
            for connection in list(self.server_state.connections):
                if isinstance(connection, _DrainingProtocol) and connection.waiting_for_request(now):
                    waiting = True
                else:
                    connection.shutdown()
            if not waiting:
                break
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(0.05)
        if not self.force_exit:
            await self.lifespan.shutdown()
        else:
            # Forced: the app's shutdown is skipped and its lifespan task is cancelled as the
            # loop ends, which uvicorn would log as an error with a traceback. The stop line
            # says what happened.
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

    def _mark_stopping(self, started: float) -> None:
        for connection in list(self.server_state.connections):
            if isinstance(connection, _DrainingProtocol):
                connection.stopping = True
                connection.stop_started = started
                if connection.cycle is not None and not connection.cycle.response_complete:
                    connection.cycle.keep_alive = False

    async def _accept_backlog(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                return
            conn.setblocking(False)
            await loop.connect_accepted_socket(self._protocol, conn)

    def _protocol(self) -> asyncio.Protocol:
        protocol: Any = self.config.http_protocol_class
        return protocol(  # type: ignore[no-any-return]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
