"""Where a run's data is: one :class:`DataLocation` per INPUT, output and side file.

The user's text (``day.csv``, ``-``, ``s3://bucket/day.csv``, ``sqlite:///scores.db``,
``file:///data/day.csv``) is classified once, where the engine receives it
(:class:`~modelrouter.batch.options.RunOptions`), into one of four kinds:

- ``local``: a path on this machine (a ``file://`` URI is the local path it names);
- ``object``: an object-store URI (``s3://…``, ``gs://…``), parsed into its :class:`Uri`;
- ``stream``: ``-`` — stdin as an input, stdout as an output;
- ``table``: a database URL (``sqlite://``, ``duckdb://``, ``postgresql://``; its rows are
  read or written by :mod:`modelrouter.storage.tables`).

Reading, writing and committing ask the location what it is instead of parsing the text
again. Whether a local path is a folder, a FIFO or a glob depends on the file system, not on
the text: those are asked where they matter (datasets, stream checks). Model paths are
another kind of place, with their own rules (:mod:`modelrouter.locations`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelrouter.locations import is_uri, local_path
from modelrouter.storage.formats import Compression, compression_of, data_suffix, suffix_delimiter
from modelrouter.storage.tables import is_table_url
from modelrouter.storage.uris import Location, Uri

__all__ = ["STREAM", "DataLocation", "LocationKind", "data_location"]

LocationKind = Literal["local", "object", "stream", "table"]


@dataclass(frozen=True)
class DataLocation:
    """A classified place to read or write data (see the module docstring).

    ``text`` is the place as the user gave it, a ``file://`` URI already turned into its
    local path: what messages show (``str(location)``). ``uri`` is the parsed URI of an
    ``object`` (and of a ``table`` URL, whose rows :mod:`modelrouter.storage.tables` reads).
    """

    text: str
    kind: LocationKind
    uri: Uri | None = None

    @classmethod
    def of(cls, value: str | os.PathLike[str] | DataLocation) -> DataLocation:
        """The location ``value`` names; :class:`ValueError` for a ``file://`` URI of another
        host (see :func:`modelrouter.locations.local_path`)."""
        if isinstance(value, DataLocation):
            return value
        text = local_path(value) if isinstance(value, str) else os.fspath(value)
        if text == "-":
            return cls(text, "stream")
        if is_table_url(text):  # before is_uri: a database URL is a URI too
            return cls(text, "table", Uri.parse(text))
        if is_uri(text):
            return cls(text, "object", Uri.parse(text))
        return cls(text, "local")

    def __str__(self) -> str:
        return self.text

    @property
    def is_stream(self) -> bool:
        """``-``: stdin (an input) or stdout (an output)."""
        return self.kind == "stream"

    @property
    def is_object(self) -> bool:
        return self.kind == "object"

    @property
    def is_table(self) -> bool:
        return self.kind == "table"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def is_file(self) -> bool:
        """A named file or object (not a stream, not a table): has a name and a suffix."""
        return self.kind in ("local", "object")

    @property
    def path(self) -> Path:
        """The local path (``local`` locations only)."""
        if self.kind != "local":
            raise ValueError(f"{self.text}: not a local path")
        return Path(self.text)

    @property
    def target(self) -> Location:
        """The local :class:`Path`, or the :class:`Uri` of an object or a table URL (not a
        stream)."""
        if self.uri is not None:
            return self.uri
        return self.path

    @property
    def name(self) -> str:
        """The file or object name (its last path component)."""
        return self.target.name

    def with_name(self, name: str) -> DataLocation:
        """The same folder or prefix, another name."""
        return DataLocation.of(str(self.target.with_name(name)))

    def joined(self, name: str) -> DataLocation:
        """``name`` inside this folder or prefix."""
        return DataLocation.of(str(self.target / name))

    @property
    def data_suffix(self) -> str:
        """The whole data suffix of the name (``.csv.gz``); ``""`` for a stream or a table."""
        return data_suffix(self.name) if self.is_file else ""

    @property
    def compression(self) -> Compression | None:
        """The compression a text output gets from its name (a stream: none)."""
        return compression_of(self.text) if self.is_file else None

    @property
    def delimiter(self) -> str | None:
        """The delimiter the name implies (a tab for ``.tsv``); ``None`` for a stream."""
        return suffix_delimiter(self.text) if self.is_file else None


#: ``-``: stdin or stdout.
STREAM = DataLocation("-", "stream")


def data_location(value: str | os.PathLike[str] | DataLocation | None) -> DataLocation | None:
    """:meth:`DataLocation.of`, with ``None`` kept (an option not given)."""
    return None if value is None else DataLocation.of(value)
