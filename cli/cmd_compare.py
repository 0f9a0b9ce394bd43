"""``modelrouter compare``: score a file with every model type and compare the answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from modelrouter.cli import render
from modelrouter.cli.exits import errors_to_exit, warnings_to_stderr
from modelrouter.cli.options import (
    MAX_CHUNK_SIZE,
    ConfigOpt,
    DebugOpt,
    DecimalChoice,
    DecimalOpt,
    DelimiterOpt,
    InputFormatOpt,
    JsonOpt,
    MaxProbaDiffOpt,
    MinAgreementOpt,
    QuietOpt,
    complete_model_type,
    location_option,
    model_type_option,
)

if TYPE_CHECKING:
    pass

SHORT_HELP = "Score a file with every model type and compare the answers."

__all__ = ["SHORT_HELP", "compare"]


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
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = DecimalChoice.point,
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
                data,
                None if input_format is None else input_format.value,
                chunk_size=chunk_size,
                delimiter=delimiter,
                decimal=decimal.value,
                schema=pools[str(kinds[0])].prototype.schema,
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
            render.print_json(payload)
        elif not quiet:
            render.parity_tables(payload["comparisons"], product=True)
        failed = [r for r in reports.values() if not r.passed]
        if failed:
            raise ParityError(
                "; ".join(f"{r.other} vs {r.reference}: {', '.join(r.failures())}" for r in failed)
            )


def _model_types(values: list[str] | None) -> list[str] | None:
    return None if values is None else [v for v in map(model_type_option, values) if v is not None]
