"""Running the app on uvicorn: bind, announce, serve until SIGTERM/SIGINT, stop gracefully.

On SIGTERM or SIGINT uvicorn stops accepting connections, lets the requests in flight finish,
runs the app's shutdown (which closes the pools) and returns; the process then exits 0
(docs/specification.md §10). uvicorn re-raises the signal it caught once it is done, for the
process's previous handler: that handler here only notes it, so a graceful stop is not turned
into death by signal. A second SIGINT forces the stop (uvicorn's rule).
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from types import FrameType

import prometheus_client
import uvicorn
from modelrouter.errors import OutputError
from modelrouter.serve.asgi import ServeConfig, create_app, load_pools

__all__ = ["serve"]


def serve(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    announce: Callable[[str], None] = print,
) -> int | None:
    """Load the pools, bind ``host:port`` (0: any free port) and serve until a stop signal.

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
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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
        announce(f"stopped by {signal.Signals(stops[0]).name}; requests in flight answered, pools closed")
    return stops[0] if stops else None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot listen on {host}:{port} ({reason})") from None
