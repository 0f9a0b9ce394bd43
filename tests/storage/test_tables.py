"""Database tables in and out (docs/specification.md §12): SQLite, DuckDB and a real PostgreSQL.

Tables are made and read back with the drivers directly (never through the code under test).
Every test that writes checks the database afterwards: no staging table left, and on failure
every existing table exactly as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from modelrouter import DataError, InvalidOptionError, ModelPool, ModelType, OutputError
from modelrouter.batch.run import RunOptions, score_file
from modelrouter.storage.tables import DatabaseUrl, IfExists, count_rows, redact

from tests.storage.pg_server import PgServer
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pq.read_table(ROOT / "sample_data" / "wine.parquet").replace_schema_metadata(None)
FEATURES = [c for c in WINE.column_names if c != "id"]
KINDS = ["sqlite", "duckdb", "postgresql"]
SECRET = "Sup3r-s3cret-pw"

pytestmark = pytest.mark.timeout(90)


# -- the databases, through their own drivers ----------------------------------------------------


def _path(url: str) -> str:
    return url.split(":///", 1)[1]


def write_table(url: str, name: str, data: pa.Table) -> None:
    """Create table ``name`` holding ``data`` (committed)."""
    if url.startswith("duckdb"):
        import duckdb

        with duckdb.connect(_path(url)) as con:
            con.register("incoming", data)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM incoming')
        return
    if url.startswith("sqlite"):
        import adbc_driver_sqlite.dbapi as driver

        connection = driver.connect(_path(url))
    else:
        import adbc_driver_postgresql.dbapi as driver  # type: ignore[no-redef]

        connection = driver.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.adbc_ingest(name, data, mode="create")
        connection.commit()


def read_sql(url: str, sql: str) -> pa.Table:
    if url.startswith("duckdb"):
        import duckdb

        with duckdb.connect(_path(url)) as con:
            table: pa.Table = con.sql(sql).to_arrow_table()
            return table
    if url.startswith("sqlite"):
        import adbc_driver_sqlite.dbapi as driver

        connection = driver.connect(_path(url))
    else:
        import adbc_driver_postgresql.dbapi as driver  # type: ignore[no-redef]

        connection = driver.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute(sql)
        result: pa.Table = cursor.fetch_arrow_table()
    return pa.table(result.columns, schema=pa.schema([f.remove_metadata() for f in result.schema]))


def tables_in(url: str) -> dict[str, int]:
    """Every table of the database (staging tables included) and its row count."""
    if url.startswith("sqlite"):
        names = read_sql(url, "SELECT name FROM sqlite_master WHERE type = 'table'").column(0).to_pylist()
    else:
        where = "table_schema NOT IN ('pg_catalog', 'information_schema')"
        names = (
            read_sql(url, f"SELECT table_name FROM information_schema.tables WHERE {where}")
            .column(0)
            .to_pylist()
        )
    return {n: read_sql(url, f'SELECT count(*) FROM "{n}"').column(0)[0].as_py() for n in names}


@pytest.fixture(params=KINDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a file for SQLite and DuckDB, a fresh PostgreSQL one."""
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'scores.db'}"
    if kind == "duckdb":
        return f"duckdb:///{tmp_path / 'scores.duckdb'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def direct(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """What the shipped model says, called once on the rows."""
    pool = ModelPool.load(ModelType.SKLEARN, ROOT / "models" / "classifier.pkl", size=1)
    try:
        with pool.borrow() as model:
            return model.predict(frame), model.predict_proba(frame)
    finally:
        pool.close()


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=environment, timeout=60
    )


# -- oracle -----------------------------------------------------------------------------------------


def test_predictions_from_a_table_equal_the_model_on_the_same_rows(db: str, tmp_path: Path) -> None:
    write_table(db, "wine", WINE)
    out = tmp_path / "scored.parquet"
    # A query with its own order: output rows follow what the database returns.
    summary = score_file(
        RunOptions(
            input=db,
            query='SELECT * FROM "wine" WHERE id % 3 <> 0 ORDER BY id DESC',
            output=str(out),
            keep=("id",),
            with_proba=True,
            chunk_size=25,
        )
    )
    got = pq.read_table(out)
    ids = [i for i in reversed(WINE.column("id").to_pylist()) if i % 3]
    assert got.column("id").to_pylist() == ids
    rows = WINE.to_pandas().set_index("id").loc[ids, FEATURES]
    labels, proba = direct(rows)
    assert got.column("prediction").to_pylist() == labels.tolist()
    np.testing.assert_array_equal(
        np.column_stack([got.column(f"proba_{c}") for c in ("class_0", "class_1", "class_2")]), proba
    )
    assert summary.rows_in == summary.rows_out == len(ids)

    # And into a table of the same database: the same rows, in the same order.
    score_file(RunOptions(input=db, table="wine", output=db, to_table="scores", keep=("id",), chunk_size=40))
    written = read_sql(db, 'SELECT * FROM "scores"')
    all_labels, _ = direct(WINE.to_pandas()[FEATURES])
    assert written.column("id").to_pylist() == WINE.column("id").to_pylist()
    assert written.column("prediction").to_pylist() == all_labels.tolist()
    assert set(tables_in(db)) == {"wine", "scores"}


def _mixed(kind: str) -> pa.Table:
    """Wine rows with kept columns of several types, nulls and text that looks like null."""
    rows = 60
    notes = ["a", None, "NA", "", "null", 'x, "y"']
    extra: dict[str, pa.Array] = {
        "note": pa.array([notes[i % len(notes)] for i in range(rows)], pa.string()),
        "count": pa.array([None if i % 7 == 0 else i * 1000 for i in range(rows)], pa.int64()),
        "weight": pa.array([None if i % 5 == 0 else i / 3 for i in range(rows)], pa.float64()),
    }
    if kind != "sqlite":  # SQLite has no booleans, dates or 32-bit integers of its own
        extra["flag"] = pa.array([None if i % 4 == 0 else i % 2 == 0 for i in range(rows)], pa.bool_())
        extra["small"] = pa.array(list(range(rows)), pa.int32())
        extra["day"] = pa.array([19_000 + i for i in range(rows)], pa.date32())
    table = WINE.slice(0, rows)
    for name, values in extra.items():
        table = table.append_column(name, values)
    return table


def test_round_trip_file_table_file_is_exact(db: str, tmp_path: Path) -> None:
    kind = db.split(":", 1)[0]
    source = _mixed(kind)
    pq.write_table(source, tmp_path / "in.parquet")
    common: dict[str, Any] = {"keep_all": True, "with_proba": True, "chunk_size": 16}
    # The reference: file to file.
    score_file(RunOptions(input=str(tmp_path / "in.parquet"), output=str(tmp_path / "a.parquet"), **common))
    expected = pq.read_table(tmp_path / "a.parquet").replace_schema_metadata(None)
    # File to table: the table holds exactly what the file holds (types, nulls, text).
    score_file(RunOptions(input=str(tmp_path / "in.parquet"), output=db, to_table="scored", **common))
    assert read_sql(db, 'SELECT * FROM "scored"').equals(expected)
    # Table to file: the same file as from the file.
    write_table(db, "source", source)
    score_file(RunOptions(input=db, table="source", output=str(tmp_path / "c.parquet"), **common))
    assert pq.read_table(tmp_path / "c.parquet").replace_schema_metadata(None).equals(expected)
    assert set(tables_in(db)) == {"scored", "source"}


# -- --if-exists -------------------------------------------------------------------------------------


def test_if_exists_fail_replace_append(db: str, tmp_path: Path) -> None:
    write_table(db, "wine", WINE)
    old = pa.table({"id": pa.array([-1], pa.int64()), "prediction": ["old"]})
    write_table(db, "scores", old)
    base: dict[str, Any] = {"input": db, "table": "wine", "output": db, "to_table": "scores", "keep": ("id",)}

    # fail (the default): refused before the models load or a row is read — the missing
    # model file and the missing input table are never reached.
    for table in ("wine", "no_such_table"):
        with pytest.raises(
            InvalidOptionError, match=r"\(table scores\) already exists; pass --if-exists"
        ) as caught:
            score_file(RunOptions(**{**base, "table": table}, model_path=tmp_path / "missing.pkl"))
        assert caught.value.option == "--to-table"
    assert read_sql(db, 'SELECT * FROM "scores"').equals(old)

    score_file(RunOptions(**base, if_exists="replace"))
    assert read_sql(db, 'SELECT count(*) AS n FROM "scores"').column(0)[0].as_py() == WINE.num_rows

    score_file(RunOptions(**base, if_exists="append"))
    assert read_sql(db, 'SELECT count(*) AS n FROM "scores"').column(0)[0].as_py() == 2 * WINE.num_rows

    # Appending columns the table does not have: an output error, before any row is read.
    with pytest.raises(OutputError, match=r"has no column 'proba_class_0'"):
        score_file(RunOptions(**base, if_exists="append", with_proba=True))
    assert read_sql(db, 'SELECT count(*) AS n FROM "scores"').column(0)[0].as_py() == 2 * WINE.num_rows
    if not db.startswith("sqlite"):  # SQLite converts text to a number column's affinity itself
        # Kept text (a CSV's id) into a number column: refused up front, not at the commit.
        with pytest.raises(
            OutputError, match=r"column 'id' holds numbers \(int64\) and the scores give text"
        ):
            score_file(
                RunOptions(
                    **{**base, "input": str(ROOT / "sample_data" / "wine.csv"), "table": None},
                    if_exists="append",
                )
            )
    assert read_sql(db, 'SELECT count(*) AS n FROM "scores"').column(0)[0].as_py() == 2 * WINE.num_rows
    assert set(tables_in(db)) == {"wine", "scores"}


# -- faults: no staging table, no change ------------------------------------------------------------


def _bad_last_row() -> pa.Table:
    """Wine with ``alcohol`` as text and a value no number in the last row (row 178)."""
    alcohol = [str(v) for v in WINE.column("alcohol").to_pylist()]
    alcohol[-1] = "twelve"
    return WINE.set_column(1, "alcohol", pa.array(alcohol, pa.string()))


def test_faults_leave_no_staging_table_and_no_change(db: str) -> None:
    write_table(db, "wine", _bad_last_row())
    old = pa.table({"id": pa.array([-1], pa.int64()), "prediction": ["old"]})
    write_table(db, "scores", old)
    before = tables_in(db)
    modes: tuple[IfExists, ...] = ("replace", "append")
    for mode in modes:
        with pytest.raises(DataError, match=r"row 178: .*'alcohol'"):
            score_file(
                RunOptions(
                    input=db, table="wine", output=db, to_table="scores", if_exists=mode, chunk_size=50
                )
            )
        assert tables_in(db) == before
        assert read_sql(db, 'SELECT * FROM "scores"').equals(old)
    # A new table is not created by a failed run either.
    with pytest.raises(DataError, match="row 178"):
        score_file(RunOptions(input=db, table="wine", output=db, to_table="fresh", chunk_size=50))
    with pytest.raises(DataError, match=r"\(query\): .*syntax"):
        score_file(RunOptions(input=db, query="SELEC id FROM wine", output=db, to_table="fresh"))
    with pytest.raises(DataError, match=r"\(table nope\): .*(nope)"):
        score_file(RunOptions(input=db, table="nope", output=db, to_table="fresh"))
    assert tables_in(db) == before


def test_a_database_file_the_failed_run_created_is_removed(tmp_path: Path) -> None:
    for kind, name in (("sqlite", "new.db"), ("duckdb", "new.duckdb")):
        source = f"{kind}:///{tmp_path / ('in-' + name)}"
        write_table(source, "wine", _bad_last_row())
        target = tmp_path / name
        with pytest.raises(DataError, match="row 178"):
            score_file(RunOptions(input=source, table="wine", output=f"{kind}:///{target}", to_table="t"))
        assert not target.exists()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new")) == []


def test_sqlite_values_of_another_type_later_name_the_column(tmp_path: Path) -> None:
    """SQLite types values, not columns: a float after the first chunk's integers."""
    import sqlite3

    path = tmp_path / "loose.db"
    rows = WINE.to_pylist()
    for i, row in enumerate(rows):
        row["alcohol"] = 13 if i < 100 else 13.5  # whole numbers are stored as integers
    with sqlite3.connect(path) as con:
        con.execute(f"CREATE TABLE loose ({', '.join(repr(c) for c in WINE.column_names)})")  # no types
        con.executemany(
            f"INSERT INTO loose VALUES ({', '.join('?' * WINE.num_columns)})",
            [tuple(r.values()) for r in rows],
        )
    with pytest.raises(DataError, match=r"read failed after data row 100 \(column 'alcohol' holds a DOUBLE"):
        score_file(
            RunOptions(
                input=f"sqlite:///{path}", table="loose", output=str(tmp_path / "x.parquet"), chunk_size=50
            )
        )
    assert not (tmp_path / "x.parquet").exists()


