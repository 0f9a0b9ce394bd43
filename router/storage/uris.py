"""Object-store URIs and the locations the engine reads and writes (docs/specification.md §11).

A location is a local :class:`~pathlib.Path` or a :class:`Uri` (``s3://bucket/key``); both
answer the path arithmetic the engine does (``name``, ``stem``, ``suffix``, ``parent``,
``with_name``, ``/``). Pure string work: nothing here reaches a store.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeAlias

from modelrouter.locations import is_uri

__all__ = ["Location", "Uri", "as_location", "model_location_arg"]


@dataclass(frozen=True)
class Uri:
    """``scheme://bucket/key`` with the path arithmetic of :class:`~pathlib.PurePosixPath`."""

    scheme: str
    path: str  # "bucket/key/…", no leading or trailing slash

    @classmethod
    def parse(cls, text: str) -> Uri:
        scheme, _, rest = text.partition("://")
        return cls(scheme.lower(), rest.strip("/"))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}"

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.path.partition("/")[2]

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> Uri:
        return Uri(self.scheme, posixpath.dirname(self.path))

    def with_name(self, name: str) -> Uri:
        return Uri(self.scheme, str(PurePosixPath(self.path).with_name(name)))

    def with_suffix(self, suffix: str) -> Uri:
        return Uri(self.scheme, str(PurePosixPath(self.path).with_suffix(suffix)))

    def __truediv__(self, other: str | PurePosixPath | Path) -> Uri:
        return Uri(self.scheme, posixpath.join(self.path, str(other)).strip("/"))

    def relative_to(self, other: Uri) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)

    def is_relative_to(self, other: Uri) -> bool:
        return self.scheme == other.scheme and PurePosixPath(self.path).is_relative_to(other.path)


#: Where the engine reads or writes: a local path or an object-store URI.
Location: TypeAlias = Path | Uri


def as_location(text: str | os.PathLike[str]) -> Location:
    """A :class:`Uri` for ``scheme://…``, else a :class:`~pathlib.Path`."""
    return Uri.parse(text) if isinstance(text, str) and is_uri(text) else Path(text)


def model_location_arg(text: str) -> Path | str:
    """``-m``'s value for the router: a URI stays a string, a local path becomes a Path."""
    return text if is_uri(text) else Path(text)
