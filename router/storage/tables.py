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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow as pa
from modelrouter.errors import DataError, InvalidOptionError, OutputError

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

Kind = Literal["sqlite", "duckdb", "postgresql"]
IfExists = Literal["fail", "replace", "append"]
#: The values of ``--if-exists``, the default first.
IF_EXISTS: tuple[IfExists, ...] = ("fail", "replace", "append")

_SCHEMES: dict[str, Kind] = {
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "postgresql": "postgresql",
    "postgres": "postgresql",
}
#: What to install when a driver is missing.
_EXTRA = "pip install 'modelrouter[sql]'"


def is_table_url(text: object) -> bool:
    """True for ``sqlite://…``, ``duckdb://…``, ``postgresql://…`` (or ``postgres://…``)."""
    if not isinstance(text, str):
        return False
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in _SCHEMES


# -- secrets --------------------------------------------------------------------------------------

#: Passwords found in the URLs this process was given: masked wherever they appear.
_SECRETS: set[str] = set()
#: ``scheme://user:password@`` (the password part is masked).
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
#: ``password=…`` in a URL's query or a libpq keyword/value string.
_PASSWORD_SETTING = re.compile(r"(\bpassword\s*=\s*)('[^']*'|[^&\s]*)", re.IGNORECASE)
#: Shorter secrets are masked only inside URLs and settings: masking every "ab" in a message
#: would garble it without protecting anything.
_MIN_MASKED = 4


