"""``modelrouter inspect``: what a model file (or a scored Parquet file) holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from modelrouter.cli import render
from modelrouter.cli.exits import EXIT_MODEL, errors_to_exit, warnings_to_stderr
from modelrouter.cli.options import (
    ConfigOpt,
    DebugOpt,
    JsonOpt,
    QuietOpt,
    TrustOpt,
    checked_sha256,
    complete_model_type,
    location_option,
    model_file_policy,
    model_type_option,
)
from modelrouter.model_type import model_type_names

if TYPE_CHECKING:
    pass

SHORT_HELP = "Describe a model file: inputs, classes, sha256, versions."

__all__ = ["SHORT_HELP", "inspect_model"]


def inspect_model(
    model: Annotated[
        str,  # not Path: a URI (s3://…) must stay intact
        typer.Argument(
            callback=location_option,
            help="A model file: .pkl/.pickle/.joblib, .onnx, .skops, .json/.ubj (XGBoost) "
            "or .txt (LightGBM); or a .parquet/.pq data file (its columns, and where predict's "
            "output came from).",
            metavar="MODEL",
            show_default=False,
        ),
    ],
    model_type: Annotated[
        str | None,
        typer.Option(
            "--model-type",
            "-t",
            callback=model_type_option,
            autocompletion=complete_model_type,
            metavar="TYPE",
            help=f"Read MODEL as this type ({model_type_names('or')}) whatever its suffix.",
            show_default=False,
        ),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256",
            callback=checked_sha256,
            metavar="HEX",
            help="Report 'does not load' unless the file has this sha256.",
        ),
    ] = None,
    trust: TrustOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Describe a model file: inputs (names and dtypes, in order), classes, format, size,
    sha256, recorded scikit-learn/ONNX versions, opset, and whether it loads here (exit 4 if not).

    Pickles are code: inspecting one loads it, so inspect only files you trust.

    Example: modelrouter inspect models/classifier.onnx
    """

    with errors_to_exit(debug, writes_output=False), warnings_to_stderr(quiet):
        from modelrouter import ModelType
        from modelrouter.backends.base import read_model_bytes
        from modelrouter.locations import is_uri
        from modelrouter.tools.inspection import describe_file, is_data_file

        location: Path | str = model if is_uri(model) else Path(model)
        if model_type is None and is_data_file(location):
            _inspect_data(location, as_json)
            return
        kind = ModelType(model_type) if model_type else ModelType.from_path(model)
        # An unreadable URI, a missing file, a directory, a device or a pipe: one error line
        # naming what it is, exit 4 (a URI is fetched by modelrouter.remote).
        data = read_model_bytes(location, None)
        pin, trusted = model_file_policy(config, kind, location, data, trust)
        described = describe_file(location, kind, trusted=trusted, sha256=sha256 or pin, data=data)
        if as_json:
            render.print_json(described)
        else:
            for message in described["warnings"]:
                if not quiet:
                    render.warning(message)
            render.details_table(f"model {model}", _details(described))
        if not described["loads"]:
            render.error(f"{described['error']} (the model does not load here)")
            raise typer.Exit(EXIT_MODEL)


def _not_a_file(path: Path) -> str:
    """Why ``path`` is not a regular file: missing, a directory, a device, a pipe…"""
    from modelrouter.backends.base import file_kind

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    return f"is {file_kind(mode)}, not a regular file"


def _inspect_data(path: Path | str, as_json: bool) -> None:
    """``inspect`` on a Parquet file (local or an object): its footer, and where its
    predictions came from."""
    from modelrouter import DataError
    from modelrouter.tools.inspection import describe_data_file

    if isinstance(path, Path) and not path.is_file():
        raise DataError(f"{path}: {_not_a_file(path)}")
    described = describe_data_file(path)
    if as_json:
        render.print_json(described)
        return
    provenance = described["provenance"]
    rows = [
        ("format", "parquet"),
        ("size", f"{described['file_size']:,} bytes"),
        ("rows", f"{described['rows']:,} in {described['row_groups']} row group(s)"),
        ("columns", "\n".join(f"{c['name']}: {c['type']}" for c in described["columns"])),
        ("compression", ", ".join(described["compression"]) or "(none)"),
        ("written by", described["created_by"] or "(unknown)"),
    ]
    if described["pandas_index"]:
        rows.append(("pandas index", json.dumps(described["pandas_index"])))
    if provenance:
        rows += [(f"modelrouter.{k}", v) for k, v in provenance.items()]
    else:
        rows.append(("provenance", "(none: not written by modelrouter predict)"))
    render.details_table(f"data {path}", rows)


def _details(d: dict[str, Any]) -> list[tuple[str, str]]:
    """The field/value rows of ``inspect MODEL`` from :func:`describe_file`'s dictionary."""
    size = d["file_size"]
    inputs = d["inputs"]
    rows = [
        ("type", d["model_type"]),
        ("format", d["format"]),
        ("path", d["path"]),
        ("file size", "-" if size is None else f"{size:,} bytes"),
        ("sha256", d["sha256"]),
        ("loads here", "yes" if d["loads"] else f"no: {d['error']}"),
    ]
    if d["estimator"]:
        rows.append(("estimator", d["estimator"]))
    rows.append((f"inputs ({inputs['width']}, in order)" if d["loads"] else "inputs", _shown_inputs(d)))
    if d["graph_inputs"]:
        rows.append(
            (
                "ONNX graph inputs",
                "\n".join(f"{g['name']}: {g['type']} {_shape(g['shape'])}" for g in d["graph_inputs"]),
            )
        )
    outputs = d.get("outputs") or 1
    if outputs > 1:
        rows.append(("outputs", f"{outputs} per row (prediction_0 … prediction_{outputs - 1})"))
    rows.append(("classes", _shown_classes(d, outputs)))
    versions = d["versions"]
    rows.append(("versions recorded", ", ".join(f"{k} {v}" for k, v in versions.items() if v) or "-"))
    if d["opset"]:
        rows.append(("opset", ", ".join(f"{k} {v}" for k, v in sorted(d["opset"].items()))))
    return rows


def _shown_inputs(d: dict[str, Any]) -> str:
    """Named inputs one per line with their types; unnamed ones as a count; ``-`` if it did not load."""
    inputs = d["inputs"]
    names = inputs["names"]
    if names is not None:
        return "\n".join(f"{n}: {t}" for n, t in zip(names, inputs["dtypes"], strict=False))
    return f"{inputs['width']} unnamed (fed by position)" if d["loads"] else "-"


def _shown_classes(d: dict[str, Any], outputs: int) -> str:
    """The class labels; one line per output for multi-output models; ``(regressor)`` for none."""
    classes = d["classes"]
    if not d["loads"]:
        return "-"
    if classes is None:
        return "(regressor)"
    if outputs > 1:
        return "\n".join(
            f"output {i}: " + ("(unknown)" if c is None else ", ".join(map(str, c)))
            for i, c in enumerate(classes)
        )
    return ", ".join(map(str, classes))


def _shape(dims: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
