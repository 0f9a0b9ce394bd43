"""``modelrouter serve --processes N``: several processes serve one port (docs/serving.md,
"Several processes"), through the real command."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.test_serve import (
    MODELROUTER,
    SHIPPED,
    Server,
    json_body,
    sklearn_oracle,
    start_server,
    wine_rows,
)

PROCESS_HEADER = "X-Modelrouter-Process"


def _children(pid: int) -> list[int]:
    """The serving processes started by supervisor ``pid`` (not multiprocessing's helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _stats(server: Server) -> tuple[str | None, dict[str, object]]:
    """``GET /pool/stats`` on a new connection: which process answered, and its body."""
    with httpx.Client() as client:  # a connection of its own
        answer = client.get(f"{server.url}/pool/stats", timeout=30)
    assert answer.status_code == 200
    return answer.headers.get(PROCESS_HEADER), answer.json()


def _predict(server: Server, rows: int) -> int:
    with httpx.Client() as client:
        return client.post(f"{server.url}/predict", json=json_body(wine_rows(rows)), timeout=90).status_code


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        ["-m", str(SHIPPED / "classifier.pkl"), "--pool-size", "1", "--processes", "2"], cwd=tmp_path
    )
    try:
        yield server
    finally:
        for pid in _children(server.process.pid):
            os.kill(pid, signal.SIGCONT)
        if server.process.poll() is None:
            try:
                server.stop()  # graceful: it removes its metrics folder
            except subprocess.TimeoutExpired:
                server.process.kill()
        server.wait()


def test_two_processes_serve_the_port_say_which_they_are_and_stop_together(two: Server) -> None:
    workers = _children(two.process.pid)
    assert len(workers) == 2
    rows = wine_rows(40)
    expected = sklearn_oracle(rows)[0].tolist()
    seen = set()
    # Each process alone, the other frozen: both serve, and both answer as the model does.
    for frozen in workers:
        os.kill(frozen, signal.SIGSTOP)
        try:
            with httpx.Client() as client:
                answer = client.post(f"{two.url}/predict", json=json_body(rows), timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == expected
            which, stats = _stats(two)
            seen.add(which)
            assert set(stats) == {"default_model_type", "pools"}
        finally:
            os.kill(frozen, signal.SIGCONT)
    assert seen == {"1/2", "2/2"}
    # SIGTERM to the command: both stop gracefully, one "stopped" line, exit 0.
    assert two.stop() == 0
    assert "".join(two.stderr).count("stopped by SIGTERM") == 1
    assert "Traceback" not in "".join(two.stderr)
    _until(lambda: not any(_alive(pid) for pid in workers), 30)


PREDICTED = 'modelrouter_http_requests_total{endpoint="/predict",model_type="sklearn",status="200"}'
POOL_SIZE = 'modelrouter_pool_size{model_type="sklearn"}'
POOL_ROWS = 'modelrouter_pool_rows{model_type="sklearn"}'


def _metrics(server: Server) -> tuple[str | None, dict[str, float]]:
    """``GET /metrics`` on a new connection: which process answered, and its samples."""
    with httpx.Client() as client:
        answer = client.get(f"{server.url}/metrics", timeout=30)
    assert answer.status_code == 200
    samples = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return answer.headers.get(PROCESS_HEADER), samples


def _predict_ok(server: Server, *, requests: int, rows: int) -> None:
    for _ in range(requests):
        assert _predict(server, rows) == 200


def _each_alone(server: Server, action: Callable[[], None]) -> None:
    """``action`` once with each serving process alone (the others frozen)."""
    workers = _children(server.process.pid)
    for serving in workers:
        frozen = [pid for pid in workers if pid != serving]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            action()
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)