def _leading_nulls_db(path: Path) -> None:
    """Wine in SQLite with ``ash`` (REAL) NULL on the first 50 rows and a ``note`` (TEXT)
    added by ``ALTER TABLE`` that is NULL on the first 60, and ``extra`` (no declared type)
    NULL but for one real value near the end."""
    import sqlite3

    with sqlite3.connect(path) as con:
        columns = ", ".join(f'"{c}" {"INTEGER" if c == "id" else "REAL"}' for c in WINE.column_names)
        con.execute(f"CREATE TABLE wine ({columns})")
        con.executemany(
            f"INSERT INTO wine VALUES ({', '.join('?' * WINE.num_columns)})",
            [tuple(r.values()) for r in WINE.to_pylist()],
        )
        con.execute("UPDATE wine SET ash = NULL WHERE id <= 50")
        con.execute("ALTER TABLE wine ADD COLUMN note TEXT")
        con.execute("UPDATE wine SET note = 'n' || id WHERE id > 60")
        con.execute("ALTER TABLE wine ADD COLUMN extra")
        con.execute("UPDATE wine SET extra = 2.5 WHERE id = 170")


@pytest.mark.parametrize(
    "source",
    [
        {"table": "wine"},
        # The CAST the error used to advise, and a query ending with a semicolon.
        {"query": "SELECT id, note, extra, CAST(ash AS REAL) AS ash, "
         + ", ".join(f'"{c}"' for c in FEATURES if c != "ash") + " FROM wine ORDER BY id;"},
        {"query": "SELECT * FROM wine -- the whole table"},
    ],
    ids=["table", "query", "query-comment"],
)  # fmt: skip
def test_sqlite_columns_null_through_the_first_chunk_are_typed_by_their_first_value(
    tmp_path: Path, source: dict[str, str]
) -> None:
    """The driver types a column from its first batch: all NULL there, it was INT64 and the
    first real or text value failed the read. Now typed by the first non-NULL value."""
    path = tmp_path / "nulls.db"
    _leading_nulls_db(path)
    out = tmp_path / "x.parquet"
    summary = score_file(
        RunOptions(
            input=f"sqlite:///{path}",
            table=source.get("table"),
            query=source.get("query"),
            output=str(out),
            keep=("id", "note", "extra"),
            chunk_size=50,
        )
    )
    got = pq.read_table(out)
    assert summary.rows_in == summary.rows_out == WINE.num_rows
    assert got.column("id").to_pylist() == WINE.column("id").to_pylist()
    assert got.schema.field("note").type == pa.string() and got.schema.field("extra").type == pa.float64()
    assert got.column("note").to_pylist() == [None if i <= 60 else f"n{i}" for i in range(1, 179)]
    assert got.column("extra").to_pylist() == [2.5 if i == 170 else None for i in range(1, 179)]
    frame = WINE.to_pandas()[FEATURES]
    frame.loc[:49, "ash"] = np.nan
    labels, _ = direct(frame)
    assert got.column("prediction").to_pylist() == labels.tolist()


