"""Building a pool's instances: the model bytes read and pinned once, one builder for all.

:meth:`modelrouter.pool.ModelPool.load` reads the model file once, checks a sha256 pin on
exactly those bytes *before* anything is unpickled, and builds every instance from them with
the same settings — in the foreground, or later on the pool's loading thread. Warnings that
every instance repeats are issued once per pool.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from modelrouter.backends import Model
from modelrouter.backends.base import read_model_bytes
from modelrouter.backends.declared_outputs import refuse_repeated_classes
from modelrouter.errors import IntegrityError
from modelrouter.locations import ModelLocation, is_uri

_T = TypeVar("_T")

__all__ = ["default_threads", "instance_builder", "pinned_bytes", "sha256_of", "warned_once"]


def default_threads(size: int) -> int:
    """Native threads per instance so that ``size × threads ≤ cores``."""
    return max(1, (os.cpu_count() or 1) // max(1, size))


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_bytes(
    backend: type[Model], location: ModelLocation, data: bytes | None, sha256: str | None
) -> tuple[bytes, str | None]:
    """The model's bytes (``data`` if the caller fetched them) and their sha256 when known.

    Raises :class:`IntegrityError` when ``sha256`` is given and differs, or when the pin would
    not cover everything the backend loads (:meth:`Model.check_pinnable`).
    """
    # Read once: the digest is checked on exactly the bytes every instance is built from,
    # so a file replaced after the check is never unpickled.
    data = read_model_bytes(location, data)
    # Hashed when pinned (checked below) or fetched from a store (the bytes are in memory
    # now and nowhere to read again); a local file is hashed by whoever asks, later.
    actual = hashlib.sha256(data).hexdigest() if sha256 is not None or is_uri(location) else None
    if sha256 is not None and actual != sha256.lower():
        raise IntegrityError(
            f"{location}: sha256 is {actual}, expected {sha256.lower()}; "
            "refusing to load a model that differs from the pinned one"
        )
    if sha256 is not None:
        backend.check_pinnable(location, data)  # a pin must cover all that is loaded
    return data, actual


def instance_builder(
    backend: type[Model],
    location: ModelLocation,
    data: bytes,
    *,
    threads: int,
    concurrent: bool,
    trusted: Sequence[str],
    classes: Sequence[str] | None,
) -> Callable[[], Model]:
    """A function that builds one instance from ``data``, the same way each time it is called."""

    def build() -> Model:
        instance = backend.load(location, threads=threads, concurrent=concurrent, trusted=trusted, data=data)
        if classes is not None:
            instance.assign_classes(classes)
        refuse_repeated_classes(instance.outputs, str(location))
        return instance

    return build


def warned_once(seen: set[tuple[type[Warning], str]], load: Callable[[], _T]) -> _T:
    """Run ``load``, issuing each of its warnings once across every call sharing ``seen``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load()
    for w in caught:
        key = (w.category, str(w.message))
        if key not in seen:
            seen.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result
