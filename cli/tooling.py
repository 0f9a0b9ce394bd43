"""Model tooling commands: ``convert``, ``compare`` and ``inspect`` (registered on the main app).

Same conventions as :mod:`modelrouter.cli.main`: one function per command, ``Annotated`` parameters,
errors mapped to exit codes by :func:`modelrouter.cli.exits.errors_to_exit`,
JSON on stdout only with ``--json``, every human line on stderr through :mod:`modelrouter.cli.render`.
Heavy libraries are imported inside the commands so ``--help`` stays fast.

Exit codes (docs/specification.md §5): 0 ok; 2 usage; 3 unusable sample/data; 4 model/config error,
unconvertible model, a model that does not load (``inspect``), or parity outside the
tolerances (``convert``, ``compare``); 5 output file not writable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from modelrouter.cli import render
from modelrouter.cli.exits import EXIT_MODEL, errors_to_exit, warnings_to_stderr
from modelrouter.cli.options import (
    MAX_CHUNK_SIZE,
    ConfigOpt,
    DebugOpt,
    FormatChoice,
    QuietOpt,
    TrustOpt,
    checked_sha256,
    complete_model_type,
    finite_float,
    location_option,
    model_type_option,
)
from modelrouter.model_type import model_type_names

if TYPE_CHECKING:
    from modelrouter import ModelType, Settings

__all__ = ["register"]


def _model_types(values: list[str] | None) -> list[str] | None:
    return None if values is None else [v for v in map(model_type_option, values) if v is not None]


InputFormatOpt = Annotated[
    FormatChoice | None,
    typer.Option(
        "--input-format",
        metavar="csv|parquet",
        help="Read the data as this format, whatever its suffix.",
        show_default=False,
    ),
]
MinAgreementOpt = Annotated[
    float,
    typer.Option(
        "--min-agreement",
        metavar="R",
        min=0.0,
        max=1.0,
        callback=finite_float,
        help="Fail (exit 4) when the share of rows with equal labels is below this.",
    ),
]
MaxProbaDiffOpt = Annotated[
    float,
    typer.Option(
        "--max-proba-diff",
        metavar="R",
        min=0.0,
        callback=finite_float,
        help="Fail (exit 4) when a probability differs by more than this (regressors: a row "
        "agrees when its values are within this or 1e-5 relative).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]


def convert(
    model: Annotated[
        str,  # not Path: a URI (s3://…) must stay intact
        typer.Argument(
            callback=location_option,
            help="The model: .pkl/.pickle/.joblib or .skops (scikit-learn, also pickled XGBoost/"
            "LightGBM wrappers), .json/.ubj (XGBoost) or .txt (LightGBM).",
            metavar="MODEL",
            show_default=False,
        ),
    ],
    output: Annotated[
        str | None,  # not Path: a URI (s3://…) must stay intact
        typer.Option(
            "--output",
            "-o",
            callback=location_option,
            metavar="PATH",
            help="The ONNX file (or s3://… object) to write. Default: <model stem>.onnx beside the model.",
            show_default=False,
        ),
    ] = None,
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample",
            callback=location_option,
            metavar="PATH",
            help="Score this .csv/.parquet (or s3://… object) with both models and report parity. "
            "Default: the shipped sample_data/wine.parquet when it has the model's feature columns.",
            show_default=False,
        ),
    ] = None,
    input_format: InputFormatOpt = None,
    model_type: Annotated[
        str | None,
        typer.Option(
            "--model-type",
            "-t",
            callback=model_type_option,
            autocompletion=complete_model_type,
            metavar="TYPE",
            help="Read MODEL as this type (sklearn, skops, xgboost or lightgbm) whatever its suffix.",
            show_default=False,
        ),
    ] = None,
    opset: Annotated[
        int | None,
        typer.Option(
            "--opset",
            metavar="N",
            min=1,
            help="Target this ai.onnx opset (default: the highest skl2onnx, onnx and "
            "the installed onnxruntime all support).",
            show_default=False,
        ),
    ] = None,
    min_agreement: MinAgreementOpt = 1.0,
    max_proba_diff: MaxProbaDiffOpt = 1e-4,
    trust: TrustOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Convert a scikit-learn, XGBoost or LightGBM model to ONNX and check that both give the same answers.

    Pipelines starting with a ColumnTransformer get one ONNX input per column, named like the
    column (strings stay strings). ZipMap is off; feature names, class labels and the
    scikit-learn version are recorded in the metadata. The file is written only when the parity
    check passes (exit 4 otherwise).

    Example: modelrouter convert models/classifier.pkl -o /tmp/classifier.onnx
    """

    if opset is not None:
        with errors_to_exit(debug):
            from modelrouter.tools.convert import opset_limits

            limits = opset_limits()
        if opset > limits.target:
            shown = ", ".join(f"{k} {v}" for k, v in limits.as_dict().items())
            raise typer.BadParameter(
                f"{opset} is above the supported maximum {limits.target} ({shown})", param_hint="--opset"
            )
    with errors_to_exit(debug), warnings_to_stderr(quiet):
        from modelrouter import ModelType
        from modelrouter.locations import is_uri
        from modelrouter.tools.convert import convert_model
        from modelrouter.tools.parity import ParityError, Tolerance

        kind = ModelType(model_type) if model_type else ModelType.from_path(model)
        trusted = _trusted(config, kind, trust)
        from modelrouter.storage.run_paths import PathConflict

        try:
            result = convert_model(
                model if is_uri(model) else Path(model),
                None if output is None else output if is_uri(output) else Path(output),
                model_type=kind,
                trusted=trusted,
                opset=opset,
                sample=sample,
                input_format=None if input_format is None else input_format.value,
                tolerance=Tolerance(min_agreement, max_proba_diff),
            )
        except PathConflict as exc:  # -o names the model or the sample: a usage error
            raise typer.BadParameter(str(exc), param_hint=exc.option) from None
        if as_json:
            _print_json(result.as_dict())
        elif not quiet:
            render.note(_conversion_line(result.as_dict()))
            if result.parity is not None:
                render.parity_tables([result.parity.as_dict()])
        if result.note and not quiet:
            render.note(result.note)
        if result.parity is not None and not result.parity.passed:
            reasons = "; ".join(result.parity.failures())
            raise ParityError(
                f"{result.output}: not written: the ONNX model differs from {model} on "
                f"{result.sample}: {reasons}. If the difference is acceptable, rerun with "
                "--min-agreement/--max-proba-diff"
            )
        if not quiet and not as_json and result.parity is not None:
            render.note(f"parity within tolerance; wrote {result.output}")
        elif not quiet and not as_json:
            render.note(f"wrote {result.output}")


