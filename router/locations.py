"""Model locations: a local path or a URI (``s3://bucket/key``), told apart without any I/O.

A URI stays a string (``pathlib`` would fold ``s3://`` into ``s3:/``); its bytes are read by
:func:`modelrouter.remote.fetch_model` (imported only for a URI), or given by the caller —
:func:`modelrouter.load_pool`'s ``fetch``, or ``data`` to :meth:`ModelPool.load` — so the
sha256 pin is checked on exactly the bytes fetched, before anything is unpickled. A
``file://`` URI is a local path spelled as a URI: :func:`local_path` turns it into the path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

__all__ = ["ModelLocation", "is_uri", "local_path", "model_location"]

#: A local file, or a URI string (``scheme://…``).
ModelLocation: TypeAlias = Path | str

# Two or more scheme characters, so a Windows drive ("C://…") is never taken for a URI.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://…`` (``s3://bucket/key``, ``gs://…``); False for local paths."""
    return isinstance(location, str) and bool(_URI.match(location))


def local_path(text: str) -> str:
    """``file:///abs/path`` (or ``file://localhost/abs/path``) as the local path it names,
    percent-escapes decoded; any other text unchanged.

    So a ``file://`` URI is a local path everywhere (temp-file-and-rename writes, the
    same-file checks by inode). Raises :class:`ValueError` for a ``file://`` URI naming
    another host, which this machine cannot reach as a file.
    """
    if text[:7].lower() != "file://":
        return text
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"{text}: a file:// URI must name a local path (file:///path), not host {parts.netloc!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{text}: a file:// URI takes no query or fragment (escape '?' as %3F, '#' as %23)")
    path = unquote(parts.path)
    if not path:
        raise ValueError(f"{text}: names no path")
    return path


def model_location(raw: str | os.PathLike[str], base: Path | None = None) -> ModelLocation:
    """A URI as it is, else the local path made absolute (relative to ``base`` when given).

    A ``file://`` URI is the local path it names (:func:`local_path`).
    """
    if isinstance(raw, str):
        raw = local_path(raw)
    if isinstance(raw, str) and is_uri(raw):
        return raw
    path = Path(raw)
    return ((base / path) if base is not None else path).resolve()
