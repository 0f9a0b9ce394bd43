"""A throw-away PostgreSQL server for the database scenarios of ``make bench``.

The Debian server binaries (``postgresql``), a cluster in a temporary folder, a free port on
127.0.0.1, ``trust`` authentication for the ``postgres`` role: the approach of the test
suite's server (``tests/storage/pg_server.py``). ``initdb`` refuses to run as root, so as
root the folder is handed to the ``postgres`` user, who runs ``initdb`` and ``pg_ctl``.

Durability is off (``fsync=off``, ``full_page_writes=off``): the benchmark measures the
client programs, both sides against the same server, not the disk of a shared machine.

    with postgres.cluster() as pg:
        postgres.load_parquet(pg.url, Path("features.parquet"), "features")
        ...
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PG_BIN",
    "SETTINGS",
    "Cluster",
    "available",
    "cluster",
    "export_table",
    "load_parquet",
    "missing",
    "version",
]

#: Where Debian's ``postgresql`` package puts the server binaries (the newest version found).
PG_BIN = next(
    (p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if (p / "initdb").exists()),
    Path("/usr/lib/postgresql/15/bin"),
)
_ENV = {**os.environ, "LC_ALL": "C", "LANG": "C"}
#: The server's settings beyond its defaults (durability off: see the module's docstring).
SETTINGS = "fsync=off, full_page_writes=off, synchronous_commit=off"


def available() -> bool:
    """True when the server binaries and ``psql`` are installed."""
    return all((PG_BIN / name).exists() for name in ("initdb", "pg_ctl", "psql"))


def missing() -> str | None:
    """Why the database scenarios cannot run here, or ``None`` when they can."""
    if not available():
        return f"no PostgreSQL server binaries under {PG_BIN} (Debian package 'postgresql')"
    try:
        import adbc_driver_postgresql  # noqa: F401
    except ImportError:
        return "adbc-driver-postgresql not installed (pip install -e '.[sql]')"
    try:
        import psycopg  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        return "SQLAlchemy/psycopg not installed (pip install -e '.[bench]')"
    return None


@dataclass(frozen=True)
class Cluster:
    """A running server: its folder and port."""

    folder: Path
    port: int
    as_user: tuple[str, ...]

    @property
    def url(self) -> str:
        """libpq URL of database ``postgres`` as the trusted superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def psql_for(url: str) -> list[str]:
        """``psql`` connected to ``url``, quiet, no ``~/.psqlrc``, stopping at the first error."""
        return [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]

    @property
    def psql(self) -> list[str]:
        """``psql`` connected to :attr:`url`."""
        return self.psql_for(self.url)

    def run_sql(self, sql: str) -> None:
        done = subprocess.run([*self.psql, "-c", sql], capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def version() -> str:
    """``postgres --version`` of the binaries used (``PostgreSQL 15.x …``)."""
    done = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True, timeout=60)
    text = done.stdout.strip().removeprefix("postgres (PostgreSQL) ")
    return f"PostgreSQL {text}" if text else "unknown"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _init(folder: Path, as_user: tuple[str, ...]) -> None:
    init = subprocess.run(
        [*as_user, str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
         "-E", "UTF8", "--no-sync"],
        capture_output=True, text=True, timeout=300, env=_ENV, check=False,
    )  # fmt: skip
    if init.returncode:
        raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")


def start() -> Cluster:
    """initdb + pg_ctl start on a free port; RuntimeError with the server's log otherwise."""
    folder = Path(tempfile.mkdtemp(prefix="modelrouter-bench-pg-"))
    as_user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ("runuser", "-u", "postgres", "--")
    try:
        _init(folder, as_user)
        message = ""
        for _attempt in range(3):  # a free port can be taken between the probe and the start
            port = _free_port()
            settings = " ".join(f"-c {s}" for s in SETTINGS.split(", "))
            options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 {settings}"
            started = subprocess.run(
                [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
                 "-o", options, "-w", "start"],
                capture_output=True, text=True, timeout=300, env=_ENV, check=False,
            )  # fmt: skip
            if started.returncode == 0:
                return Cluster(folder, port, as_user)
            message = started.stderr.strip()
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {message} {log[-2000:]}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A server for the ``with`` block, stopped and removed after it."""
    server = start()
    try:
        yield server
    finally:
        server.stop()


def load_parquet(url: str, source: Path, table: str) -> None:
    """Create ``table`` from the Parquet file (ADBC bulk ingest, the file's column types:
    ``bigint``, ``real``), then ``VACUUM ANALYZE`` it so that no measured run pays for
    setting hint bits on fresh rows."""
    import adbc_driver_postgresql.dbapi as pg_dbapi
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    reader = pa.RecordBatchReader.from_batches(parquet.schema_arrow, parquet.iter_batches(batch_size=65_536))
    with pg_dbapi.connect(url) as connection:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
            cursor.adbc_ingest(table, reader, mode="create")
        connection.commit()
    with pg_dbapi.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f'VACUUM ANALYZE "{table}"')


def export_table(url: str, table: str, order_by: str, columns: list[str], target: Path) -> None:
    """Write ``columns`` of ``table`` ordered by ``order_by`` to a Parquet file (to compare a
    run's output table with another run's)."""
    import adbc_driver_postgresql.dbapi as pg_dbapi
    import pyarrow.parquet as pq

    selected = ", ".join(f'"{c}"' for c in columns)
    with pg_dbapi.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT {selected} FROM "{table}" ORDER BY "{order_by}"')
        pq.write_table(cursor.fetch_arrow_table(), target)
