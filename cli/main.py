"""The ``modelrouter`` command: Typer commands that parse options and call :mod:`modelrouter.batch.run`.

Heavy libraries (pandas, pyarrow, scikit-learn, onnxruntime) are imported inside the
commands, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import signal
from typing import Annotated

import typer
from modelrouter.cli import (
    cmd_compare,
    cmd_convert,
    cmd_inspect,
    cmd_models,
    cmd_predict,
    cmd_serve,
    early_signals,
    process,
    render,
)
from modelrouter.cli.exits import (
    Interrupted,
    hard_exit,
    install_signal_handlers,
    settle,
)

__all__ = ["app", "main"]


app = typer.Typer(
    name="modelrouter",
    help="Batch-score CSV and Parquet files with pooled scikit-learn and ONNX models.",
    epilog="Exit codes: 0 ok, 1 internal error (a bug), 2 usage, 3 input data, 4 model or config, "
    "5 output, 129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks would print DataFrames; --debug prints plain ones
    rich_markup_mode=None,  # Click's plain Usage:/Error: lines, never boxes that wrap paths
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # the one version: pyproject.toml's

        print(f"modelrouter {version('modelrouter')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Batch-score CSV and Parquet files with pooled scikit-learn and ONNX models.

    Exit codes: 0 ok, 2 usage, 3 input data, 4 model/config, 5 output, 129/130/143 interrupted.
    """


app.command(
    "predict",
    short_help="Predict labels (regressors: values) into 'prediction'.",
    help=cmd_predict.PREDICT_HELP,
)(cmd_predict.predict)
app.command(
    "predict-proba",
    short_help="Predict class probabilities into 'proba_<class>' columns.",
    help=cmd_predict.PROBA_HELP,
)(cmd_predict.predict_proba)
app.command("models", short_help=cmd_models.SHORT_HELP)(cmd_models.models)
app.command("convert", short_help=cmd_convert.SHORT_HELP)(cmd_convert.convert)
app.command("compare", short_help=cmd_compare.SHORT_HELP)(cmd_compare.compare)
app.command("inspect", short_help=cmd_inspect.SHORT_HELP)(cmd_inspect.inspect_model)
app.command("serve", short_help=cmd_serve.SHORT_HELP)(cmd_serve.serve)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    process.configure()  # allocators, before pyarrow loads and before any thread starts
    try:
        # A signal can land while the handlers are being installed (the watchdog thread's
        # start waits): from the first one on, it is Interrupted, caught below.
        install_signal_handlers()
        early = early_signals.received()
        if early is not None:  # a Ctrl-C while the modules were imported, swallowed by one of them
            render.error(f"interrupted by {signal.Signals(early).name}")
            hard_exit(128 + early)
        app(args=argv, prog_name="modelrouter")
    except Interrupted as exc:  # arrived outside a command body (e.g. while parsing)
        render.error(f"interrupted by {signal.Signals(exc.signum).name}")
        hard_exit(128 + exc.signum)
    except SystemExit as exc:  # how Click ends every command
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        settle(code)  # a signal during interpreter shut-down exits with this code, quietly
        raise
