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
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import prometheus_client
import uvicorn
from modelrouter.errors import OutputError
from modelrouter.serve.asgi import ServeConfig, create_app, load_pools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["FIRST_REQUEST_GRACE", "serve"]

#: Seconds a connection made shortly before a stop may take to send its first request.
FIRST_REQUEST_GRACE = 2.0


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    announce: Callable[[str], None] = print,
    note: Callable[[str], None] | None = None,
) -> int | None:
    """Load the pools, bind ``host:port`` (0: any free port) and serve until a stop signal.

    ``announce`` gets the "listening on URL" line (the command's product: where to send
    requests, also with ``--port 0``); ``note`` the line saying how the service stopped
    (default: ``announce``).

    Returns the signal that stopped the service (``None`` if it stopped otherwise). Raises the
    router's :class:`ConfigError`/:class:`ModelError` when a pool cannot be loaded and
    :class:`OutputError` when the address cannot be bound — before anything is served.
    """
    # Counters' "_created" samples double the exposition for nothing a dashboard uses.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    loaded = load_pools(config)
    try:
        listener = _bind(host, port)
    except BaseException:
        loaded.close()
        raise
    bound_port = listener.getsockname()[1]
    app = create_app(config, pools=loaded)
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
        )
    )
    stops: list[int] = []

    def note_stop(signum: int, frame: FrameType | None) -> None:
        stops.append(signum)
        # A stop that lands after the announce but before uvicorn takes the signals over (or
        # the one uvicorn hands back when it is done) must still stop the service: uvicorn
        # skips its main loop and drains when it finds should_exit set at start.
        server.should_exit = True

    # The CLI's batch signal set-up (a watchdog that exits 128+signal after a grace period)
    # must not cut a graceful stop short: detach it, and take the signals uvicorn hands back.
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, note_stop)
    pools = ", ".join(f"{kind} ×{pool.size}" for kind, pool in loaded.pools.items()) or "none"
    shown = f"[{host}]" if ":" in host else host
    announce(
        f"listening on http://{shown}:{bound_port} (pools: {pools}; default: {loaded.default_type or 'none'})"
    )
    server.run(sockets=[listener])
    if stops:
        stopped = signal.Signals(stops[0]).name
        (note or announce)(f"stopped by {stopped}; requests in flight answered, pools closed")
    return stops[0] if stops else None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot listen on {host}:{port} ({reason})") from None


class _DrainingProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, telling the stop whether a request is on its way."""

    stopping = False  # set by the stop: every answer from then on closes its connection
    stop_started = 0.0
    connected_at = 0.0
    received = False  # bytes arrived since the last answer was complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.connected_at = asyncio.get_running_loop().time()
        super().connection_made(transport)

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
    """uvicorn's server, whose stop drains the listen backlog and the requests on their way."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
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