def compare(
    data: Annotated[
        str,
        typer.Argument(
            callback=location_option,
            help="A .csv or .parquet file (or s3://… object) to score with every model.",
            metavar="DATA",
            show_default=False,
        ),
    ],
    config: ConfigOpt = None,
    model_types: Annotated[
        list[str] | None,
        typer.Option(
            "--model-type",
            "-t",
            callback=_model_types,
            autocompletion=complete_model_type,
            metavar="TYPE",
            help="Compare only these types (repeatable); the first is the reference. "
            "Default: every configured type, sklearn first.",
            show_default=False,
        ),
    ] = None,
    input_format: InputFormatOpt = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", metavar="N", min=1, max=MAX_CHUNK_SIZE, help="Rows per chunk.")
    ] = 65_536,
    min_agreement: MinAgreementOpt = 1.0,
    max_proba_diff: MaxProbaDiffOpt = 1e-4,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Score DATA with every configured model type and report parity against the first.

    Label agreement, max and mean absolute probability difference (overall and per class, in
    the reference model's class order) and the rows that disagree. Exit 4 when a model is
    outside --min-agreement / --max-proba-diff.

    Example: modelrouter compare sample_data/wine.parquet --json
    """

    with errors_to_exit(debug), warnings_to_stderr(quiet):
        from contextlib import ExitStack

        from modelrouter import ConfigError, ModelPool, ModelType, load_pool, load_settings
        from modelrouter.tools.parity import ParityError, Scorer, Tolerance, compare_frames, read_frames

        settings = load_settings(config)
        if model_types:
            kinds = [ModelType(t) for t in dict.fromkeys(model_types)]
            for kind in kinds:
                settings.model(kind)  # raises ConfigError naming the configured types
        else:
            kinds = sorted(settings.models, key=lambda k: k is not ModelType.SKLEARN)
        if len(kinds) < 2:
            configured = ", ".join(map(str, settings.models)) or "none"
            raise ConfigError(
                f"{settings.source}: compare needs at least two model types (configured: {configured})"
            )
        tolerance = Tolerance(min_agreement, max_proba_diff)
        pools: dict[str, ModelPool] = {}
        with ExitStack() as stack:
            for kind in kinds:
                pools[str(kind)] = load_pool(settings, kind, pool_size=1)
                stack.callback(pools[str(kind)].close)
            models: dict[str, Scorer] = {
                name: stack.enter_context(pool.borrow()) for name, pool in pools.items()
            }
            with read_frames(
                data, None if input_format is None else input_format.value, chunk_size=chunk_size
            ) as frames:
                reports = compare_frames(models, frames, tolerance, source=str(data))
        payload: dict[str, Any] = {
            "data": str(data),
            "config": str(settings.source),
            "reference": str(kinds[0]),
            "models": {name: str(pool.path) for name, pool in pools.items()},
            "comparisons": [r.as_dict() for r in reports.values()],
            "passed": all(r.passed for r in reports.values()),
        }
        if as_json:
            _print_json(payload)
        elif not quiet:
            render.parity_tables(payload["comparisons"], product=True)
        failed = [r for r in reports.values() if not r.passed]
        if failed:
            raise ParityError(
                "; ".join(f"{r.other} vs {r.reference}: {', '.join(r.failures())}" for r in failed)
            )


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

    with errors_to_exit(debug), warnings_to_stderr(quiet):
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
        trusted = _trusted(config, kind, trust)
        described = describe_file(location, kind, trusted=trusted, sha256=sha256, data=data)
        if as_json:
            _print_json(described)
        else:
            for message in described["warnings"]:
                if not quiet:
                    render.warning(message)
            render.details_table(f"model {model}", _details(described))
        if not described["loads"]:
            render.error(f"{described['error']} (the model does not load here)")
            raise typer.Exit(EXIT_MODEL)


def register(app: typer.Typer) -> None:
    """Add ``convert``, ``compare`` and ``inspect`` to ``app``."""
    app.command("convert", short_help="Convert a scikit-learn model to ONNX, with a parity report.")(convert)
    app.command("compare", short_help="Score a file with every model type and compare the answers.")(compare)
    app.command("inspect", short_help="Describe a model file: inputs, classes, sha256, versions.")(
        inspect_model
    )


# -- helpers -----------------------------------------------------------------------------------


def _trusted(config: Path | None, kind: ModelType, extra: list[str] | None) -> tuple[str, ...]:
    """Types trusted for a skops file: the config's ``[skops] trusted`` plus ``--trust``."""
    from modelrouter import ModelType, load_settings

    if kind is not ModelType.SKOPS:
        return ()
    settings: Settings = load_settings(config)
    configured = settings.models.get(ModelType.SKOPS)
    return (*(configured.trusted if configured else ()), *(extra or ()))


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
        _print_json(described)
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


def _print_json(payload: dict[str, Any]) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _conversion_line(result: dict[str, Any]) -> str:
    opset = ", ".join(f"{domain} {version}" for domain, version in sorted(result["opset"].items()))
    inputs = result["inputs"]
    if len(inputs) == 1:
        shown = f"1 input {inputs[0]['name']!r} ({inputs[0]['dtype']} × {inputs[0]['width']})"
    else:
        kinds = {d: sum(1 for i in inputs if i["dtype"] == d) for d in ("float32", "string")}
        shown = f"{len(inputs)} inputs, one per column ({kinds['float32']} float32, {kinds['string']} string)"
    found = result["classes"]
    if found is None:
        classes = ""
    elif found and isinstance(found[0], list):
        classes = f", {len(found)} outputs of {'/'.join(str(len(c)) for c in found)} classes, ZipMap off"
    else:
        classes = f", {len(found)} classes, ZipMap off"
    return f"converted {result['model']} (opset {opset}; {shown}{classes})"


def _details(d: dict[str, Any]) -> list[tuple[str, str]]:
    size = d["file_size"]
    inputs = d["inputs"]
    names = inputs["names"]
    if names is not None:
        shown_inputs = "\n".join(f"{n}: {t}" for n, t in zip(names, inputs["dtypes"], strict=False))
    else:
        shown_inputs = f"{inputs['width']} unnamed (fed by position)" if d["loads"] else "-"
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
    rows.append((f"inputs ({inputs['width']}, in order)" if d["loads"] else "inputs", shown_inputs))
    if d["graph_inputs"]:
        rows.append(
            (
                "ONNX graph inputs",
                "\n".join(f"{g['name']}: {g['type']} {_shape(g['shape'])}" for g in d["graph_inputs"]),
            )
        )
    classes = d["classes"]
    outputs = d.get("outputs") or 1
    if outputs > 1:
        rows.append(("outputs", f"{outputs} per row (prediction_0 … prediction_{outputs - 1})"))
    if not d["loads"]:
        shown_classes = "-"
    elif classes is None:
        shown_classes = "(regressor)"
    elif outputs > 1:
        shown_classes = "\n".join(
            f"output {i}: " + ("(unknown)" if c is None else ", ".join(map(str, c)))
            for i, c in enumerate(classes)
        )
    else:
        shown_classes = ", ".join(map(str, classes))
    rows.append(("classes", shown_classes))
    versions = d["versions"]
    rows.append(("versions recorded", ", ".join(f"{k} {v}" for k, v in versions.items() if v) or "-"))
    if d["opset"]:
        rows.append(("opset", ", ".join(f"{k} {v}" for k, v in sorted(d["opset"].items()))))
    return rows


def _shape(dims: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
