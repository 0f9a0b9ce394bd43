"""scikit-learn models saved in the skops format (``.skops``): loaded without pickle.

skops refuses to build objects of types it does not trust. Its defaults cover scikit-learn's
own estimators; anything else must be listed in the configuration (``[skops] trusted``), and
an unlisted type is refused with a message naming every one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelrouter.backends.base import read_model_bytes
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.errors import ModelLoadError
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
