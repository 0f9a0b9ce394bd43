"""A CSV writer that quotes a value only where CSV needs it (docs/specification.md §2).

pyarrow's CSV writer has three quoting styles and none of them is this one (docs/performance.md):
``needed`` quotes every string value (an id ``1`` read as text comes out ``"1"``),
``all_valid`` quotes everything, ``none`` refuses a value that holds the delimiter, a quote or
a line break. So each batch is written with ``none`` (Arrow's own fast formatting) and only
a batch that Arrow refuses that way is formatted here: every column cast to text the way
Arrow's writer casts it, the values that hold the delimiter, a quote or a line break quoted
(inner quotes doubled), nulls as empty cells, all with Arrow compute kernels. The header is
written the same way. Lines end with ``\\n``, as Arrow's do.

With ``decimal=","`` floating-point values are written with a decimal comma (``0,9997``), as
the input of a ``--decimal ,`` run wrote its numbers; other columns are written as they are
(kept columns are the input's own text).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from modelrouter.storage.writers import RowWriter, WriteStyle
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["CsvWriter", "open_csv_writer", "quote_field"]


def quote_field(text: str, delimiter: str) -> str:
    """``text`` as one CSV field: quoted (inner quotes doubled) only when it must be."""
    if delimiter in text or any(c in text for c in '"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


class CsvWriter:
    """Writes batches of one schema as CSV to ``sink`` (header first); not thread-safe.

    ``sink`` is not closed by :meth:`close` (its owner closes it: a compressed stream must
    be finished after the last row, stdout is never closed).
    """

    def __init__(
        self, sink: pa.NativeFile, schema: pa.Schema, delimiter: str = ",", decimal: str = "."
    ) -> None:
        self.sink = sink
        self.schema = schema
        self.delimiter = delimiter
        self.decimal = decimal
        self._floats = (
            [i for i, f in enumerate(schema) if pa.types.is_floating(f.type)] if decimal != "." else []
        )
        self._options = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none")
        self._needs_quotes = f'[{re.escape(delimiter)}"\\r\\n]'
        header = delimiter.join(quote_field(name, delimiter) for name in schema.names) + "\n"
        sink.write(header.encode("utf-8"))

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append ``batch``'s rows (its schema must be :attr:`schema`)."""
        if batch.num_rows == 0:
            return
        if self._floats:
            batch = self._with_decimal(batch)
        buffer = pa.BufferOutputStream()
        try:
            # Arrow formats the batch whole into memory first: a refusal writes nothing.
            pacsv.write_csv(batch, buffer, self._options)
        except pa.ArrowInvalid:
            self.sink.write(self._quoted_rows(batch))
            return
        self.sink.write(buffer.getvalue())

    def _with_decimal(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The floating-point columns as text with :attr:`decimal` for the point (Arrow's own
        shortest round-trip formatting otherwise)."""
        columns = list(batch.columns)
        for i in self._floats:
            columns[i] = pc.replace_substring(pc.cast(columns[i], pa.string()), ".", self.decimal)
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)

    def _quoted_rows(self, batch: pa.RecordBatch) -> pa.Buffer:
        cells = []
        for column in batch.columns:
            text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
            needs = pc.match_substring_regex(text, self._needs_quotes)
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
            cells.append(pc.fill_null(pc.if_else(needs, quoted, text), ""))
        rows = pc.binary_join_element_wise(*cells, self.delimiter) if len(cells) > 1 else cells[0]
        lines = pc.binary_join_element_wise(rows, "", "\n")  # each row + "\n"
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
            lines.offset : lines.offset + len(lines) + 1
        ]
        start, end = int(offsets[0]), int(offsets[-1])
        return lines.buffers()[2].slice(start, end - start)

    def close(self) -> None:
        """Flush what was written (the sink stays open)."""
        self.sink.flush()


def open_csv_writer(
    sink: str | Any, schema: pa.Schema, style: WriteStyle
) -> tuple[RowWriter, pa.NativeFile | None]:
    """The CSV factory of the format registry: a writer to ``sink`` (a local path or a
    Python stream) through its byte stream, compressed as the name says; the stream is
    returned for its owner to close."""
    from modelrouter.storage.writers import text_sink

    native = text_sink(sink, style)
    return CsvWriter(native, schema, style.delimiter, style.decimal), native
