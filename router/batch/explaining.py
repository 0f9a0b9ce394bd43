"""Explanations in the scoring pass (docs/specification.md §13): the explainer a run uses,
its background sample, and the output columns it adds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from modelrouter import (
    DataError,
    ModelPool,
)
from modelrouter.backends import Prediction
from modelrouter.batch.dataio import detect_format, open_input
from modelrouter.batch.options import DEFAULT_CHUNK_SIZE, RunOptions, default_delimiter
from modelrouter.batch.output_columns import label_type
from modelrouter.storage.formats import suffix_delimiter

if TYPE_CHECKING:
    from modelrouter.explain import Explainer, Explanation


__all__ = ["background_table", "explained", "explainer_for", "explanation_fields", "explanation_values"]


def explainer_for(pool: ModelPool, options: RunOptions) -> Explainer:
    """The exact method for the pool's model (exit 4 when there is none), with the
    ``--background`` rows read for a linear model."""
    from modelrouter.explain import explainer_for

    background = None if options.background is None else background_table(options.background, options)
    explainer = explainer_for(pool.prototype, background, exclude=options.keep)
    if background is not None and not explainer.method.uses_background:
        import warnings

        warnings.warn(
            f"--background is not used: {explainer.method.name} needs no background sample",
            stacklevel=2,
        )
    return explainer


def background_table(path: str, options: RunOptions) -> pa.Table:
    """Every row of the ``--background`` file (a sample of training rows: small)."""
    fmt = detect_format(path, None, role="input")
    reader = open_input(
        path,
        fmt,
        chunk_size=DEFAULT_CHUNK_SIZE,
        delimiter=options.delimiter or suffix_delimiter(path) or default_delimiter(options),
    )
    try:
        table = pa.Table.from_batches(list(reader.batches), schema=reader.schema)
    finally:
        reader.close()
    if table.num_rows == 0:
        raise DataError(f"{path}: the background file has no rows")
    return table


def explanation_fields(
    explainer: Explainer | None, model: Any, options: RunOptions, features: Sequence[str], source: str
) -> list[pa.Field]:
    """The explanation columns, after the predictions: ``explained_class`` (multi-class),
    ``contrib_base`` and ``contrib_<column>`` (``--explain``; an input column named ``base``
    is refused, naming it), ``reason_<i>`` and ``reason_<i>_contrib`` (``--reasons K``).
    ``source``: the input's name, for that refusal."""
    if explainer is None:
        return []
    from modelrouter.errors import InvalidOptionError
    from modelrouter.explain import contribution_columns

    fields: list[pa.Field] = []
    if explainer.multiclass:
        fields.append(pa.field("explained_class", label_type(model.outputs.dtypes[0])))
    if options.explain:
        fields += [pa.field(name, pa.float64()) for name in contribution_columns(model, features, source)]
    if options.reasons is not None:
        if options.reasons > len(features):
            raise InvalidOptionError(
                "--reasons", f"{options.reasons} reasons asked; the model has {len(features)} input columns"
            )
        for i in range(1, options.reasons + 1):
            fields += [pa.field(f"reason_{i}", pa.string()), pa.field(f"reason_{i}_contrib", pa.float64())]
    return fields


def explained(
    explainer: Explainer | None,
    model: Any,
    fed: pa.RecordBatch,
    scored: Prediction | None,
    exclude: Sequence[str],
    options: RunOptions,
) -> list[Any]:
    """The explanation columns' values for the rows of ``fed`` (``scored``: the model's own
    labels for them, which a multi-class explanation is about)."""
    if explainer is None:
        return []
    labels = scored.labels if scored is not None and explainer.multiclass else None
    return explanation_values(explainer.explain(model, fed, exclude=exclude, labels=labels), options)


def explanation_values(explanation: Explanation, options: RunOptions) -> list[Any]:
    """The values of :func:`explanation_fields`'s columns, in the same order."""
    values: list[Any] = []
    if explanation.explained_class is not None:
        values.append(explanation.explained_class)
    if options.explain:
        values.append(explanation.base)
        values += [explanation.contributions[:, j] for j in range(explanation.contributions.shape[1])]
    if options.reasons is not None:
        names, contributions = explanation.reasons(options.reasons)
        for i in range(options.reasons):
            values += [names[:, i], np.ascontiguousarray(contributions[:, i])]
    return values
