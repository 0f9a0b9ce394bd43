"""What an input file was when it was scored, recorded with its output, for ``--resume``.

An output is a complete one (atomic writes), but it is only *current* when its input is the
file it was made from. Each dataset output records its input's identity in its provenance:

- a local file: its size, ``st_mtime_ns`` and the sha256 of its bytes;
- an object: its size and ETag (S3), or its size and modification time elsewhere.

``--resume`` skips an output only when every recorded field equals the input's value now;
an output with no record (written before this existed, or by another tool) or a different
one is stale and is scored again (docs/specification.md §9). The size and time are the
cheap check; the digest catches a rewrite that kept both (``cp -p``, ``touch -r``).

Parquet outputs carry the record in their key-value metadata (``modelrouter.input_*``),
inside the file, so it is committed with it. CSV and JSON Lines have no place for metadata:
such an output gets a sidecar, :func:`sidecar_for` — a hidden JSON file beside it, never listed as data by
a dataset (a ``.`` name), renamed into place *after* the output: an interruption between
the two renames leaves the previous record (or none), which no longer matches, so the
output is redone rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from modelrouter.errors import DataError
from modelrouter.storage import object_store as storage
from modelrouter.storage.formats import split_name
from modelrouter.storage.object_store import Location

__all__ = [
    "IDENTITY_PREFIX",
    "identity_matches",
    "input_identity",
    "recorded_identity",
    "sidecar_for",
]

#: The provenance keys of the input's identity start with this.
IDENTITY_PREFIX = "modelrouter.input_"
_BLOCK = 1 << 20


def sidecar_for(output: Location) -> Location:
    """Where a CSV or JSON Lines output's provenance goes: ``.<name>.provenance.json`` beside it."""
    return output.with_name(f".{output.name}.provenance.json")


def input_identity(location: Location) -> dict[str, str]:
    """The identity of the input at ``location`` now, as provenance keys and text values.

    Raises :class:`DataError` when it cannot be read (the run would fail on it anyway).
    """
    if isinstance(location, Path):
        return _local_identity(location)
    return _remote_identity(location)


def _local_identity(path: Path) -> dict[str, str]:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            before = os.fstat(handle.fileno())
            while block := handle.read(_BLOCK):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"{path}: cannot read this file of the dataset ({exc.strerror})") from None
    return {
        f"{IDENTITY_PREFIX}size": str(before.st_size),
        f"{IDENTITY_PREFIX}mtime_ns": str(before.st_mtime_ns),
        f"{IDENTITY_PREFIX}sha256": digest.hexdigest(),
    }


def _remote_identity(uri: storage.Uri) -> dict[str, str]:
    return {f"{IDENTITY_PREFIX}{key}": value for key, value in storage.object_version(uri).items()}


def identity_matches(recorded: Mapping[str, str], location: Location) -> bool:
    """Whether the input at ``location`` is still the one ``recorded`` describes (an empty
    record matches nothing). The size and time are compared before the bytes are hashed."""
    if not recorded:
        return False
    if isinstance(location, Path):
        try:
            info = location.stat()
        except OSError:
            return False
        quick = {
            f"{IDENTITY_PREFIX}size": str(info.st_size),
            f"{IDENTITY_PREFIX}mtime_ns": str(info.st_mtime_ns),
        }
        if any(recorded.get(k) != v for k, v in quick.items()):
            return False
    try:
        return dict(recorded) == input_identity(location)
    except DataError:
        return False


def recorded_identity(output: Location) -> dict[str, str]:
    """The input identity an existing output records; empty when it records none or the
    record cannot be read (either way the output is not trusted to be current)."""
    try:
        if split_name(output.name)[1].lower() in (".parquet", ".pq"):
            metadata = _parquet_metadata(output)
        else:
            metadata = _sidecar(sidecar_for(output))
    except Exception:  # an unreadable record is no record: the output is scored again
        return {}
    return {k: str(v) for k, v in metadata.items() if k.startswith(IDENTITY_PREFIX)}


def _parquet_metadata(output: Location) -> Mapping[str, str]:
    if isinstance(output, Path):
        raw = pq.read_metadata(output).metadata or {}
    else:
        with storage.open_random(output) as handle:
            raw = pq.read_metadata(handle).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items()}


def _sidecar(path: Location) -> Mapping[str, Any]:
    if isinstance(path, Path):
        text = path.read_text(encoding="utf-8")
    else:
        with storage.open_stream(path) as handle:
            text = handle.read().decode("utf-8")
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else {}