def redact(text: str) -> str:
    """``text`` with every password masked as ``***`` (URLs keep ``user:***@host``)."""
    text = _USERINFO.sub(r"\1:***@", text)
    text = _PASSWORD_SETTING.sub(r"\1***", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _remember_secret(secret: str | None) -> None:
    if secret and len(secret) >= _MIN_MASKED:
        _SECRETS.add(secret)
        _SECRETS.add(quote(secret, safe=""))


# -- names ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL; ``str()`` and ``repr()`` never show its password."""

    kind: Kind
    #: The URL as given, password included: only ever handed to the driver.
    raw: str = field(repr=False)
    #: SQLite/DuckDB: the database file (relative to the working directory, or absolute).
    path: Path | None
    #: The URL with its password masked: what messages, stats and metadata show.
    shown: str

    @classmethod
    def parse(cls, text: str, *, option: str) -> DatabaseUrl:
        """Parse ``text``; :class:`InvalidOptionError` (for ``option``) when it names no database."""
        scheme, _, rest = text.partition("://")
        kind = _SCHEMES.get(scheme.lower())
        if kind is None:
            raise InvalidOptionError(option, f"{redact(text)}: not a database URL")
        if kind == "postgresql":
            try:
                parts = urlsplit(text)
                password = parts.password
            except ValueError as exc:
                raise InvalidOptionError(option, f"{redact(text)}: not a valid URL ({exc})") from None
            _remember_secret(None if password is None else unquote(password))
            for key, value in parse_qsl(parts.query):
                if key.lower() == "password":
                    _remember_secret(value)
            return cls(kind, text, None, redact(text))
        if not rest.startswith("/") or rest in ("/", "//"):
            raise InvalidOptionError(
                option,
                f"{text}: a {scheme}:// URL names a local database file: {scheme}:///relative/path "
                f"or {scheme}:////absolute/path",
            )
        return cls(kind, text, Path(rest[1:]), text)

    def __str__(self) -> str:
        return self.shown


@dataclass(frozen=True)
class TableName:
    """``name`` or ``schema.name``, as given; quoted exactly (case kept) in SQL."""

    schema: str | None
    name: str

    @classmethod
    def parse(cls, text: str, *, option: str) -> TableName:
        parts = text.split(".")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise InvalidOptionError(option, f"{text!r} is not a table name: give NAME or SCHEMA.NAME")
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        return cls(None, parts[0])

    def sql(self) -> str:
        return ".".join(_quote(p) for p in (self.schema, self.name) if p is not None)

    def sibling(self, name: str) -> TableName:
        """Another table in the same schema."""
        return TableName(self.schema, name)

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# -- driver errors ----------------------------------------------------------------------------------

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


def _reason(exc: BaseException) -> str:
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


def _driver_errors() -> tuple[type[BaseException], ...]:
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


class _Database(Protocol):
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
                self._run(f"CREATE TABLE {table.sql()} AS SELECT * FROM {_quote(view)}")
            else:
                self._run(f"INSERT INTO {table.sql()} SELECT * FROM {_quote(view)}")
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


def _connect(url: DatabaseUrl, *, write: bool, error: type[Exception]) -> _Database:
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
    except _driver_errors() as exc:
        raise error(f"{shown}: cannot connect ({_reason(exc)})") from None


# -- reading --------------------------------------------------------------------------------------


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
    database = _connect(url, write=False, error=DataError)
    if table is not None:
        parsed = TableName.parse(table, option="--table")
        name = f"{url.shown} (table {parsed})"
        source = f"SELECT * FROM {parsed.sql()}"
    else:
        assert query is not None
        name = f"{url.shown} (query)"
        source = query
    errors = _driver_errors()
    try:
        if table is not None:
            # The table's columns first (no rows): only those the run needs are then read.
            head = database.stream(source + " LIMIT 0", 1)
            every = head.schema
            head.close()
            wanted = every.names if columns is None else [c for c in every.names if c in set(columns)]
            if wanted and wanted != every.names:  # (none wanted: all, for the error to list)
                source = f"SELECT {', '.join(_quote(c) for c in wanted)} FROM {parsed.sql()}"
        reader = database.stream(source, batch_rows)
        if table is None:
            every = reader.schema
    except errors as exc:
        database.close()
        raise DataError(f"{name}: {_reason(exc)}") from None
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
    reason = _reason(exc)
    found = _SQLITE_MISMATCH.search(str(exc))
    if found and int(found.group(1)) < len(schema):
        column = schema.names[int(found.group(1))]
        return (
            f"column {column!r} holds a {found.group(3)} value where its first rows were "
            f"{found.group(2)}: SQLite types each value, not the column; CAST it in --query"
        )
    return reason


def count_rows(url: DatabaseUrl, table: str) -> int | None:
    """The table's row count where the database knows it cheaply (DuckDB keeps it; SQLite
    counts its smallest index), for a progress bar's ETA; ``None`` elsewhere (PostgreSQL
    would scan the table) and on any error (the run reports errors itself)."""
    if url.kind == "postgresql":
        return None
    try:
        database = _connect(url, write=False, error=DataError)
    except DataError:
        return None
    try:
        parsed = TableName.parse(table, option="--table")
        reader = database.stream(f"SELECT count(*) FROM {parsed.sql()}", 1)
        value = reader.read_all().column(0)[0].as_py()
        return int(value) if value is not None else None
    except InvalidOptionError:
        return None
    except _driver_errors():
        return None
    finally:
        database.close()


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
        self.if_exists = if_exists
        self.name = f"{url.shown} (table {self.table})"
        self._created_file = url.path is not None and not url.path.exists()
        self._database: _Database | None = _connect(url, write=True, error=OutputError)
        try:
            self.existing = self._database.exists(self.table)
            if self.existing is not None and if_exists == "fail":
                raise InvalidOptionError(
                    "--to-table",
                    f"{self.name} already exists; pass --if-exists replace or --if-exists append "
                    "(nothing was read or written)",
                )
            self._database.begin()
        except _driver_errors() as exc:
            self.abort()
            raise OutputError(f"{self.name}: {_reason(exc)}") from None
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
        errors = _driver_errors()
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
            except _driver_errors():
                pass


class TableOutput:
    """Batches into a staging table; :meth:`prepare` moves them into the target and
    :meth:`publish` commits the transaction (:class:`~modelrouter.storage.commit.RunOutputs`
    calls both, in its commit step). Raises :class:`OutputError` for every database failure.
    """

    format: Literal["table"] = "table"

    def __init__(self, target: TableTarget, database: _Database, schema: pa.Schema) -> None:
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
        except _driver_errors() as exc:
            self.abort()
            raise OutputError(f"{self.name}: cannot write ({_reason(exc)})") from None
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
        columns = ", ".join(_quote(c) for c in self.schema.names)

        def move() -> None:
            if self.target.if_exists == "append" and self.target.existing is not None:
                database.execute(
                    f"INSERT INTO {target.sql()} ({columns}) SELECT {columns} FROM {self.staging.sql()}"
                )
                database.execute(f"DROP TABLE {self.staging.sql()}")
                return
            if self.target.if_exists == "replace":
                database.execute(f"DROP TABLE IF EXISTS {target.sql()}")
            database.execute(f"ALTER TABLE {self.staging.sql()} RENAME TO {_quote(target.name)}")

        self._guard(move)

    def publish(self) -> bool:
        """Commit: the table changes now, all at once."""
        self._guard(self._database.commit)
        self.target._done()
        return True

    def abort(self) -> None:
        """Roll everything back (the staging table with it); idempotent, never raises."""
        self.target.abort()


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
