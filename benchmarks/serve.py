"""Load benchmark of ``modelrouter serve`` (and, side by side, MLServer's scikit-learn runtime).

    .venv/bin/python -m benchmarks.serve [--seconds 5] [--mlserver PATH/TO/mlserver]
                                         [--servers default,mlserver] [--results PATH]
    make bench-serve

A real HTTP load generator: ``C`` asyncio connections (HTTP/1.1 keep-alive, raw sockets, so
the generator costs little CPU next to the server on a 2-core machine), each sending the
same request back to back for ``--seconds`` after a 1 s warm-up. Concurrency 1, 8 and 32;
requests of 1 and 1,000 rows of the wine data; the shipped scikit-learn model
(``models/classifier.pkl``, pool of 2). Servers: ``modelrouter serve`` with default settings
(adaptive batching on; JSON ``rows`` body), with ``--max-batch-rows 0`` (every request
borrows on its own), default settings with the columnar ``columns`` body, and default
settings with ``--processes 2``. Reports
requests/s, rows/s, p50/p99 latency and the server's CPU time per request (all its
processes; steadier than requests/s on a shared machine) and the load average before and
after, and writes ``benchmarks/results/serve.json``. ``--servers`` runs some of them only
(``default``, ``batch0``, ``columns``, ``processes``, ``mlserver``, ``mlserver-batch``): a before/after
comparison of the defaults alternates ``--servers default,mlserver`` runs.

MLServer (``mlserver`` + ``mlserver-sklearn``) is not a project dependency: pass the path of
an ``mlserver`` executable installed in a throwaway venv with ``--mlserver``; it serves the
same pickle through the V2 inference protocol (``POST /v2/models/wine/infer``, FP64 tensor),
once with default settings and once with its adaptive batching (``max_batch_size`` 32,
``max_batch_time`` 2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "classifier.pkl"
WINE = ROOT / "sample_data" / "wine.csv"
RESULTS = ROOT / "benchmarks" / "results" / "serve.json"
CONCURRENCY = (1, 8, 32)
ROWS = (1, 1000)
SERVERS = ("default", "batch0", "columns", "processes", "mlserver", "mlserver-batch")


@dataclass
class Cell:
    server: str
    concurrency: int
    rows: int
    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    rows_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float  # the server's processes, user + system (less noisy than req/s)


def _rows(n: int) -> list[dict[str, float]]:
    import csv

    with WINE.open() as handle:
        records = [{k: float(v) for k, v in r.items() if k != "id"} for r in csv.DictReader(handle)]
    return [records[i % len(records)] for i in range(n)]


def _request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


async def _connection(port: int, request: bytes, until: float, measure_from: float, out: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    try:
        while (started := time.perf_counter()) < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            found = _LENGTH.search(head)
            if found is None:
                raise RuntimeError(f"no Content-Length in {head[:200]!r}")
            await reader.readexactly(int(found.group(1)))
            if started >= measure_from:
                out.append(time.perf_counter() - started)
                errors += head[9:12] != b"200"
    finally:
        writer.close()
    return errors


def load(
    port: int, path: str, body: bytes, concurrency: int, seconds: float
) -> tuple[list[float], int, float]:
    """Latencies (s) of the requests started after the warm-up, errors, measured seconds."""

    async def run() -> tuple[list[float], int, float]:
        latencies: list[float] = []
        start = time.perf_counter()
        measure_from, until = start + 1.0, start + 1.0 + seconds
        request = _request(port, path, body)
        errors = await asyncio.gather(
            *(_connection(port, request, until, measure_from, latencies) for _ in range(concurrency))
        )
        return latencies, sum(errors), time.perf_counter() - measure_from

    return asyncio.run(run())


def _tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def _wait_ready(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bench_modelrouter(
    seconds: float, *, batch_rows: int | None = None, body: str = "rows", processes: int = 1
) -> list[Cell]:
    """``modelrouter serve``, default settings or ``--max-batch-rows`` (0: off); ``rows`` or
    ``columns``; ``--processes``."""
    port = _free_port()
    config = Path(tempfile.mkdtemp()) / "modelrouter.toml"
    config.write_text(f'[sklearn]\npath = "{MODEL}"\npool_size = 2\n')
    modelrouter = Path(sys.executable).parent / "modelrouter"
    process = subprocess.Popen(
        [str(modelrouter), "serve", "-c", str(config), "--port", str(port), "--timeout", "60"]
        + (["--max-batch-rows", str(batch_rows)] if batch_rows is not None else [])
        + (["--processes", str(processes)] if processes != 1 else []),
        stderr=subprocess.DEVNULL,
    )
    name = (
        "modelrouter"
        + (f" batch {batch_rows}" if batch_rows is not None else "")
        + ("" if body == "rows" else f" {body}")
        + (f" processes {processes}" if processes != 1 else "")
    )

    def encode(rows: list[dict[str, float]]) -> bytes:
        if body == "columns":
            return json.dumps({"columns": {k: [r[k] for r in rows] for k in rows[0]}}).encode()
        return json.dumps({"rows": rows}).encode()

    try:
        _wait_ready(port, "/healthz", process)
        return _cells(name, port, "/predict", encode, seconds, process.pid)
    finally:
        _stop(process)


def bench_mlserver(executable: str, seconds: float, *, batch_size: int = 0) -> list[Cell]:
    """MLServer's scikit-learn runtime; ``batch_size``: its adaptive batching (2 ms window)."""
    folder = Path(tempfile.mkdtemp())
    port, grpc, metrics = _free_port(), _free_port(), _free_port()
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": grpc,
                "metrics_port": metrics,
                "host": "127.0.0.1",
                # MLServer 1.7.1's parallel inference worker dies at start here ("RuntimeError:
                # There is no current event loop in thread 'MainThread'", with uvloop 0.23 on
                # Python 3.11): inference runs in the server process instead.
                "parallel_workers": 0,
            }
        )
    )
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "wine",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(MODEL)},
                **({"max_batch_size": batch_size, "max_batch_time": 0.002} if batch_size else {}),
            }
        )
    )

    def body(rows: list[dict[str, float]]) -> bytes:
        data = [list(r.values()) for r in rows]
        tensor = {"name": "predict", "shape": [len(data), len(data[0])], "datatype": "FP64", "data": data}
        return json.dumps({"inputs": [tensor]}).encode()

    process = subprocess.Popen(
        [executable, "start", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_ready(port, "/v2/models/wine/ready", process)
        name = "mlserver" + (f" batch {batch_size}" if batch_size else "")
        return _cells(name, port, "/v2/models/wine/infer", body, seconds, process.pid)
    finally:
        _stop(process)


def _cells(name: str, port: int, path: str, encode: object, seconds: float, pid: int) -> list[Cell]:
    assert callable(encode)
    cells = []
    for rows in ROWS:
        body = encode(_rows(rows))
        for concurrency in CONCURRENCY:
            cpu_before = _tree_cpu_seconds(pid)
            latencies, errors, elapsed = load(port, path, body, concurrency, seconds)
            cpu = _tree_cpu_seconds(pid) - cpu_before  # includes the 1 s warm-up's requests
            latencies.sort()
            count = len(latencies)
            cell = Cell(
                server=name,
                concurrency=concurrency,
                rows=rows,
                requests=count,
                errors=errors,
                seconds=elapsed,
                requests_per_second=count / elapsed,
                rows_per_second=count * rows / elapsed,
                p50_ms=1000 * statistics.median(latencies),
                p99_ms=1000 * latencies[min(count - 1, int(0.99 * count))],
                cpu_ms_per_request=1000 * cpu / (count * (1 + 1 / elapsed)),
            )
            print(
                f"{name:28} c={concurrency:<3} rows={rows:<5} {cell.requests_per_second:9.1f} req/s "
                f"{cell.rows_per_second:11.0f} rows/s  p50 {cell.p50_ms:7.1f} ms  p99 {cell.p99_ms:7.1f} ms"
                f"  cpu {cell.cpu_ms_per_request:6.2f} ms/req" + (f"  errors {errors}" if errors else ""),
                flush=True,
            )
            cells.append(cell)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument(
        "--mlserver", default=os.environ.get("MLSERVER"), help="path of an mlserver executable"
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated servers to run, of: {', '.join(SERVERS)} (default: all)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON results path")
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown:
        parser.error(f"unknown server {unknown[0]!r} (choose from {', '.join(SERVERS)})")
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    runs: dict[str, Callable[[], list[Cell]]] = {
        "default": lambda: bench_modelrouter(args.seconds),  # adaptive batching on
        "batch0": lambda: bench_modelrouter(args.seconds, batch_rows=0),  # every request alone
        "columns": lambda: bench_modelrouter(args.seconds, body="columns"),
        "processes": lambda: bench_modelrouter(args.seconds, processes=2),  # default settings, 2 processes
        "mlserver": lambda: bench_mlserver(args.mlserver, args.seconds),
        "mlserver-batch": lambda: bench_mlserver(args.mlserver, args.seconds, batch_size=32),
    }
    cells: list[Cell] = []
    for server in servers:
        if server.startswith("mlserver") and not args.mlserver:
            print(f"{server}: not run (pass --mlserver PATH or set MLSERVER)", flush=True)
            continue
        cells += runs[server]()
    load_after = os.getloadavg()
    print(f"load average {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}", flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                # 1/5/15-minute load averages: other work on the machine skews every figure.
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in load_after],
                "cells": [asdict(c) for c in cells],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {args.results}")


if __name__ == "__main__":
    main()
