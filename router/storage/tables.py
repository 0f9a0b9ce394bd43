"""Database tables as a run's input and output (docs/specification.md §12).

A database URL names where rows live: ``sqlite:///PATH`` (a SQLite file; ``sqlite:////abs``
for an absolute path), ``duckdb:///PATH`` (a DuckDB file) and
``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME`` (libpq's rules: ``PGPASSWORD``,
``~/.pgpass``, ``?sslmode=…``). Rows move as Arrow record batches both ways — ADBC drivers
for SQLite and PostgreSQL (binary ``COPY`` underneath), DuckDB's own Arrow interface — never
a row loop, never a whole table in memory.

Reading (:func:`open_table_reader`): ``SELECT`` of a table's columns or the user's query,
streamed batch by batch on a connection in autocommit mode (nothing is locked past the
statement). Writing (:class:`TableTarget`, then :class:`TableOutput`): opened before any row
is read — the database reached, ``--if-exists`` checked — then every batch goes into a
staging table created inside one transaction on the output's connection; the run's commit
step renames the staging table into place (``fail``, ``replace``: the old table dropped in
the same transaction) or inserts its rows into the existing table (``append``), and commits.
Any failure, and any signal, rolls that transaction back: the staging table never existed
for anyone else, and a process killed outright leaves an open transaction that the server
(PostgreSQL) or the next connection (SQLite's journal, DuckDB's WAL) rolls back. A database
file the run created itself is removed again when the run fails.

Secrets: the password of a URL is never printed. :class:`DatabaseUrl` shows itself as
``user:***@host``, and :func:`redact` masks URLs, ``password=`` settings and every password
seen by this process in any text (driver messages included) before it reaches a message.
"""

from __future__ import annotations

import os
import re
import secrets as _random
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

# The names, connections and reading live beside this module (table_urls, table_drivers,
# table_reader); they stay importable from here, where the engine and the shell import them.
from modelrouter.errors import InvalidOptionError, OutputError
from modelrouter.storage.table_drivers import Database, connect, driver_errors, reason
from modelrouter.storage.table_reader import TableReader, count_rows, open_table_reader
from modelrouter.storage.table_urls import (
    IF_EXISTS,
    DatabaseUrl,
    IfExists,
    TableName,
    is_table_url,
    redact,
    sql_identifier,
)

__all__ = [
    "IF_EXISTS",
    "DatabaseUrl",
    "IfExists",
    "TableName",
    "TableOutput",
    "TableReader",
    "TableTarget",
    "count_rows",
    "is_table_url",
    "open_table_reader",
    "redact",
]

# -- writing --------------------------------------------------------------------------------------


class TableTarget:
    """The output table of a run, opened before any row is read.

    Connects (:class:`OutputError` when the database cannot be reached), and checks
    ``if_exists``: an existing table with ``fail`` is an :class:`InvalidOptionError` for
    ``--to-table`` (a usage error, exit 2). :meth:`start` then creates the staging table
    for the output's schema.
    """

    def __init__(self, url: DatabaseUrl, table: str, if_exists: IfExists) -> None:
        self.url = url
        self.table = TableName.parse(table, option="--to-table")
        if url.kind == "sqlite" and self.table.schema is not None:
            # SQLite's one schema of a database file is "main" (its driver takes no schema).
            if self.table.schema.lower() != "main":
                raise InvalidOptionError(
                    "--to-table",
                    f"{table!r}: a SQLite database file has one schema, main; "
                    "give the table's name alone (nothing was read or written)",
                )
            self.table = TableName(None, self.table.name)
        self.if_exists = if_exists
        self.name = f"{url.shown} (table {self.table})"
        self._created_file = url.path is not None and not url.path.exists()
        self._database: Database | None = connect(url, write=True, error=OutputError)
        try:
            self.existing = self._database.exists(self.table)
            if self.existing is not None and if_exists == "fail":
                raise InvalidOptionError(
                    "--to-table",
                    f"{self.name} already exists; pass --if-exists replace or --if-exists append "
                    "(nothing was read or written)",
                )
            self._database.begin()
        except driver_errors() as exc:
            self.abort()
            raise OutputError(f"{self.name}: {reason(exc)}") from None
        except BaseException:
            self.abort()
            raise

    def start(self, schema: pa.Schema) -> TableOutput:
        """The staging table for rows of ``schema`` (created, empty, in the transaction)."""
        database = self._database
        if database is None:
            raise OutputError(f"{self.name}: the output was already closed")
        if self.if_exists == "append" and self.existing is not None:
            self._check_appendable(schema, self.existing)
        return TableOutput(self, database, schema)

    def _check_appendable(self, schema: pa.Schema, existing: pa.Schema) -> None:
        """Every output column has a column of its name, and of its kind (text, number,
        boolean, time), in the table: checked before any row is read. SQLite converts any
        value to any column's affinity, so only names are checked there."""
        missing = [c for c in schema.names if c not in existing.names]
        if missing:
            shown = ", ".join(repr(c) for c in missing)
            raise OutputError(
                f"{self.name} has no column {shown}, so the scores cannot be appended "
                f"(it has: {', '.join(repr(c) for c in existing.names)}); "
                "write to a new table or pass --if-exists replace"
            )
        if self.url.kind == "sqlite":
            return
        for column in schema:
            present = existing.field(column.name).type
            ours, theirs = _kind_of(column.type), _kind_of(present)
            if ours and theirs and ours != theirs:
                raise OutputError(
                    f"{self.name}: column {column.name!r} holds {theirs} ({present}) and the scores "
                    f"give {ours} ({column.type}) for it, so they cannot be appended; "
                    "write to a new table or pass --if-exists replace"
                )

    def abort(self) -> None:
        """Roll back and close; remove the database file if this run created it. Idempotent."""
        database, self._database = self._database, None
        if database is None:
            return
        errors = driver_errors()
        try:
            database.rollback()
        except errors:
            pass
        try:
            database.close()
        except errors:
            pass
        if self._created_file and self.url.path is not None:
            for suffix in ("", "-journal", "-wal", "-shm", ".wal"):
                try:
                    Path(str(self.url.path) + suffix).unlink()
                except OSError:
                    pass

    def _done(self) -> None:
        database, self._database = self._database, None
        if database is not None:
            try:
                database.close()
            except driver_errors():
                pass