def test_bad_rows_skipped_into_rejects_with_a_table_output(db: str, tmp_path: Path) -> None:
    write_table(db, "wine", _bad_last_row())
    rejects = tmp_path / "rejects.csv"
    summary = score_file(
        RunOptions(
            input=db,
            table="wine",
            output=db,
            to_table="scores",
            keep=("id",),
            on_error="skip",
            rejects=str(rejects),
            chunk_size=50,
        )
    )
    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (178, 177, 1)
    assert read_sql(db, 'SELECT id FROM "scores"').column(0).to_pylist() == list(range(1, 178))
    assert rejects.read_text().splitlines()[1].startswith("178,alcohol,")


class _CuttingProxy:
    """A TCP proxy to the server that cuts a connection once the server has sent it
    ``limit`` bytes: a connection dropped in the middle of a read. (The driver's first,
    short connection reads the server's type catalogue, ~170 kB; the rows come on the next.)"""

    def __init__(self, port: int, limit: int) -> None:
        import socket
        import threading

        self.limit = limit
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client, self.limit), daemon=True).start()

    def _relay(self, client: Any, limit: int) -> None:
        import socket
        import threading

        server = socket.create_connection(("127.0.0.1", self.target))

        def pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
            sent = 0
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
                    sent += len(data)
                    if limit is not None and sent >= limit:
                        break
            except OSError:
                pass
            for end in (client, server):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        upstream = threading.Thread(target=pump, args=(client, server, None), daemon=True)
        upstream.start()
        pump(server, client, limit)
        upstream.join(10)
        client.close()
        server.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.mark.timeout(60, method="thread")  # a hang in native code must fail, not stall the suite
