"""scikit-learn models saved in the skops format (``.skops``): loaded without pickle.

skops refuses to build objects of types it does not trust. Its defaults cover scikit-learn's
own estimators; anything else must be listed in the configuration (``[skops] trusted``), and
an unlisted type is refused with a message naming every one of them.

A skops file is a zip archive, and a small archive can expand to gigabytes (a ``schema.json``
padded to 1.5 GiB loaded in 37 s at 3.4 GB). The members' sizes are checked against
:mod:`modelrouter.limits` from the archive's directory, before anything is decompressed.
Python's ``zipfile`` (which skops reads with) never returns more bytes than a member
declares, so the declared sizes bound what is allocated.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

from modelrouter.backends.base import read_model_bytes
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.errors import ModelLoadError
from modelrouter.limits import MAX_SKOPS_MEMBER_BYTES, MAX_SKOPS_SCHEMA_BYTES, MAX_SKOPS_TOTAL_BYTES
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

__all__ = ["SkopsModel"]


class SkopsModel(SklearnModel):
    """A fitted estimator from a ``.skops`` file; scored exactly like a pickled one."""

    model_type = ModelType.SKOPS

    @classmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> SkopsModel:
        import skops.io as sio

        raw = read_model_bytes(path, data)
        _check_sizes(path, raw)
        try:
            untrusted = [t for t in sio.get_untrusted_types(data=raw) if t not in set(trusted)]
        except Exception as exc:  # a zip that is not a skops file fails in many ways
            raise ModelLoadError(
                f"{path}: cannot load as a skops file ({type(exc).__name__}: {exc})"
            ) from exc
        if untrusted:
            raise ModelLoadError(
                f"{path}: refusing untrusted types {', '.join(untrusted)}; "
                "list them under [skops] trusted in the config if you trust this file"
            )
        try:
            estimator = sio.loads(raw, trusted=list(trusted) or None)
        except Exception as exc:
            raise ModelLoadError(
                f"{path}: cannot load as a skops file ({type(exc).__name__}: {exc})"
            ) from exc
        return cls(path, estimator)


def _check_sizes(path: ModelLocation, raw: bytes) -> None:
    """Refuse an archive whose members would expand beyond the limits (:class:`ModelLoadError`)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelLoadError(f"{path}: cannot load as a skops file (not a zip archive: {exc})") from None
    total = 0
    for member in members:
        limit = MAX_SKOPS_SCHEMA_BYTES if member.filename == "schema.json" else MAX_SKOPS_MEMBER_BYTES
        if member.file_size > limit:
            raise ModelLoadError(
                f"{path}: refusing to load: member {member.filename!r} expands to "
                f"{member.file_size:,} bytes, above the limit of {limit:,} for a skops file"
            )
        total += member.file_size
    if total > MAX_SKOPS_TOTAL_BYTES:
        raise ModelLoadError(
            f"{path}: refusing to load: its members expand to {total:,} bytes, above the limit "
            f"of {MAX_SKOPS_TOTAL_BYTES:,} for a skops file"
        )
