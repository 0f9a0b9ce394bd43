"""The scoring loop of one input: chunks read, scored by the pool's workers in order,
written to the output (and the rejects), progress reported.

:func:`score_chunks` is called by :func:`modelrouter.batch.run.score_file` once the reader,
the writers and the output schema are ready; it returns the number of chunks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
from modelrouter import DataError, ModelFaultError, ModelType, get_router
from modelrouter.backends import Prediction
from modelrouter.batch import memory
from modelrouter.batch.explaining import explained
from modelrouter.batch.input_file import InputFile
from modelrouter.batch.nulls import decimal_commas, feature_nulls
from modelrouter.batch.options import RunOptions
from modelrouter.batch.output_columns import output_batch, thresholded
from modelrouter.batch.rejects import rejects_batch, rejects_schema, score_tolerantly
from modelrouter.batch.scoring import run_ordered
from modelrouter.batch.summary import RunSummary
from modelrouter.storage.cells import to_csv_cells
from modelrouter.storage.commit import BatchOutput
from modelrouter.storage.formats import FORMATS

if TYPE_CHECKING:
    from modelrouter.explain import Explainer

__all__ = ["ProgressSink", "decimal_comma_columns", "score_chunks"]


class ProgressSink(Protocol):
    """What the scoring loop reports progress to (the shell renders it; tests count it).

    A sink may also have ``position(done, total)``: the bytes of the input read so far and
    its size, given after each chunk when they are known (CSV from a file or an object, whose
    row count is not): the shell shows a percentage and an ETA from them.
    """

    def advance(self, rows: int) -> None: ...


@dataclass(frozen=True)
class _Chunk:
    offset: int  # 0-based index of the chunk's first row in the file
    batch: pa.RecordBatch


def decimal_comma_columns(kind: ModelType, schema: pa.Schema, exclude: Sequence[str]) -> frozenset[str]:
    """The feature columns the model takes as numbers (not those it takes as text): where
    ``--decimal ,`` rewrites ``14,23`` as ``14.23``."""
    prototype = get_router().pool(kind).prototype
    resolved = prototype.schema.resolve(schema.names, exclude)
    return frozenset(
        name for name, dtype in zip(resolved, prototype.schema.dtypes, strict=False) if dtype != "string"
    )


def _report_progress(progress: ProgressSink, reader: InputFile, rows: int) -> None:
    """Rows scored, and (see :class:`ProgressSink`) the input's bytes read when known."""
    progress.advance(rows)
    position = getattr(progress, "position", None)
    if position is not None and reader.size and reader.bytes_read is not None:
        position(min(reader.bytes_read(), reader.size), reader.size)


