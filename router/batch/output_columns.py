"""The output columns of a run: their schema, and the Arrow arrays built from a prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from modelrouter import (
    DataError,
)
from modelrouter.backends import OutputSpec, Prediction
from modelrouter.batch.dataio import FileFormat
from modelrouter.batch.options import Mode
from modelrouter.storage.cells import csv_schema
from modelrouter.storage.formats import FORMATS

if TYPE_CHECKING:
    pass


__all__ = [
    "arrow_array",
    "as_written",
    "label_type",
    "output_batch",
    "output_schema",
    "string_array",
    "thresholded",
]


def output_schema(
    source: pa.Schema,
    kept: Sequence[str],
    model: Any,
    mode: Mode,
    with_proba: bool = False,
    name: str = "",
    explanation: Sequence[pa.Field] = (),
) -> pa.Schema:
    """Kept columns, then one column per output (``prediction``/``prediction_<i>``) and/or
    (predict-proba, ``--with-proba``) per output class (``proba_<class>``/
    ``proba_<output>_<class>``), typed as the model declares (float32 models give float32
    columns: written without widening noise digits)."""
    spec: OutputSpec = model.outputs
    fields = [source.field(name) for name in kept]
    if mode == "predict":
        fields += [
            pa.field(name, label_type(dtype))
            for name, dtype in zip(spec.label_names(), spec.dtypes, strict=True)
        ]
    if mode == "proba" or with_proba:
        proba_type = pa.from_numpy_dtype(spec.proba_dtype)
        fields += [pa.field(name, proba_type) for name in spec.proba_names()]
    fields += explanation
    names = [f.name for f in fields]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        where = f"{name}: " if name else ""
        added = "an explanation" if clash[0] in {f.name for f in explanation} else "a prediction"
        raise DataError(
            f"{where}kept column {clash[0]!r} clashes with {added} column; rename it in the input",
            column=clash[0],
        )
    return pa.schema(fields)


def label_type(dtype: np.dtype[Any]) -> pa.DataType:
    if dtype.kind in "OUS":
        return pa.string()
    return pa.from_numpy_dtype(dtype)


def as_written(schema: pa.Schema, fmt: FileFormat) -> pa.Schema:
    """The schema a file of format ``fmt`` gets: CSV holds nested/binary columns as text."""
    return csv_schema(schema) if FORMATS[fmt].text_cells else schema


def thresholded(result: Prediction, classes: Any, threshold: float) -> Prediction:
    """Labels of a binary classifier: the positive class (``classes[1]``) where its
    probability is at least ``threshold``, else the negative one."""
    if result.probabilities is None:  # every row of the chunk was rejected
        return result
    positive = result.probabilities[:, 1] >= threshold
    return Prediction(
        labels=np.asarray(classes)[positive.astype(np.intp)], probabilities=result.probabilities
    )


def output_batch(
    batch: pa.RecordBatch,
    kept: Sequence[str],
    result: Prediction,
    schema: pa.Schema,
    explanation: Sequence[Any] = (),
) -> pa.RecordBatch:
    """Kept columns, then the prediction columns (their types and names come from ``schema``):
    the labels, then the probabilities, of those ``result`` holds; then ``explanation``'s
    columns."""
    columns: list[pa.Array] = [batch.column(name) for name in kept]
    targets = list(schema)[len(kept) :]
    values: list[Any] = []
    for part in (result.labels, result.probabilities):
        if part is not None:
            values += [part] if part.ndim == 1 else [part[:, j] for j in range(part.shape[1])]
    if values:
        values += explanation
    if not values:  # every row of the chunk was rejected
        columns += [pa.array([], type=f.type) for f in targets]
    else:
        columns += [arrow_array(v, f.type) for v, f in zip(values, targets, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def arrow_array(values: Any, kind: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of type ``kind``.

    A 1-D numeric numpy array already of that type is wrapped around its buffer
    (``pa.Array.from_buffers``; NaN stays NaN, as ``pa.array`` keeps it). That is also what
    ``pa.array`` does, but ``pa.array`` first asks pandas whether the object is one of its
    own, importing pandas (≈0.2 s) in runs that never use it (an ONNX model on Parquet).
    """
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iuf":
        try:
            same = values.dtype == np.dtype(kind.to_pandas_dtype())
        except NotImplementedError:
            same = False
        if same:
            data = np.ascontiguousarray(values)
            return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])
    if (
        isinstance(values, np.ndarray)
        and values.ndim == 1
        and values.dtype.kind in "OU"
        and kind == pa.string()
    ):
        strings = string_array(values)
        if strings is not None:
            return strings
    return pa.array(values, type=kind)


def string_array(values: npt.NDArray[Any]) -> pa.Array | None:
    """A string array built from its UTF-8 bytes and offsets (string class labels, as ONNX
    models give them), for the same reason as above; None when a value is not a string
    (None, bytes, a number) or cannot be encoded: ``pa.array`` then decides, as before."""
    try:
        encoded = [value.encode("utf-8") for value in values.tolist()]
    except (AttributeError, UnicodeEncodeError):
        return None
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        return None  # beyond a string array's 32-bit offsets
    data = b"".join(encoded)
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )
