"""A real PostgreSQL server for the tests: the Debian binaries, a throw-away cluster, a free port.

``initdb`` refuses to run as root, and the tests run as root in CI: the cluster folder is made
with :func:`tempfile.mkdtemp` (pytest's tmp tree is root-only) and handed to the ``postgres``
user, who runs ``initdb`` and ``pg_ctl`` (``runuser``). As any other user the server simply
runs as that user. Connections go over TCP to 127.0.0.1 with ``trust`` authentication for
the ``postgres`` role; a role with a password (``md5``/``scram``) is added for the tests
that check a password is never shown.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PG_BIN", "PgServer", "available", "start"]

#: Where Debian's ``postgresql`` package puts the server binaries (the newest version found).
PG_BIN = next(
    (p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if (p / "initdb").exists()),
    Path("/usr/lib/postgresql/15/bin"),
)


def available() -> bool:
    """True when the server binaries are installed."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


@dataclass
class PgServer:
    folder: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        """The trusted superuser's URL for database ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, user: str, password: str, database: str = "postgres") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with ``psql`` as the superuser in ``database``; its stdout (unaligned,
        tuples only)."""
        done = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.url.rsplit("/", 1)[0] + "/" + database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start() -> PgServer:
    """initdb + pg_ctl start on a free port; raises RuntimeError with the server's log."""
    folder = Path(tempfile.mkdtemp(prefix="modelrouter-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    init = subprocess.run(
        [
            *as_user,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if init.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    # The superuser is trusted; every other role logs in with its password (a wrong one is
    # refused, as on a real server).
    (data / "pg_hba.conf").write_text(
        "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    )
    for _attempt in range(3):
        port = _free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        started = subprocess.run(
            [
                *as_user,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-o",
                options,
                "-w",
                "start",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        if started.returncode == 0:
            return PgServer(folder, port, as_user)
    log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
    shutil.rmtree(folder, ignore_errors=True)
    raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")
