"""Model locations: a local path or a URI (``s3://bucket/key``), told apart without any I/O.

The library reads local model files itself and never touches the network: a URI stays a
string (``pathlib`` would fold ``s3://`` into ``s3:/``) and its bytes come from the caller —
:func:`modelrouter.load_pool`'s ``fetch``, or ``data`` given to :meth:`ModelPool.load` — so the
sha256 pin is checked on exactly the bytes fetched, before anything is unpickled.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeAlias

__all__ = ["ModelLocation", "is_uri", "model_location"]

#: A local file, or a URI string (``scheme://…``).
ModelLocation: TypeAlias = Path | str

# Two or more scheme characters, so a Windows drive ("C://…") is never taken for a URI.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://…`` (``s3://bucket/key``, ``gs://…``); False for local paths."""
    return isinstance(location, str) and bool(_URI.match(location))


def model_location(raw: str | os.PathLike[str], base: Path | None = None) -> ModelLocation:
    """A URI as it is, else the local path made absolute (relative to ``base`` when given)."""
    if isinstance(raw, str) and is_uri(raw):
        return raw
    path = Path(raw)
    return ((base / path) if base is not None else path).resolve()
