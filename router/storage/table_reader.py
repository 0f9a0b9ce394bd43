"""Reading a database table or query as a run's input (docs/specification.md §12).

``SELECT`` of a table's columns or the user's query, streamed batch by batch as Arrow record
batches on a connection in autocommit mode (nothing is locked past the statement) — never a
row loop, never a whole table in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
from modelrouter.errors import DataError, InvalidOptionError
from modelrouter.storage.table_drivers import connect, driver_errors, reason
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
            # The table's columns first (no rows): only those the run needs are then read.
            head = database.stream(source + " LIMIT 0", 1)
            every = head.schema
            head.close()
            wanted = every.names if columns is None else [c for c in every.names if c in set(columns)]
            if wanted and wanted != every.names:  # (none wanted: all, for the error to list)
                source = f"SELECT {', '.join(sql_identifier(c) for c in wanted)} FROM {parsed.sql()}"
        reader = database.stream(source, batch_rows)
        if table is None:
            every = reader.schema
    except errors as exc:
        database.close()
        raise DataError(f"{name}: {reason(exc)}") from None
    except BaseException:
        database.close()
        raise
    schema = _plain_schema(reader.schema)
    all_columns = tuple(every.names)

    def batches() -> Iterator[pa.RecordBatch]:
        delivered = 0
        try:
            for batch in reader:
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
        try:
            reader.close()
        except errors:
            pass
        finally:
            try:
                database.close()
            except errors:
                pass

    return TableReader(name, schema, all_columns, batches(), close)


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
