"""``modelrouter serve``: the router as an HTTP service (:mod:`modelrouter.serve`)."""

from __future__ import annotations

import os
import signal
from typing import Annotated

import typer
from modelrouter.cli import render
from modelrouter.cli.cmd_predict import usage_errors
from modelrouter.cli.exits import errors_to_exit, warnings_to_stderr
from modelrouter.cli.options import (
    ConfigOpt,
    DebugOpt,
    ModelOpt,
    ModelTypeOpt,
    PoolSizeOpt,
    QuietOpt,
    Sha256Opt,
)
from modelrouter.limits import MAX_SERVE_PROCESSES

SHORT_HELP = "Serve the models over HTTP: /predict, /predict_proba, /explain."

__all__ = ["SHORT_HELP", "serve"]


def serve(
    config: ConfigOpt = None,
    model_type: ModelTypeOpt = None,
    model_path: ModelOpt = None,
    sha256: Sha256Opt = None,
    host: Annotated[
        str, typer.Option(metavar="ADDR", help="Address to bind (all interfaces: 0.0.0.0).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="N", min=0, max=65535, help="TCP port (0: any free one).")
    ] = 8000,
    pool_size: PoolSizeOpt = None,
    timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", min=0, help="How long a request waits for a free instance before a 503."
        ),
    ] = 10.0,
    max_rows: Annotated[
        int, typer.Option(metavar="N", min=1, help="Rows per request; more is a 413.")
    ] = 100_000,
    max_body_bytes: Annotated[
        int, typer.Option(metavar="N", min=1, help="Request body size in bytes; more is a 413.")
    ] = 32 << 20,
    max_batch_rows: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=0,
            max=1_000_000,
            help="Score requests already waiting for the same pool together, up to N rows per "
            "model call; a lone request is never delayed (0: off, every request borrows alone).",
        ),
    ] = 8192,
    processes: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=1,
            max=MAX_SERVE_PROCESSES,
            help="Serve the port from N processes, each with its own pools (one process uses "
            "about one core); /metrics then sums them all, /pool/stats describes the process that answers.",
        ),
    ] = 1,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Serve the models over HTTP, one pool per configured type (with -m: that model alone).

    POST /predict, /predict_proba, /explain; GET /pool/stats, /healthz, /metrics, /docs. Prints
    "listening on URL" on stdout once ready (also with -q). Stops gracefully on SIGTERM/SIGINT/SIGHUP
    (requests already sent are answered) and exits 0; a second SIGINT forces the stop (exit 130).
    """
    with errors_to_exit(debug, writes_output=False), warnings_to_stderr(quiet):
        # prometheus_client reads this when it is imported (next): set for another program
        # (a container's gunicorn set-up), it would make each of our metrics a file in that
        # folder — an internal error when the folder is missing, and our series in that
        # program's /metrics otherwise. The service keeps its metrics itself; with
        # --processes, in a folder of its own (docs/serving.md, "Several processes").
        for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
            os.environ.pop(name, None)
        from modelrouter.serve import ServeConfig
        from modelrouter.serve import serve as run_service

        with usage_errors():
            settings = ServeConfig(
                config=config,
                model=model_path,
                model_type=model_type,
                sha256=sha256,
                pool_size=pool_size,
                timeout=timeout,
                max_rows=max_rows,
                max_body_bytes=max_body_bytes,
                max_batch_rows=max_batch_rows,
                debug=debug,
            )
        stop = run_service(
            settings,
            host,
            port,
            processes=processes,
            # Where to send requests is the command's product (stdout), also with --port 0 -q.
            announce=lambda line: print(line, flush=True),
            note=(lambda line: None) if quiet else render.note,
        )
        if stop is not None and stop.forced:
            # Requests in flight were cut: not the graceful stop that exits 0, but an
            # interruption by SIGINT (docs/serving.md, "Stopping").
            raise typer.Exit(128 + signal.SIGINT)
