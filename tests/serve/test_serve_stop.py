"""A stop signal answers every request a client had already sent (docs/specification.md §10).

Requests written to a socket just before SIGTERM were reset by the server's stop: those of
connections still in the kernel's listen backlog (closing the listening socket resets them),
and those of connections accepted but not yet read from (closed as "idle"). These tests put
requests exactly there — the server is frozen with SIGSTOP while clients connect and write,
then gets SIGTERM and SIGCONT — and require a 200 for each, through the real command.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.serve.test_serve import Server, json_body, start_server, wine_rows


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = start_server(["--pool-size", "2", "--timeout", "60"], cwd=tmp_path)
    try:
        yield started
    finally:
        if started.process.poll() is None:
            os.kill(started.process.pid, signal.SIGCONT)
            started.process.kill()
        started.wait()


def _address(server: Server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _request(rows: int = 1) -> bytes:
    body = json.dumps(json_body(wine_rows(rows))).encode()
    head = (
        "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _answer(sock: socket.socket) -> str:
    """Everything the server sends until it closes; a reset is the failure under test."""
    sock.settimeout(60)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        chunks.append(b"<reset>")
    return b"".join(chunks).decode("latin-1")


def _status(answer: str) -> str:
    return answer.split("\r\n", 1)[0] if answer else "<closed without an answer>"


def test_a_burst_of_requests_right_before_sigterm_is_answered(server: Server) -> None:
    address = _address(server)
    request = _request()
    sockets = []
    for _ in range(300):
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(request)
        sockets.append(sock)
    server.process.send_signal(signal.SIGTERM)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(_answer, sockets))
    for sock in sockets:
        sock.close()
    statuses = [_status(a) for a in answers]
    assert statuses == ["HTTP/1.1 200 OK"] * len(sockets), sorted(set(statuses))
    assert server.wait() == 0
    log = "".join(server.stderr)
    assert "stopped by SIGTERM" in log and "Traceback" not in log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning:uvicorn")
def test_requests_waiting_while_the_loop_was_busy_are_answered(tmp_path: Path) -> None:
    """Deterministic: the event loop is held while clients connect and write, and the stop is
    asked for meanwhile; when the loop runs again every written request must be answered."""
    import uvicorn
    from modelrouter import ModelRouter
    from modelrouter.serve import ServeConfig, create_app
    from modelrouter.serve.server import _DrainingProtocol, _DrainingServer

    listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
    address = listener.getsockname()[:2]
    app = create_app(ServeConfig(pool_size=2, timeout=60), router=ModelRouter())
    config = uvicorn.Config(app, http=_DrainingProtocol, log_config=None, log_level="warning", lifespan="on")

    class Probe(_DrainingServer):
        loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets)

    server = Probe(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    assert server.loop is not None
    loop_busy = threading.Event()
    request = _request()
    warm = socket.create_connection(address, timeout=10)  # keep-alive, answered once
    warm.sendall(request)
    first = b""
    while not first.endswith(b"]}"):
        first += warm.recv(65536)
    holder = _hold_event_loop(server.loop, loop_busy)
    assert loop_busy.wait(10)
    sockets = [warm]
    for _ in range(60):
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(request)
        sockets.append(sock)
    warm.sendall(request)  # a second request on the keep-alive connection
    server.should_exit = True
    holder.set()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(_answer, sockets))
    thread.join(60)
    assert not thread.is_alive()
    for sock in sockets:
        sock.close()
    statuses = [_status(a) for a in answers]
    assert statuses == ["HTTP/1.1 200 OK"] * len(sockets), sorted(set(statuses))


def _hold_event_loop(loop: asyncio.AbstractEventLoop, busy: threading.Event) -> threading.Event:
    """Block the server's event loop (from inside it) until the returned event is set."""
    release = threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(30)

    loop.call_soon_threadsafe(hold)
    return release


def test_a_connection_made_just_before_the_stop_may_still_send(server: Server) -> None:
    address = _address(server)
    fresh = socket.create_connection(address, timeout=10)
    idle = socket.create_connection(address, timeout=10)  # keep-alive, after one answer
    idle.sendall(_request())
    first = b""
    while not first.endswith(b"]}"):
        first += idle.recv(65536)
    # Both are accepted now: the kernel hands out connections in the order they were made, so
    # fresh was accepted before idle, whose request has been answered; idle is idle again
    # (uvicorn marks a response complete as it writes its last bytes).
    assert first.startswith(b"HTTP/1.1 200 OK")
    server.process.send_signal(signal.SIGTERM)
    # The stop is under way once it has closed the idle keep-alive connection (it had no
    # request on its way): then the fresh connection sends its first request.
    idle.settimeout(30)
    assert idle.recv(65536) == b""
    fresh.sendall(_request(3))
    answer = _answer(fresh)
    assert _status(answer) == "HTTP/1.1 200 OK", answer
    assert '"predictions":[' in answer and "connection: close" in answer.lower()
    fresh.close()
    idle.close()
    assert server.wait() == 0


STOP_IN_THE_WINDOW = """
import os, signal, sys
from modelrouter.serve.asgi import ServeConfig
from modelrouter.serve.server import serve

def announce(line: str) -> None:
    print(line, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # before uvicorn has taken the signals over

stopped = serve(ServeConfig(model=sys.argv[1], pool_size=1), port=0, announce=announce)
print("returned", stopped.signum if stopped else None, stopped.forced if stopped else None, flush=True)
"""


def test_a_stop_right_after_the_listening_line_stops_the_service(tmp_path: Path) -> None:
    """A supervisor's SIGTERM sent as soon as 'listening on' appears was noted and dropped:
    uvicorn had not installed its handlers yet, so the service ran on until SIGKILL."""
    model = Path(__file__).resolve().parents[2] / "models" / "classifier.onnx"
    done = subprocess.run(
        [sys.executable, "-c", STOP_IN_THE_WINDOW, str(model)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "listening on http://127.0.0.1:" in done.stdout
    assert f"returned {int(signal.SIGTERM)} False" in done.stdout, done.stdout + done.stderr
    assert "stopped by SIGTERM" in done.stdout