class TableOutput:
    """Batches into a staging table; :meth:`prepare` moves them into the target and
    :meth:`publish` commits the transaction (:class:`~modelrouter.storage.commit.RunOutputs`
    calls both, in its commit step). Raises :class:`OutputError` for every database failure.
    """

    format: Literal["table"] = "table"

    def __init__(self, target: TableTarget, database: Database, schema: pa.Schema) -> None:
        self.target = target
        self.schema = schema
        self.name = target.name
        self._database = database
        self._ingest_schema = pa.schema(
            [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema]
        )
        self.staging = target.table.sibling(f"modelrouter_staging_{os.getpid()}_{_random.token_hex(4)}")
        # Created now, empty: a run that scores no rows still gets a table with its columns.
        self._guard(lambda: database.ingest(self.staging, _empty_batch(self._ingest_schema), create=True))

    def _guard(self, action: Any) -> None:
        try:
            action()
        except driver_errors() as exc:
            self.abort()
            raise OutputError(
                f"{self.name}: cannot write ({_write_reason(exc, self.schema, self.target.url.kind)})"
            ) from None
        except BaseException:
            self.abort()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one batch to the staging table."""
        if batch.num_rows == 0:
            return
        if batch.schema != self._ingest_schema:
            batch = batch.cast(self._ingest_schema)
        self._guard(lambda: self._database.ingest(self.staging, batch, create=False))

    def prepare(self) -> None:
        """Move the staged rows into the target, inside the transaction (not yet committed)."""
        target = self.target.table
        database = self._database
        columns = ", ".join(sql_identifier(c) for c in self.schema.names)

        def move() -> None:
            if self.target.if_exists == "append" and self.target.existing is not None:
                database.execute(
                    f"INSERT INTO {target.sql()} ({columns}) SELECT {columns} FROM {self.staging.sql()}"
                )
                database.execute(f"DROP TABLE {self.staging.sql()}")
                return
            if self.target.if_exists == "replace":
                database.execute(f"DROP TABLE IF EXISTS {target.sql()}")
            database.execute(f"ALTER TABLE {self.staging.sql()} RENAME TO {sql_identifier(target.name)}")

        self._guard(move)

    def publish(self) -> bool:
        """Commit: the table changes now, all at once."""
        self._guard(self._database.commit)
        self.target._done()
        return True

    def abort(self) -> None:
        """Roll everything back (the staging table with it); idempotent, never raises."""
        self.target.abort()


_UNSUPPORTED = re.compile(r"Column (\d+) has unsupported type (\w+)")


def _write_reason(exc: BaseException, schema: pa.Schema, kind: str) -> str:
    """The driver's reason; a column it counts by number (0-based) named instead."""
    text = reason(exc)
    found = _UNSUPPORTED.search(text)
    if found and int(found.group(1)) < len(schema):
        field = schema.field(int(found.group(1)))
        return (
            f"column {field.name!r} is {field.type}, which the {kind} driver cannot store; "
            "leave it out of the kept columns, or convert it before scoring"
        )
    return text


def _kind_of(kind: pa.DataType) -> str | None:
    """What a column holds, as far as a database converts between types on its own."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numbers"
    if pa.types.is_boolean(kind):
        return "booleans"
    if pa.types.is_temporal(kind):
        return "dates and times"
    return None


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
