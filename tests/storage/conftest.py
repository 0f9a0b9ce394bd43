"""Fixtures for the database tests: one real PostgreSQL server per session, a database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.storage import pg_server

_NUMBERS = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[pg_server.PgServer]:
    """A PostgreSQL server of the Debian binaries, started for this session, stopped after.

    Not skipped when the binaries are missing: the database tests are part of the suite
    (docs/specification.md §12), and a machine without them must say so.
    """
    if not pg_server.available():
        pytest.fail(
            f"PostgreSQL server binaries not found under {pg_server.PG_BIN} (Debian package 'postgresql')"
        )
    server = pg_server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg: pg_server.PgServer) -> str:
    """The URL of a fresh, empty database of the session's server (trusted superuser)."""
    name = f"t{next(_NUMBERS)}"
    pg.psql(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + f"/{name}"
