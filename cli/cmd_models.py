"""``modelrouter models``: the configured model types as a table (or JSON) on stdout."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from modelrouter.cli import render
from modelrouter.cli.exits import EXIT_MODEL, errors_to_exit, warnings_to_stderr
from modelrouter.cli.options import ConfigOpt, DebugOpt, QuietOpt

__all__ = ["SHORT_HELP", "models"]

SHORT_HELP = "List the configured models: path, sha256, inputs, classes."


def models(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the models as JSON on stdout.")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the configured model types: file, sha256, whether it loads, inputs, classes, pool size.

    The table (or --json) goes to stdout, so it can be piped: modelrouter models | grep sha256
    """
    with errors_to_exit(debug, writes_output=False), warnings_to_stderr(quiet):
        from modelrouter.tools.inspection import describe_models

        described = describe_models(config)
        if as_json:
            stream = render.product_stream()
            json.dump(described, stream, indent=2)
            stream.write("\n")
        else:
            render.models_table([_model_row(d) for d in described["models"]])
        broken = [d for d in described["models"] if not d["loads"]]
        for d in broken:
            render.error(f"{d['model_type']}: {d['error']}")
        if broken:
            raise typer.Exit(EXIT_MODEL)


def _model_row(d: dict[str, Any]) -> dict[str, str]:
    inputs = d["inputs"]
    names = inputs["names"] or [f"<{inputs['width']} unnamed>"]
    shown = "\n".join(f"{n}: {t}" for n, t in zip(names, inputs["dtypes"], strict=False))
    size = d.get("file_size")
    versions = ", ".join(f"{k} {v}" for k, v in (d.get("versions") or {}).items())
    opsets = d.get("opset") or {}
    opset = "\nopset " + ", ".join(f"{k} {v}" for k, v in sorted(opsets.items())) if opsets else ""
    return {
        "type": d["model_type"] + (" (default)" if d["default"] else ""),
        "format": d["format"],
        "path": d["path"],
        "size": f"{size:,} bytes" if size is not None else "(missing)",
        "built with": (versions or "unknown") + opset,
        "sha256": d["sha256"],
        "pinned": "yes (sha256 checked before loading)" if d["pinned"] else "no",
        "loads": "yes" if d["loads"] else f"no: {d['error']}",
        "inputs": shown,
        "classes": ", ".join(str(c) for c in d["classes"]) if d["classes"] is not None else "(regressor)",
        "pool size": str(d["pool_size"]),
    }