def test_a_connection_dropped_mid_read_leaves_no_output(pg: PgServer, pg_url: str, tmp_path: Path) -> None:
    write_table(pg_url, "wine", pa.concat_tables([WINE] * 40))  # 1.2 MB over the wire
    database = pg_url.rsplit("/", 1)[1]
    proxy = _CuttingProxy(pg.port, limit=600_000)
    try:
        through = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}"
        with pytest.raises(DataError, match=r"\(table wine\): read failed after data row \d+ \("):
            score_file(
                RunOptions(input=through, table="wine", output=pg_url, to_table="scores", chunk_size=500)
            )
    finally:
        proxy.close()
    assert set(tables_in(pg_url)) == {"wine"}


def test_a_table_without_the_features_lists_its_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    write_table(url, "t", pa.table({"a": [1], "b": ["x"]}))
    with pytest.raises(DataError, match=r"\(table t\): missing feature columns .* \(input has: 'a', 'b'\)$"):
        score_file(RunOptions(input=url, table="t", output=str(tmp_path / "x.parquet")))


# -- option rules (the engine's; the CLI refuses alike) ---------------------------------------------


@pytest.mark.parametrize(
    ("options", "option", "message"),
    [
        (
            {"input": "sqlite:///x.db", "output": "o.csv"},
            "--table",
            "say what to read with --table NAME or --query SQL",
        ),
        (
            {"input": "sqlite:///x.db", "table": "t", "query": "SELECT 1", "output": "o.csv"},
            "--query",
            "cannot be used together",
        ),
        ({"input": "in.csv", "table": "t"}, "--table", "in.csv is not one"),
        ({"input": "in.csv", "query": "SELECT 1"}, "--query", "in.csv is not one"),
        ({"input": "sqlite:///x.db", "table": "t"}, "--output", "no default output"),
        ({"input": "in.csv", "output": "duckdb:///w.duckdb"}, "--to-table", "name the table to write"),
        ({"input": "in.csv", "output": "o.csv", "to_table": "t"}, "--to-table", "o.csv is not one"),
        (
            {"input": "in.csv", "output": "o.csv", "if_exists": "append"},
            "--if-exists",
            "applies to a database -o",
        ),
        (
            {"input": "in.csv", "output": "sqlite:///w.db", "to_table": "t", "if_exists": "merge"},
            "--if-exists",
            "must be one of fail, replace, append",
        ),
        (
            {"input": "in.csv", "output": "sqlite:///w.db", "to_table": "a.b.c"},
            "--to-table",
            "not a table name",
        ),
        (
            {"input": "in.csv", "output": "sqlite:///w.db", "to_table": "t", "on_error": "skip"},
            "--rejects",
            "--rejects PATH is required",
        ),
        (
            {"input": "sqlite://host/x.db", "table": "t", "output": "o.csv"},
            "INPUT",
            "names a local database file",
        ),
    ],
)
def test_option_rules(options: dict[str, Any], option: str, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message) as caught:
        RunOptions(**options)
    assert caught.value.option == option


