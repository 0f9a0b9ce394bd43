"""Reading a database table or query as a run's input (docs/specification.md §12).

``SELECT`` of a table's columns or the user's query, streamed batch by batch as Arrow record
batches on a connection in autocommit mode (nothing is locked past the statement) — never a
row loop, never a whole table in memory.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
from modelrouter.errors import DataError, InvalidOptionError
from modelrouter.storage.table_drivers import Database, connect, driver_errors, reason
from modelrouter.storage.table_urls import DatabaseUrl, TableName, sql_identifier

__all__ = ["TableReader", "count_rows", "open_table_reader"]


@dataclass
class TableReader:
    """An input table or query: its schema, every column it has, and its batches."""

    name: str
    schema: pa.Schema
    all_columns: tuple[str, ...]
    batches: Iterator[pa.RecordBatch]
    close: Callable[[], None]


def open_table_reader(
    url: DatabaseUrl,
    *,
    table: str | None,
    query: str | None,
    batch_rows: int,
    columns: list[str] | None = None,
) -> TableReader:
    """Open ``table`` (only ``columns`` of it, when given and present) or ``query`` for reading.

    Raises :class:`DataError` when the database cannot be reached, refuses the login, or
    answers the query with an error (a missing table, SQL syntax): its own first line.
    Batches are read as they are asked for; a failure while reading is a :class:`DataError`
    saying after which row.
    """
    database = connect(url, write=False, error=DataError)
    if table is not None:
        parsed = TableName.parse(table, option="--table")
        name = f"{url.shown} (table {parsed})"
        source = f"SELECT * FROM {parsed.sql()}"
    else:
        assert query is not None
        name = f"{url.shown} (query)"
        source = query
    errors = driver_errors()
    try:
        if table is not None:
            source, every = _table_source(database, parsed, columns)
        reader = database.stream(source, batch_rows)
        if table is None:
            every = reader.schema
        first: pa.RecordBatch | None = None
        if url.kind == "sqlite":
            reader, first = _typed_sqlite(database, source, batch_rows, reader)
    except _FirstBatchError as exc:
        _close_all(reader, database)
        raise DataError(
            f"{name}: read failed after data row 0 ({_read_reason(exc.cause, _plain_schema(reader.schema))})"
        ) from None
    except errors as exc:
        database.close()
        raise DataError(f"{name}: {reason(exc)}") from None
    except BaseException:
        database.close()
        raise
    schema = _plain_schema(reader.schema)
    all_columns = tuple(every.names)
    repeated = _first_repeated(schema.names)
    if repeated is not None:  # a file with a header named twice is refused alike
        _close_all(reader, database)
        raise DataError(
            f"{name}: duplicate column name {repeated!r} (name it once, with AS, in --query)",
            column=repeated,
        )

    def batches() -> Iterator[pa.RecordBatch]:
        delivered = 0
        try:
            for batch in itertools.chain([] if first is None else [first], reader):
                if batch.num_rows:
                    delivered += batch.num_rows
                    yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
        except errors as exc:
            raise DataError(
                f"{name}: read failed after data row {delivered} ({_read_reason(exc, schema)})"
            ) from None
        finally:
            close()

    closed = False

    def close() -> None:
        nonlocal closed
        if closed:
            return
        closed = True
        _close_all(reader, database)

    return TableReader(name, schema, all_columns, batches(), close)


def _table_source(database: Database, table: TableName, columns: list[str] | None) -> tuple[str, pa.Schema]:
    """The ``SELECT`` of ``table``'s wanted ``columns`` (all when none of them is there,
    for the error to list them), and every column it has: asked first, without rows."""
    source = f"SELECT * FROM {table.sql()}"
    head = database.stream(source + " LIMIT 0", 1)
    every = head.schema
    head.close()
    wanted = every.names if columns is None else [c for c in every.names if c in set(columns)]
    if wanted and wanted != every.names:
        source = f"SELECT {', '.join(sql_identifier(c) for c in wanted)} FROM {table.sql()}"
    return source, every


def _first_repeated(names: list[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _close_all(reader: pa.RecordBatchReader, database: Database) -> None:
    """Close a reader and its connection, whatever the driver says on the way."""
    errors = driver_errors()
    try:
        reader.close()
    except errors:
        pass
    finally:
        try:
            database.close()
        except errors:
            pass


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


#: A value of each SQLite storage class, typed as the driver types it (``typeof()`` names).
_SQLITE_SAMPLES = {"real": "0.0", "text": "''", "blob": "x''"}


class _FirstBatchError(Exception):
    """Reading the first batch failed (reported as a read failure after data row 0)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _typed_sqlite(
    database: Database, source: str, batch_rows: int, reader: pa.RecordBatchReader
) -> tuple[pa.RecordBatchReader, pa.RecordBatch | None]:
    """The reader again, typed by the first values, when the first batch left a column untyped.

    SQLite types values, not columns, and the driver types each column from its first batch:
    a column whose first batch is all NULL (a column added by ``ALTER TABLE``, a ``CAST`` of
    leading NULLs) is typed INT64, and its first real, text or blob value fails the read.
    Such a column's type is the storage class of its first non-NULL value (one query per
    column, stopping at that value); when that is not an integer, the query is read again
    behind one row holding a value of that class (so the driver types the column from it),
    and that row is dropped. Anything else keeps the reader as it is.

    Returns the reader and its first batch, already read (``None``: no rows).
    """
    try:
        first = _next_batch(reader)
    except driver_errors() as exc:
        raise _FirstBatchError(exc) from None
    if first is None:
        return reader, None
    untyped = [
        field.name
        for field, column in zip(first.schema, first.columns, strict=True)
        if field.type == pa.int64() and column.null_count == len(column)
    ]
    if first.num_rows < batch_rows or not untyped or len(set(first.schema.names)) != first.num_columns:
        return reader, first  # the whole input was one batch, or nothing is untyped
    # A line break before each closing parenthesis: a query ending with a -- comment.
    body = source.strip().rstrip(";") + "\n"
    try:
        samples = _first_value_samples(database, body, untyped)
        if not samples:
            return reader, first
        typed = ", ".join(f"{samples.get(c, 'NULL')} AS {sql_identifier(c)}" for c in first.schema.names)
        again = database.stream(f"SELECT {typed} UNION ALL SELECT * FROM ({body})", batch_rows)
    except driver_errors():
        # A query this cannot wrap (not a plain SELECT): read as the driver types it, as before.
        return reader, first
    reader.close()
    head = _next_batch(again)
    return again, None if head is None else head.slice(1)


