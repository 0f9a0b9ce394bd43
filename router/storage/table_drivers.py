"""Connections to the databases a run reads and writes, whatever the driver.

SQLite and PostgreSQL through their ADBC drivers, DuckDB through its own Arrow interface
(docs/specification.md §12): :func:`connect` opens one behind the :class:`Database`
protocol, reading connections in autocommit mode, a writing one holding one transaction.
A driver's errors become the caller's error class with the database's own first line
(:func:`reason`), passwords masked.
"""

from __future__ import annotations

import re
from typing import Any, Protocol
from urllib.parse import quote

import pyarrow as pa
from modelrouter.storage.table_urls import DatabaseUrl, Kind, TableName, redact, sql_identifier

__all__ = ["Database", "connect", "driver_errors", "reason"]

#: What to install when a driver is missing.
_EXTRA = "pip install 'modelrouter[sql]'"


#: ADBC's status prefix (``NOT_FOUND: ``), the driver's tag and its wrapper phrases: what is
#: left is the database's own words.
_NOISE = (
    re.compile(r"^[A-Z_]+: "),
    re.compile(r"^\[(?:libpq|SQLite|PostgreSQL)\]\s*"),
    re.compile(r"^Failed to (?:prepare|execute) query(?: '.*?')?: "),
    re.compile(r"^Failed to connect: "),
    re.compile(r"^ERROR:\s+"),
    re.compile(r"^FATAL:\s+"),
)


def reason(exc: BaseException) -> str:
    """The database's own first line of an error, without the driver's wrapping; redacted."""
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    changed = True
    while changed:
        changed = False
        for pattern in _NOISE:
            shorter = pattern.sub("", line, count=1)
            if shorter != line:
                line, changed = shorter.strip(), True
    if "ERROR:" in line:  # libpq quotes the server's message after its own context
        line = line.split("ERROR:", 1)[1].strip()
    return redact(line or type(exc).__name__)


def driver_errors() -> tuple[type[BaseException], ...]:
    """The exception classes the drivers raise (those installed), plus Arrow's and OSError
    (an ADBC stream reports a failure while it is read as an OSError)."""
    kinds: list[type[BaseException]] = [OSError, pa.ArrowException, _NoRows]
    try:
        import adbc_driver_manager

        kinds.append(adbc_driver_manager.Error)
    except ImportError:
        pass
    try:
        import duckdb

        kinds.append(duckdb.Error)
    except ImportError:
        pass
    return tuple(kinds)


def _missing_driver(kind: str, package: str, error: type[Exception], shown: str) -> Exception:
    return error(f"{shown}: reading and writing {kind} tables needs the {package} package ({_EXTRA})")


# -- connections ----------------------------------------------------------------------------------


