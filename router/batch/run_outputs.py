"""Where a run writes and how: its output (a file, an object, stdout, a database table) and
format, the rejects file, each one's write style; all checked before a model loads.

Plain library code used by :func:`modelrouter.batch.run.score_file`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

import pyarrow as pa
from modelrouter.batch.dataio import FileFormat, InputFile, detect_format
from modelrouter.batch.kept_types import KeptTypes
from modelrouter.batch.options import RunOptions, default_delimiter
from modelrouter.batch.output_columns import as_written
from modelrouter.batch.rejects import rejects_schema
from modelrouter.batch.targets import rejects_location, resolve_output_location
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import AtomicOutput, BatchOutput, check_writable, open_output
from modelrouter.storage.formats import FORMATS
from modelrouter.storage.location import DataLocation
from modelrouter.storage.tables import DatabaseUrl, TableTarget
from modelrouter.storage.writers import WriteStyle

__all__ = [
    "check_outputs_writable",
    "kept_types",
    "open_rejects",
    "output_target",
    "rejects_target",
    "write_style",
]


def output_target(
    options: RunOptions, opened: ExitStack
) -> tuple[DataLocation, FileFormat, TableTarget | None]:
    """Where the predictions go, in which format, and the database table when they go to
    one (aborted by ``opened`` unless the run commits it)."""
    source = options.input_location
    output = options.output_location
    if output is None or not output.is_table:
        output = resolve_output_location(source, output)
        # stdout has no name to tell the format by: CSV unless --output-format says
        # otherwise (never another format than asked).
        if output.is_stream:
            return output, _stdout_format(options), None
        return output, detect_format(output, options.output_format, role="output"), None
    assert options.to_table is not None  # checked with the options (option_checks.tables)
    # Reached, and --if-exists checked, before the models load and any row is read.
    table = TableTarget(
        DatabaseUrl.parse(output.text, option="--output"),
        options.to_table,
        options.if_exists or "fail",
    )
    opened.callback(table.abort)  # a no-op once the run committed
    # (the format is unused: a table keeps Arrow's types)
    return DataLocation(table.name, "table"), "parquet", table


def check_outputs_writable(options: RunOptions, output: DataLocation, table: TableTarget | None) -> None:
    """The output file and the rejects file can be written: a missing bucket, a folder
    missing or a directory in the way fail before the models load and any row is read."""
    rejects = options.rejects_location
    if rejects is None and table is None and options.on_error == "skip" and not output.is_stream:
        rejects = rejects_location(output)
    for path in (None if table is not None else output, rejects):
        if path is not None:
            storage.check_output(path)
            check_writable(path)


def rejects_target(options: RunOptions, output: DataLocation) -> DataLocation | None:
    """Where rejected rows go with ``--on-error skip`` (``--rejects``, else next to the
    output); ``None`` in the other modes. :class:`ConfigError` when the output is stdout
    and no ``--rejects`` is given."""
    if options.on_error != "skip":
        return None
    if options.rejects is None and output.is_stream:
        from modelrouter import ConfigError

        raise ConfigError("--rejects is required with --on-error skip and -o -")
    return options.rejects_location or rejects_location(output)


def open_rejects(
    at: DataLocation, read: pa.Schema, options: RunOptions, made_from: dict[str, str]
) -> BatchOutput:
    """The rejects file opened (uncommitted): every column as read, and why each row failed."""
    rejects_format = detect_format(at, None, role="output", option="--rejects")
    rejected = rejects_schema(read)
    return open_output(
        at,
        rejects_format,
        as_written(rejected, rejects_format),
        write_style(at, rejects_format, options, made_from),
    )


def kept_types(
    options: RunOptions, reader: InputFile, writer: BatchOutput, kept: Sequence[str]
) -> KeptTypes | None:
    """What types the kept CSV columns of a Parquet file written to a local path (one that can
    be rewritten until the commit); ``None`` for every other output (docs/formats.md)."""
    if options.kept_types and reader.text_nulls and isinstance(writer, AtomicOutput) and writer.rewritable:
        return KeptTypes(writer, kept)
    return None


def _stdout_format(options: RunOptions) -> FileFormat:
    """What ``-o -`` writes: the format ``--output-format`` names, else CSV (never another
    format than asked)."""
    return options.output_format or "csv"


def write_style(
    path: DataLocation,
    fmt: FileFormat,
    options: RunOptions,
    metadata: dict[str, str],
    plain: frozenset[str] = frozenset(),
) -> WriteStyle:
    """How the output at ``path`` is written: its delimiter and compression (a text format;
    ``-`` is uncompressed) or its page compression, provenance metadata and columns written
    without a dictionary (Parquet)."""
    if not FORMATS[fmt].text:
        return WriteStyle(parquet_compression=options.compression or "snappy", metadata=metadata, plain=plain)
    return WriteStyle(
        delimiter=options.delimiter or path.delimiter or default_delimiter(options),
        decimal=options.decimal,
        compression=path.compression,
    )