def test_metrics_are_the_whole_services_whichever_process_answers(two: Server) -> None:
    # 3 requests of 4 rows to each process, then /metrics from each: the same sums.
    _each_alone(two, lambda: _predict_ok(two, requests=3, rows=4))
    scraped: dict[str | None, dict[str, float]] = {}

    def whole(*, settled: bool = False) -> bool:
        which, samples = _metrics(two)
        scraped[which] = samples
        return (
            samples[PREDICTED] == 6  # counters: both processes
            and samples[POOL_SIZE] == 2  # --pool-size 1 in each of 2 processes
            # the scrape itself (a process may count an answered request a moment after
            # its client has read the answer)
            and (not settled or samples["modelrouter_http_requests_in_flight"] == 1)
        )

    # First with both running, until every answered request is counted (the gauge of
    # requests in flight back to the scrape alone): a process counts one a moment after its
    # client has read the answer, and one frozen in that moment would not count it then.
    _until(lambda: whole(settled=True), 10)
    # Then each alone (the gauge not asked: the frozen one may be frozen in that moment
    # after the scrape just made, its own scrape still in flight).
    _each_alone(two, lambda: _until(whole, 10))
    assert set(scraped) == {"1/2", "2/2"}
    # Pool figures are published once a second by each process.
    _until(lambda: _metrics(two)[1][POOL_ROWS] == 24, 10)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_the_pools_are_checked_by_a_child_that_warns_once_and_leaves_the_command_light(
    tmp_path: Path,
) -> None:
    import sklearn

    raw = (SHIPPED / "classifier.pkl").read_bytes()
    old = tmp_path / "old.pkl"  # a version-mismatch warning when it is loaded
    old.write_bytes(raw.replace(sklearn.__version__.encode(), b"0.0.1"))
    server = start_server(["-m", str(old), "--pool-size", "1", "--processes", "2"], cwd=tmp_path)
    try:
        workers = _children(server.process.pid)
        assert len(workers) == 2  # the checking child is gone
        # The command does not hold the models and their libraries: the child did.
        command, loaded = _rss_kib(server.process.pid), min(map(_rss_kib, workers))
        assert command < 0.6 * loaded, (command, loaded)
        assert server.stop() == 0
        shown = [line for line in server.stderr if "pickled with scikit-learn 0.0.1" in line]
        assert len(shown) == 1 and shown[0].startswith("warning: "), server.stderr
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.wait()


def test_the_first_scrape_already_counts_every_process(two: Server) -> None:
    """Each worker publishes its pools before the "listening on" line (the pool gauges
    counted one worker on a scrape made right after it)."""
    assert _metrics(two)[1][POOL_SIZE] == 2  # 2 processes × --pool-size 1


def test_an_ended_workers_metrics_files_stay_in_the_sums_under_names_of_their_own(tmp_path: Path) -> None:
    """A replacement given the ended worker's pid (pids wrap) overwrote its running totals."""
    from modelrouter.serve.processes import _retire_metrics

    for name in (
        "counter_77.db",
        "histogram_77.db",
        "gauge_sum_77.db",
        "gauge_livesum_77.db",
        "counter_78.db",
    ):
        (tmp_path / name).write_bytes(b"")
    _retire_metrics(str(tmp_path), 77)
    (tmp_path / "counter_77.db").write_bytes(b"")  # the replacement, pid 77 again
    _retire_metrics(str(tmp_path), 77)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "counter_77-1.db",
        "counter_77-2.db",
        "counter_78.db",
        "gauge_sum_77-1.db",  # prometheus_client reads "<kind>_<mode>_<pid>.db": still a sum
        "histogram_77-1.db",
    ]


def test_a_killed_supervisors_metrics_folder_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import tempfile

    from modelrouter.serve import processes

    ended = subprocess.Popen(["true"])
    ended.wait()  # its pid: a supervisor that no longer runs (killed with SIGKILL)
    abandoned = tmp_path / f"modelrouter-metrics-{ended.pid}-abcd"
    abandoned.mkdir()
    (abandoned / "counter_1.db").write_bytes(b"")
    running = tmp_path / f"modelrouter-metrics-{os.getppid()}-efgh"  # its supervisor runs
    running.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with contextlib.ExitStack() as stack:
        folder = processes._metrics_folder(stack)
        assert folder is not None and Path(folder).name.startswith(f"modelrouter-metrics-{os.getpid()}-")
        assert not abandoned.exists() and running.exists() and Path(folder).is_dir()
    assert not Path(folder).exists()