def test_cli_refuses_alike_with_exit_2_before_reading(tmp_path: Path) -> None:
    """End to end: the same rules, Click's usage form, nothing read or written."""
    db = tmp_path / "w.db"
    write_table(f"sqlite:///{db}", "scores", pa.table({"id": [1]}))
    done = run_cli(
        "predict",
        "sqlite:///nowhere.db",
        "-o",
        f"sqlite:///{db}",
        "--to-table",
        "scores",
        "--query",
        "SELECT 1",
    )
    assert done.returncode == 2, done.stderr
    assert "Invalid value for --to-table" in done.stderr and "(table scores) already exists" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.db"]


# -- PostgreSQL end to end: exit codes, signals, secrets ---------------------------------------------


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_postgres_errors_end_to_end(pg_url: str, tmp_path: Path) -> None:
    write_table(pg_url, "wine", _bad_last_row())
    write_table(pg_url, "scores", pa.table({"id": pa.array([-1], pa.int64()), "prediction": ["old"]}))
    before = tables_in(pg_url)
    done = run_cli(
        "predict",
        pg_url,
        "--table",
        "wine",
        "-o",
        pg_url,
        "--to-table",
        "scores",
        "--if-exists",
        "replace",
        "--chunk-size",
        "50",
        "-k",
        "id",
    )
    assert done.returncode == 3, done.stderr
    assert "row 178" in done.stderr and "alcohol" in done.stderr
    done = run_cli("predict", pg_url, "--query", "SELECT * FROM wine WHERE", "-o", tmp_path / "o.parquet")
    assert done.returncode == 3
    assert (
        done.stderr.startswith("error: postgresql://postgres@")
        and "syntax error at end of input" in done.stderr
    )
    done = run_cli("predict", pg_url, "--table", "public.nope", "-o", tmp_path / "o.parquet")
    assert done.returncode == 3 and 'relation "public.nope" does not exist' in done.stderr
    assert tables_in(pg_url) == before
    assert list(tmp_path.iterdir()) == []