class Database(Protocol):
    """One connection, whatever the driver (:class:`_Adbc`, :class:`_DuckDb`)."""

    def stream(self, sql: str, batch_rows: int) -> pa.RecordBatchReader: ...

    def exists(self, table: TableName) -> pa.Schema | None: ...

    def execute(self, sql: str) -> None: ...

    def ingest(self, table: TableName, batch: pa.RecordBatch, *, create: bool) -> None: ...

    def begin(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class _Adbc:
    """SQLite and PostgreSQL through their ADBC drivers (DB-API wrappers)."""

    def __init__(self, kind: Kind, connection: Any) -> None:
        self.kind = kind
        self.connection = connection
        self.cursor = connection.cursor()
        #: A reader's stream lives as long as its cursor: kept until the connection closes.
        self._readers: list[Any] = []

    def stream(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        cursor = self.connection.cursor()
        self._readers.append(cursor)
        if self.kind == "sqlite":
            # The driver types each column from the first batch it reads: a batch of a chunk's
            # rows types it from as many rows as the run scores at once.
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        cursor.execute(sql)
        reader: pa.RecordBatchReader = cursor.fetch_record_batch()
        return reader

    def exists(self, table: TableName) -> pa.Schema | None:
        import adbc_driver_manager

        try:
            schema: pa.Schema = self.connection.adbc_get_table_schema(
                table.name, db_schema_filter=table.schema
            )
        except adbc_driver_manager.Error as exc:
            if getattr(exc, "status_code", None) == adbc_driver_manager.AdbcStatusCode.NOT_FOUND:
                return None
            raise
        return schema

    def execute(self, sql: str) -> None:
        self.cursor.execute(sql)

    def ingest(self, table: TableName, batch: pa.RecordBatch, *, create: bool) -> None:
        self.cursor.adbc_ingest(
            table.name, batch, mode="create" if create else "append", db_schema_name=table.schema
        )

    def begin(self) -> None:
        # Autocommit is off: a transaction is open from the connection's start (and again
        # after each rollback); forget whatever the checks before did in it.
        self.connection.rollback()

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def close(self) -> None:
        try:
            for cursor in [*self._readers, self.cursor]:
                cursor.close()
        finally:
            self._readers = []
            self.connection.close()


class _NoRows(Exception):
    """A query that returns no result at all (a statement, not a query)."""


class _DuckDb:
    """DuckDB through its own Python API: Arrow in (a registered batch), Arrow out."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def stream(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        relation = self.connection.sql(sql)
        if relation is None:  # a statement that returns no rows (SET, CREATE…): it has run
            raise _NoRows("the query returns no rows: it is not a SELECT")
        # DuckDB 2 names it to_arrow_reader, 1.x fetch_arrow_reader (the other one warns).
        make = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        reader: pa.RecordBatchReader = make(batch_rows)
        return reader

    def _run(self, sql: str, parameters: list[str] | None = None) -> list[Any]:
        """Run one statement to its end (DuckDB 2 refuses new work while a result is open)."""
        rows: list[Any] = self.connection.execute(sql, parameters).fetchall()
        return rows

    def exists(self, table: TableName) -> pa.Schema | None:
        schema_test = "?" if table.schema is not None else "current_schema()"
        found = self._run(
            "SELECT count(*) FROM information_schema.tables "
            f"WHERE table_name = ? AND table_schema = {schema_test}",
            [table.name] if table.schema is None else [table.name, table.schema],
        )
        if not found or not found[0][0]:
            return None
        relation = self.connection.sql(f"SELECT * FROM {table.sql()} LIMIT 0")
        make = getattr(relation, "to_arrow_table", None) or relation.arrow
        schema: pa.Schema = make().schema
        return schema

    def execute(self, sql: str) -> None:
        self._run(sql)

    def ingest(self, table: TableName, batch: pa.RecordBatch, *, create: bool) -> None:
        view = f"modelrouter_batch_{id(batch):x}"
        self.connection.register(view, batch)
        try:
            if create:
                self._run(f"CREATE TABLE {table.sql()} AS SELECT * FROM {sql_identifier(view)}")
            else:
                self._run(f"INSERT INTO {table.sql()} SELECT * FROM {sql_identifier(view)}")
        finally:
            self.connection.unregister(view)

    def begin(self) -> None:
        self._run("BEGIN TRANSACTION")

    def commit(self) -> None:
        self._run("COMMIT")

    def rollback(self) -> None:
        self._run("ROLLBACK")

    def close(self) -> None:
        self.connection.close()


def connect(url: DatabaseUrl, *, write: bool, error: type[Exception]) -> Database:
    """A connection to ``url``; ``error`` (:class:`DataError` for the input,
    :class:`OutputError` for ``-o``) when the database cannot be reached or refuses the login.

    Reading connections are in autocommit mode; a writing one holds one transaction."""
    shown = url.shown
    if url.kind in ("sqlite", "duckdb"):
        assert url.path is not None
        if not write and not url.path.is_file():
            what = "is a directory, not a database file" if url.path.is_dir() else "database file not found"
            raise error(f"{shown}: {what}")
        if write and not url.path.parent.is_dir() and str(url.path.parent):
            raise error(f"{shown}: output folder {str(url.path.parent)!r} does not exist")
    try:
        if url.kind == "duckdb":
            try:
                import duckdb
            except ImportError:
                raise _missing_driver("DuckDB", "duckdb", error, shown) from None
            assert url.path is not None
            return _DuckDb(duckdb.connect(str(url.path)))
        if url.kind == "sqlite":
            try:
                import adbc_driver_sqlite.dbapi as sqlite_dbapi
            except ImportError:
                raise _missing_driver("SQLite", "adbc-driver-sqlite", error, shown) from None
            assert url.path is not None
            # Read-only for reading: a reading run never creates or changes the file.
            target = str(url.path) if write else "file:" + quote(str(url.path.resolve())) + "?mode=ro"
            return _Adbc("sqlite", sqlite_dbapi.connect(target, autocommit=not write))
        try:
            import adbc_driver_postgresql.dbapi as pg_dbapi
        except ImportError:
            raise _missing_driver("PostgreSQL", "adbc-driver-postgresql", error, shown) from None
        return _Adbc("postgresql", pg_dbapi.connect(url.raw, autocommit=not write))
    except driver_errors() as exc:
        raise error(f"{shown}: cannot connect ({reason(exc)})") from None


# -- reading --------------------------------------------------------------------------------------