def test_the_metrics_folder_falls_back_to_dev_shm_then_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import tempfile

    from modelrouter.serve import processes

    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable /dev/shm here")
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/tmp")  # as if no temporary folder
    with contextlib.ExitStack() as stack:
        folder = processes._metrics_folder(stack)
        assert folder is not None and folder.startswith("/dev/shm/modelrouter-metrics-")
    assert not Path(folder).exists()

    def unwritable(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", unwritable)
    with contextlib.ExitStack() as stack:
        assert processes._metrics_folder(stack) is None


@pytest.mark.slow
def test_a_hammered_ctrl_c_stops_once_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT every 2 ms until the command exits: it gave tracebacks and exit 1 once the
    workers had ended (the CLI's handlers were back)."""
    for _ in range(3):
        server = start_server(["-m", str(SHIPPED / "classifier.pkl"), "--processes", "2"], cwd=tmp_path)
        try:
            while server.process.poll() is None:
                server.process.send_signal(signal.SIGINT)
                time.sleep(0.002)
            assert server.wait(30) == 128 + signal.SIGINT
            log = "".join(server.stderr)
            assert "Traceback" not in log and "Exception ignored" not in log and "error:" not in log, log
            assert log.count("stopped by SIGINT") == 1, log
        finally:
            if server.process.poll() is None:
                server.process.kill()
                server.wait()


@pytest.mark.slow
def test_a_process_that_dies_is_replaced(two: Server) -> None:
    before = _children(two.process.pid)
    victim = before[0]
    _each_alone(two, lambda: _predict_ok(two, requests=3, rows=4))
    _until(lambda: _metrics(two)[1][POOL_ROWS] == 24, 10)
    os.kill(victim, signal.SIGKILL)
    _until(lambda: any("was killed by SIGKILL; restarting it" in line for line in two.stderr))
    _until(lambda: len(_children(two.process.pid)) == 2 and victim not in _children(two.process.pid))
    (survivor,) = [pid for pid in _children(two.process.pid) if pid in before]
    # With the survivor frozen, only the replacement can accept: it answers once loaded.
    os.kill(survivor, signal.SIGSTOP)
    try:
        assert _predict(two, 2) == 200
    finally:
        os.kill(survivor, signal.SIGCONT)
    # The killed process's requests and rows still count: nothing goes back.
    _until(lambda: _metrics(two)[1][POOL_ROWS] == 26, 10)
    which, samples = _metrics(two)
    assert samples[PREDICTED] == 7 and samples[POOL_SIZE] == 2, (which, samples)
    assert two.stop() == 0


@pytest.mark.slow
def test_workers_stop_when_their_supervisor_is_killed(two: Server) -> None:
    workers = _children(two.process.pid)
    two.process.kill()
    _until(lambda: not any(_alive(pid) for pid in workers), 30)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_model_that_cannot_load_fails_once_with_the_single_process_exit_code(
    tmp_path: Path, processes: str
) -> None:
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    result = subprocess.run(
        [str(MODELROUTER), "serve", "--port", "0", "-m", str(broken), "--processes", processes],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.pkl" in errors[0], result.stderr


def test_processes_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(MODELROUTER), "serve", "--port", "0", "--processes", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--processes" in result.stderr


def test_an_error_a_worker_cannot_send_whole_still_reaches_the_supervisor() -> None:
    from modelrouter.serve.processes import WorkerError, _portable

    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}+{b}")

    from modelrouter.errors import ModelLoadError

    kept = pickle.loads(_portable(ModelLoadError("the file changed")))
    assert type(kept) is ModelLoadError and str(kept) == "the file changed"
    replaced = pickle.loads(_portable(Odd(1, 2)))
    assert type(replaced) is WorkerError and "Odd: 1+2" in str(replaced)


@pytest.mark.slow
def test_a_process_that_cannot_be_replaced_leaves_the_others_serving(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes((SHIPPED / "classifier.pkl").read_bytes())
    server = start_server(["-m", str(model), "--pool-size", "1", "--processes", "2"], cwd=tmp_path)
    try:
        first, second = _children(server.process.pid)
        model.write_bytes(b"no longer a pickle")
        os.kill(first, signal.SIGKILL)
        _until(lambda: any("could not be replaced" in line for line in server.stderr))
        _until(lambda: _children(server.process.pid) == [second])
        assert _predict(server, 2) == 200  # the other one serves on
        os.kill(second, signal.SIGKILL)
        assert server.wait(60) == 4
        errors = [line for line in server.stderr if line.startswith("error:")]
        assert len(errors) == 1 and "no serving process is left" in errors[0], server.stderr
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.wait()


@pytest.mark.parametrize("processes", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_sighup_stops_the_service_gracefully(tmp_path: Path, processes: str) -> None:
    server = start_server(["-m", str(SHIPPED / "classifier.pkl"), "--processes", processes], cwd=tmp_path)
    try:
        assert _predict(server, 2) == 200
        assert server.stop(signal.SIGHUP, timeout=60) == 0
        assert "stopped by SIGHUP" in "".join(server.stderr)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.wait()


@pytest.mark.slow
def test_connections_made_after_the_stop_began_are_refused(two: Server) -> None:
    """A request in flight keeps the workers stopping; a new connection meanwhile is refused
    at once (as by one process), not queued where nobody accepts it, then reset."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(two.url)
    address = (parts.hostname or "127.0.0.1", parts.port or 0)
    body = b'{"rows": []}'
    held = socket.create_connection(address, timeout=30)
    head = (
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    held.sendall(head.encode() + body[:3])
    time.sleep(0.5)
    two.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()
    held.sendall(body[3:])
    assert held.recv(100).startswith(b"HTTP/1.1 200")
    held.close()
    assert two.wait(60) == 0


@pytest.mark.slow
def test_a_stop_while_the_workers_load_interrupts_like_one_process(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(MODELROUTER), "serve", "--port", "0", "--processes", "2", "-m", str(SHIPPED / "classifier.pkl")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _until(lambda: len(_children(process.pid)) == 2)
    workers = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert out == "" and "interrupted by SIGTERM" in err
    _until(lambda: not any(_alive(pid) for pid in workers), 30)


@pytest.mark.parametrize(
    ("processes", "first"),
    [
        ("1", signal.SIGINT),
        pytest.param("2", signal.SIGINT, marks=pytest.mark.slow),
        # The line names the stop's first signal (one process named the last one uvicorn took).
        pytest.param("1", signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param("2", signal.SIGTERM, marks=pytest.mark.slow),
    ],
)
def test_a_second_sigint_forces_the_stop_and_says_so(tmp_path: Path, processes: str, first: int) -> None:
    import socket
    from urllib.parse import urlsplit

    server = start_server(["-m", str(SHIPPED / "classifier.pkl"), "--processes", processes], cwd=tmp_path)
    try:
        parts = urlsplit(server.url)
        held = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=30)
        held.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 99\r\n\r\n{"
        )
        time.sleep(0.5)  # in flight: its body is not complete
        server.process.send_signal(first)
        time.sleep(1.0)
        server.process.send_signal(signal.SIGINT)
        assert server.wait(30) == 128 + signal.SIGINT  # not the graceful stop's 0
        log = "".join(server.stderr)
        name = signal.Signals(first).name
        assert f"stopped by {name}, forced by a second SIGINT: requests in flight were abandoned" in log, log
        assert "Traceback" not in log
        held.close()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.wait()