def test_sigterm_mid_write_rolls_everything_back(pg: PgServer, pg_url: str, tmp_path: Path) -> None:
    import joblib

    from tests.slow_estimators import SlowForest

    frame = WINE.to_pandas()
    model = SlowForest(n_estimators=5, max_depth=3, random_state=0).fit(frame[FEATURES], frame["id"] % 3)
    model.delay_ = 0.2
    joblib.dump(model, tmp_path / "slow.pkl")
    write_table(pg_url, "wine", pa.concat_tables([WINE] * 5))
    old = pa.table({"id": pa.array([-1], pa.int64()), "prediction": pa.array([7], pa.int64())})
    write_table(pg_url, "scores", old)
    database = pg_url.rsplit("/", 1)[1]
    # The superuser is trusted: its password is ignored by the server, never shown by us.
    url = pg_url.replace("postgres@", f"postgres:{SECRET}@")
    process = subprocess.Popen(
        [str(MODELROUTER), "predict", url, "--table", "wine", "-o", url, "--to-table", "scores",
         "--if-exists", "replace", "-m", tmp_path / "slow.pkl", "--chunk-size", "20", "-w", "1", "-k", "id"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        # Rows are in the writer's staging table (in its open transaction). Then SIGTERM.
        def rows_staged() -> bool:
            assert process.poll() is None, process.communicate()
            return staged_bytes(pg, database) > 0

        wait_until(rows_staged, "rows in the staging table", timeout=60)  # the models load first
        # What ps shows: the command line with the password masked.
        shown = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert SECRET not in shown and "postgres:***@" in shown
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr and SECRET not in stderr
    assert tables_in(pg_url) == {"wine": 5 * WINE.num_rows, "scores": 1}
    assert read_sql(pg_url, "SELECT * FROM scores").equals(old)
    open_transactions = (
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND state LIKE 'idle in%'"
    )
    assert pg.psql(open_transactions).strip() == "0"


def staged_bytes(pg: PgServer, database: str) -> int:
    """Bytes on disk of the tables an open transaction in ``database`` holds exclusively: the
    writer's staging table, made in its transaction.

    Other sessions cannot count its rows (the catalog row is not visible yet, and a read would
    wait for the writer's lock), but the table's file grows by a page as rows fill one: it is
    ``base/<database oid>/<table oid>`` (a new table's file is named by its oid)."""
    locked = pg.psql(
        "SELECT l.database, l.relation FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE a.datname = '{database}' AND l.mode = 'AccessExclusiveLock' AND l.locktype = 'relation'"
    )
    total = 0
    for line in locked.split():
        database_oid, table_oid = line.split("|")
        try:
            total += (pg.folder / "data" / "base" / database_oid / table_oid).stat().st_size
        except FileNotFoundError:  # not made yet, or dropped as the transaction ended
            pass
    return total


def test_password_is_never_shown(pg: PgServer, pg_url: str, tmp_path: Path) -> None:
    database = pg_url.rsplit("/", 1)[1]
    pg.psql(f"CREATE ROLE app LOGIN PASSWORD '{SECRET}'")
    write_table(pg_url, "wine", WINE)
    pg.psql("ALTER TABLE wine OWNER TO app", database)
    url = pg.url_for("app", SECRET, database)
    shown = f"postgresql://app:***@127.0.0.1:{pg.port}/{database}"
    stats = tmp_path / "stats.json"
    out = tmp_path / "o.parquet"
    done = run_cli("predict", url, "--table", "wine", "-o", out, "-k", "id", "--stats-json", stats)
    assert done.returncode == 0, done.stderr
    report = stats.read_text()
    assert json.loads(report)["summary"]["input"] == f"{shown} (table wine)"
    metadata = pq.read_schema(out).metadata
    assert metadata[b"modelrouter.input"].decode() == f"{shown} (table wine)"
    # Logins refused: INPUT exit 3, -o exit 5; a failed run's stats JSON names the URL masked.
    wrong = url.replace(SECRET, SECRET + "x")
    refused_in = run_cli("predict", wrong, "--table", "wine", "-o", out, "--stats-json", stats)
    assert refused_in.returncode == 3, refused_in.stderr
    assert refused_in.stderr.startswith(f"error: {shown}: cannot connect (")
    assert "password authentication failed" in refused_in.stderr
    failure_report = stats.read_text()
    assert json.loads(failure_report)["summary"]["input"] == shown
    refused_out = run_cli("predict", ROOT / "sample_data" / "wine.parquet", "-o", wrong, "--to-table", "s2")
    assert refused_out.returncode == 5 and "password authentication failed" in refused_out.stderr
    for text in (done.stderr, report, str(metadata), refused_in.stderr, failure_report, refused_out.stderr):
        assert SECRET not in text
    assert list(tmp_path.iterdir()) == [out, stats] or sorted(tmp_path.iterdir()) == sorted([out, stats])


# -- small parts --------------------------------------------------------------------------------------


def test_redact_masks_urls_settings_and_known_passwords() -> None:
    url = DatabaseUrl.parse("postgresql://app:p%40ss-w0rd@db:5432/shop?sslmode=require", option="INPUT")
    assert (
        str(url)
        == repr(url).split("shown='")[1].rstrip("')")
        == "postgresql://app:***@db:5432/shop?sslmode=require"
    )
    assert "p%40ss" not in repr(url)
    assert redact("could not connect as app with p@ss-w0rd") == "could not connect as app with ***"
    assert redact("host=db password=hunter22 user=x") == "host=db password=*** user=x"
    assert redact("postgresql://u@db/x") == "postgresql://u@db/x"


def test_row_count_only_where_it_is_cheap(tmp_path: Path, pg_url: str) -> None:
    for url in (f"sqlite:///{tmp_path / 'c.db'}", f"duckdb:///{tmp_path / 'c.duckdb'}"):
        write_table(url, "wine", WINE)
        assert count_rows(DatabaseUrl.parse(url, option="INPUT"), "wine") == WINE.num_rows
        assert count_rows(DatabaseUrl.parse(url, option="INPUT"), "missing") is None
    write_table(pg_url, "wine", WINE)
    assert count_rows(DatabaseUrl.parse(pg_url, option="INPUT"), "wine") is None  # a full scan there


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_no_output_may_be_a_database_file_the_run_reads_or_writes(kind: str, tmp_path: Path) -> None:
    """A SQLite/DuckDB database is a file: an output onto it (--stats-json, --metrics-textfile,
    -o FILE), by any of its names, would replace the database. Refused, exit 2, nothing read
    or written; writing another table into the input's own database stays allowed."""
    name = "crm.db" if kind == "sqlite" else "crm.duckdb"
    database = tmp_path / name
    write_table(f"{kind}:///{database}", "wine", WINE)
    (tmp_path / "alias").symlink_to(database)
    before = database.read_bytes()
    source = ["predict", f"{kind}:///{database}", "--table", "wine", "-q"]
    refused = {
        "--stats-json": [*source, "-o", str(tmp_path / "out.csv"), "--stats-json", str(database)],
        "--metrics-textfile": [
            *source, "-o", str(tmp_path / "out.csv"), "--metrics-textfile", str(tmp_path / "alias"),
        ],
        "--output": [*source, "-o", f"{tmp_path}/./{name}", "--output-format", "csv"],
        "--stats-json ": [  # the output's database, the input being a file
            "predict", str(ROOT / "sample_data" / "wine.csv"), "-o", f"{kind}:///{tmp_path / 'new.db'}",
            "--to-table", "s", "--stats-json", str(tmp_path / "new.db"), "-q",
        ],
    }  # fmt: skip
    for option, args in refused.items():
        done = run_cli(*args)
        assert done.returncode == 2, (option, done.stderr)
        assert f"Invalid value for {option.strip()}" in done.stderr
        assert "is the same file as the" in done.stderr and "database" in done.stderr
        assert database.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["alias", name], option
    done = run_cli(*source, "-k", "id", "-o", f"{kind}:///{database}", "--to-table", "scores")
    assert done.returncode == 0, done.stderr
    assert read_sql(f"{kind}:///{database}", "SELECT count(*) AS n FROM scores").column(0)[0].as_py() == 178


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_a_query_naming_a_column_twice_is_a_data_error_naming_it(kind: str, tmp_path: Path) -> None:
    """As a file whose header names a column twice: exit 3 with the column, never exit 1."""
    url = f"{kind}:///{tmp_path / 'w.db'}"
    write_table(url, "wine", WINE)
    for query, column in (("SELECT w.*, w.id FROM wine w", "id"), ("SELECT w.*, w.ash FROM wine w", "ash")):
        with pytest.raises(DataError, match=f"duplicate column name '{column}'"):
            score_file(RunOptions(input=url, query=query, output=str(tmp_path / "x.csv"), keep=("id",)))
    done = run_cli("predict", url, "--query", "SELECT w.*, w.id FROM wine w", "-o", "-", "-k", "id", "-q")
    assert done.returncode == 3, done.stderr
    assert (
        done.stderr
        == f"error: {url} (query): duplicate column name 'id' (name it once, with AS, in --query)\n"
    )
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.db"]


def test_a_kept_column_the_driver_cannot_store_is_named(tmp_path: Path) -> None:
    """SQLite's driver counts columns by number ("Column 16 has unsupported type list"):
    the error names the column and its type instead, and leaves no database behind."""
    source = tmp_path / "in.parquet"
    pq.write_table(
        WINE.append_column("tags", pa.array([[1, 2]] * WINE.num_rows, pa.list_(pa.int64()))), source
    )
    target = tmp_path / "out.db"
    with pytest.raises(OutputError) as caught:
        score_file(
            RunOptions(input=str(source), output=f"sqlite:///{target}", to_table="t", keep=("id", "tags"))
        )
    assert str(caught.value) == (
        f"sqlite:///{target} (table t): cannot write (column 'tags' is list<element: int64>, which the "
        "sqlite driver cannot store; leave it out of the kept columns, or convert it before scoring)"
    )
    assert not target.exists()


def test_sqlite_takes_its_main_schema_and_refuses_others(tmp_path: Path) -> None:
    target = tmp_path / "m.db"
    score_file(
        RunOptions(
            input=str(ROOT / "sample_data" / "wine.csv"), output=f"sqlite:///{target}", to_table="main.t"
        )
    )
    assert read_sql(f"sqlite:///{target}", "SELECT count(*) AS n FROM t").column(0)[0].as_py() == 178
    other = tmp_path / "o.db"
    with pytest.raises(InvalidOptionError, match="a SQLite database file has one schema, main"):
        score_file(
            RunOptions(
                input=str(ROOT / "sample_data" / "wine.csv"), output=f"sqlite:///{other}", to_table="x.t"
            )
        )
    assert not other.exists()


def test_a_dataset_into_a_table_is_refused_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.csv").write_bytes((ROOT / "sample_data" / "wine.csv").read_bytes())
    done = run_cli("predict", folder, "-o", f"sqlite:///{tmp_path / 'ds.db'}", "--to-table", "t")
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for --output: {folder} is a dataset (a folder or glob" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