def score_chunks(
    reader: InputFile,
    writer: BatchOutput,
    rejects: BatchOutput | None,
    schema: pa.Schema,
    kind: ModelType,
    kept: Sequence[str],
    features: frozenset[str],
    options: RunOptions,
    summary: RunSummary,
    progress: ProgressSink | None,
    *,
    started: float,
    explainer: Explainer | None = None,
    retype: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> int:
    router = get_router()
    workers = summary.workers
    # What the model is asked for, and what is written (--threshold: labels from the
    # probabilities; --with-proba: both).
    write_labels = options.mode == "predict"
    write_probabilities = options.mode == "proba" or options.with_proba
    ask_labels = write_labels and options.threshold is None
    probabilities = write_probabilities or options.threshold is not None
    exclude = [*options.keep, *reader.index_columns, *reader.unnamed_columns]
    rejected = None if rejects is None else rejects_schema(reader.schema)
    numeric_text = (
        decimal_comma_columns(kind, reader.schema, exclude) if options.decimal == "," else frozenset()
    )

    def chunks() -> Any:
        offset = 0
        for batch in reader.batches:
            yield _Chunk(offset, batch)
            offset += batch.num_rows

    def work(chunk: _Chunk) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
        # The model sees the null spellings of its feature columns as nulls; the output and
        # the rejects get chunk.batch, the text as read.
        fed = feature_nulls(chunk.batch, features) if reader.text_nulls else chunk.batch
        if numeric_text:
            fed = decimal_commas(fed, numeric_text)
        try:
            with router.acquire_model(kind) as model:

                def score(batch: pa.RecordBatch) -> Prediction:
                    result = model.run(batch, labels=ask_labels, probabilities=probabilities, exclude=exclude)
                    if options.threshold is not None:
                        result = thresholded(result, model.classes, options.threshold)
                    if not write_probabilities:
                        result = Prediction(labels=result.labels, probabilities=None)
                    return result

                if rejects is None:
                    result = score(fed)
                    why = explained(explainer, model, fed, result if ask_labels else None, exclude, options)
                    return _written(output_batch(chunk.batch, kept, result, schema, why), writer), None
                names = model.schema.resolve(fed.schema.names, exclude)
                scored = score_tolerantly(fed, score, model.schema, names)
                kept_rows = fed if not scored.rejections else fed.take(pa.array(scored.kept))
                why = explained(
                    explainer, model, kept_rows, scored.prediction if ask_labels else None, exclude, options
                )
        except (DataError, ModelFaultError) as exc:
            raise _in_file(exc, reader.name, chunk.offset) from None
        good = chunk.batch if not scored.rejections else chunk.batch.take(pa.array(scored.kept))
        bad = (
            _written(rejects_batch(chunk.batch, scored.rejections, chunk.offset, rejected), rejects)
            if scored.rejections and rejected is not None
            else None
        )
        return _written(output_batch(good, kept, scored.prediction, schema, why), writer), bad

    trimmer = memory.Trimmer()

    def consume(chunk: _Chunk, result: tuple[pa.RecordBatch, pa.RecordBatch | None]) -> None:
        batch, bad = result
        # In order, on this thread: a chunk that widens a kept column rewrites what the
        # chunks before it wrote (modelrouter.batch.kept_types).
        writer.write(batch if retype is None else retype(batch))
        if not summary.first_chunk_seconds:
            summary.first_chunk_seconds = time.perf_counter() - started
        if bad is not None and rejects is not None:
            rejects.write(bad)
            summary.rows_rejected += bad.num_rows
        summary.rows_in += chunk.batch.num_rows
        summary.rows_out += batch.num_rows
        summary.chunks += 1  # counted as it goes: an interrupted run reports it
        if progress is not None:
            _report_progress(progress, reader, chunk.batch.num_rows)
        trimmer.consumed(chunk.batch.nbytes)

    # One chunk read ahead while every worker scores one: each more in flight is a chunk of
    # memory (≈ 2.6 MiB per 32,768 rows × 20 float32 features) for no measured speed.
    window = workers + 1
    if not options.limit_native_threads or kind is ModelType.ONNX:
        # onnxruntime runs on its own intra-op pools, sized per session by the pool's thread
        # budget; inspecting the process's BLAS/OpenMP libraries would only cost time.
        return run_ordered(chunks(), work, consume, workers=workers, max_in_flight=window)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    from threadpoolctl import threadpool_limits

    # Native BLAS/OpenMP pools are process-wide: cap them so workers × threads ≤ cores.
    with threadpool_limits(limits=threads):
        return run_ordered(chunks(), work, consume, workers=workers, max_in_flight=window)


def _in_file(exc: DataError | ModelFaultError, name: str, offset: int) -> DataError | ModelFaultError:
    """A chunk's row error named with the file and its row in the file: the data's fault
    (exit 3), or the model's (exit 4) where one row makes it fail."""
    if isinstance(exc, DataError):
        return DataError(f"{name}: {exc.at_offset(offset)}", column=exc.column, row=None)
    return ModelFaultError(f"{name}: {exc.at_offset(offset)}")


def _written(batch: pa.RecordBatch, output: BatchOutput) -> pa.RecordBatch:
    """``batch`` in the types ``output`` writes (see :mod:`modelrouter.storage.cells`)."""
    fmt = output.format
    text_cells = fmt != "table" and FORMATS[fmt].text_cells  # a table keeps Arrow's types
    return to_csv_cells(batch, output.schema) if text_cells else batch
