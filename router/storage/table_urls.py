"""Database URLs and table names as a run is given them, and the secrets they carry
(docs/specification.md §12).

A database URL names where rows live: ``sqlite:///PATH``, ``duckdb:///PATH`` or
``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME``. The password of a URL is never printed:
:class:`DatabaseUrl` shows itself as ``user:***@host``, and :func:`redact` masks URLs,
``password=`` settings and every password seen by this process in any text (driver messages
included) before it reaches a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from modelrouter.errors import InvalidOptionError

__all__ = [
    "IF_EXISTS",
    "DatabaseUrl",
    "IfExists",
    "Kind",
    "TableName",
    "is_table_url",
    "redact",
    "sql_identifier",
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
        return ".".join(sql_identifier(p) for p in (self.schema, self.name) if p is not None)

    def sibling(self, name: str) -> TableName:
        """Another table in the same schema."""
        return TableName(self.schema, name)

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"


def sql_identifier(identifier: str) -> str:
    """``identifier`` quoted for SQL, exactly as given (case kept, quotes doubled)."""
    return '"' + identifier.replace('"', '""') + '"'