def _first_value_samples(database: Database, body: str, columns: list[str]) -> dict[str, str]:
    """For each of ``columns`` whose first non-NULL value in ``body`` is not an integer, a
    literal of that value's storage class (one query per column, stopping at that value)."""
    samples: dict[str, str] = {}
    for column in columns:
        name = sql_identifier(column)
        probe = database.stream(f"SELECT typeof({name}) FROM ({body}) WHERE {name} IS NOT NULL LIMIT 1", 1)
        try:
            found = probe.read_all()
        finally:
            probe.close()
        kind = found.column(0)[0].as_py() if found.num_rows else None
        if kind in _SQLITE_SAMPLES:
            samples[column] = _SQLITE_SAMPLES[kind]
    return samples


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """The schema without the drivers' per-field metadata (``POSTGRESQL:type``…): a kept
    column written to a file is the column, not its driver's notes."""
    return pa.schema([f.remove_metadata() for f in schema])


_SQLITE_MISMATCH = re.compile(r"Type mismatch in column (\d+): expected (\w+) but got (\w+)")


def _read_reason(exc: BaseException, schema: pa.Schema) -> str:
    """The driver's reason; SQLite's per-value types explained with the column's name."""
    text = reason(exc)
    found = _SQLITE_MISMATCH.search(str(exc))
    if found and int(found.group(1)) < len(schema):
        column = schema.names[int(found.group(1))]
        return (
            f"column {column!r} holds a {found.group(3)} value where its first rows were "
            f"{found.group(2)}: SQLite types each value, not the column; CAST it in --query"
        )
    return text


def count_rows(url: DatabaseUrl, table: str) -> int | None:
    """The table's row count where the database knows it cheaply (DuckDB keeps it; SQLite
    counts its smallest index), for a progress bar's ETA; ``None`` elsewhere (PostgreSQL
    would scan the table) and on any error (the run reports errors itself)."""
    if url.kind == "postgresql":
        return None
    try:
        database = connect(url, write=False, error=DataError)
    except DataError:
        return None
    try:
        parsed = TableName.parse(table, option="--table")
        reader = database.stream(f"SELECT count(*) FROM {parsed.sql()}", 1)
        value = reader.read_all().column(0)[0].as_py()
        return int(value) if value is not None else None
    except InvalidOptionError:
        return None
    except driver_errors():
        return None
    finally:
        database.close()
