"""``modelrouter convert``: a model to ONNX, checked against the original before it is kept."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from modelrouter.cli import render
from modelrouter.cli.exits import errors_to_exit, warnings_to_stderr
from modelrouter.cli.options import (
    ConfigOpt,
    DebugOpt,
    InputFormatOpt,
    JsonOpt,
    MaxProbaDiffOpt,
    MinAgreementOpt,
    QuietOpt,
    TrustOpt,
    checked_sha256,
    complete_model_type,
    location_option,
    model_file_policy,
    model_type_option,
)

if TYPE_CHECKING:
    from modelrouter.tools.convert import ConvertResult

SHORT_HELP = "Convert a scikit-learn model to ONNX, with a parity report."

__all__ = ["SHORT_HELP", "convert"]


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
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256",
            callback=checked_sha256,
            metavar="HEX",
            help="Refuse to load MODEL unless its sha256 is this hex digest (default: the "
            "config's pin when MODEL is the configured file of its type).",
        ),
    ] = None,
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
        _check_opset(opset, debug)
    with errors_to_exit(debug), warnings_to_stderr(quiet):
        from modelrouter import ModelType
        from modelrouter.backends.base import read_model_bytes
        from modelrouter.locations import is_uri
        from modelrouter.storage.run_paths import PathConflict
        from modelrouter.tools.convert import convert_model
        from modelrouter.tools.parity import Tolerance

        kind = ModelType(model_type) if model_type else ModelType.from_path(model)
        location: Path | str = model if is_uri(model) else Path(model)
        pin: str | None = None
        trusted: tuple[str, ...] = ()
        data = None
        if kind is not ModelType.ONNX:  # (convert_model refuses ONNX, naming it)
            data = read_model_bytes(location, None)
            pin, trusted = model_file_policy(config, kind, location, data, trust)
        try:
            result = convert_model(
                location,
                None if output is None else output if is_uri(output) else Path(output),
                model_type=kind,
                trusted=trusted,
                opset=opset,
                sample=sample,
                input_format=None if input_format is None else input_format.value,
                tolerance=Tolerance(min_agreement, max_proba_diff),
                sha256=sha256 or pin,
                data=data,
            )
        except PathConflict as exc:  # -o names the model or the sample: a usage error
            raise typer.BadParameter(str(exc), param_hint=exc.option) from None
        _report(result, model, as_json=as_json, quiet=quiet)


def _check_opset(opset: int, debug: bool) -> None:
    """Refuse ``--opset`` above what skl2onnx, onnx and the installed onnxruntime all support."""
    with errors_to_exit(debug):
        from modelrouter.tools.convert import opset_limits

        limits = opset_limits()
    if opset > limits.target:
        shown = ", ".join(f"{k} {v}" for k, v in limits.as_dict().items())
        raise typer.BadParameter(
            f"{opset} is above the supported maximum {limits.target} ({shown})", param_hint="--opset"
        )


def _report(result: ConvertResult, model: str, *, as_json: bool, quiet: bool) -> None:
    """The conversion's report (JSON, or notes and parity tables on stderr), then its verdict.

    Raises :class:`~modelrouter.tools.parity.ParityError` when the parity check failed (the
    file was not written); the report is printed first so the failure can be read."""
    from modelrouter.tools.parity import ParityError

    if as_json:
        render.print_json(result.as_dict())
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
    if quiet or as_json:
        return
    if result.parity is not None:
        render.note(f"parity within tolerance; wrote {result.output}")
    else:
        render.note(f"wrote {result.output}")


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
