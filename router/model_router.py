"""ModelRouter: one pool per model type, a default type, and the process-wide instance.

The singleton is reached through :func:`get_router` (and dropped with :func:`reset_router`
in tests) rather than a ``__new__`` that would silently re-run ``__init__``.
"""

from __future__ import annotations

import threading

from modelrouter.errors import UnknownModelTypeError
from modelrouter.model_type import ModelType
from modelrouter.pool import Borrow, ModelPool, PoolStats

__all__ = ["ModelRouter", "get_router", "reset_router"]


class ModelRouter:
    """Routes borrow requests to the pool registered for a model type. Thread-safe."""

    def __init__(self) -> None:
        self._pools: dict[ModelType, ModelPool] = {}
        self._default: ModelType | None = None
        self._lock = threading.Lock()

    def register(self, model_type: ModelType | str, pool: ModelPool) -> None:
        """Route ``model_type`` to ``pool``; a pool registered before for it is closed."""
        kind = ModelType.parse(model_type)
        if pool.model_type != kind:
            raise ValueError(f"cannot register a {pool.model_type} pool as {kind}")
        with self._lock:
            old = self._pools.get(kind)
            self._pools[kind] = pool
        if old is not None and old is not pool:
            old.close()

    def unregister(self, model_type: ModelType | str) -> None:
        """Close and forget the pool of ``model_type`` (no error if there is none)."""
        with self._lock:
            pool = self._pools.pop(ModelType.parse(model_type), None)
            if self._default == model_type:
                self._default = None
        if pool is not None:
            pool.close()

    @property
    def types(self) -> tuple[ModelType, ...]:
        """Registered model types, in registration order."""
        with self._lock:
            return tuple(self._pools)

    @property
    def default_type(self) -> ModelType | None:
        """The type used when none is named: the one set, else the only registered type."""
        with self._lock:
            if self._default is not None:
                return self._default
            return next(iter(self._pools)) if len(self._pools) == 1 else None

    @default_type.setter
    def default_type(self, value: ModelType | str | None) -> None:
        with self._lock:
            self._default = None if value is None else ModelType.parse(value)

    def pool(self, model_type: ModelType | str | None = None) -> ModelPool:
        """The pool for ``model_type`` (default type when ``None``).

        Raises :class:`UnknownModelTypeError` naming the registered types.
        """
        kind = self.default_type if model_type is None else ModelType.parse(model_type)
        with self._lock:
            pool = self._pools.get(kind) if kind is not None else None
            registered = ", ".join(self._pools) or "none"
        if pool is None:
            wanted = "no model type given and no default set" if kind is None else f"no pool for '{kind}'"
            raise UnknownModelTypeError(f"{wanted} (registered: {registered})")
        return pool

    def acquire_model(
        self,
        model_type: ModelType | str | None = None,
        timeout: float | None = None,
        *,
        queued_at: float | None = None,
    ) -> Borrow:
        """Borrow an instance: ``with router.acquire_model() as m`` (or ``async with``).

        Blocks while every instance is busy, up to ``timeout`` seconds (``None``: forever).
        The instance goes back to its pool when the block exits, even on an exception.
        ``queued_at``: see :meth:`ModelPool.borrow`.
        """
        return self.pool(model_type).borrow(timeout, queued_at=queued_at)

    def stats(self) -> dict[ModelType, PoolStats]:
        """A snapshot per registered pool."""
        with self._lock:
            pools = list(self._pools.items())
        return {kind: pool.stats() for kind, pool in pools}

    def close(self) -> None:
        """Close every pool and forget them; idempotent."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            self._default = None
        for pool in pools:
            pool.close()


_instance: ModelRouter | None = None
_instance_lock = threading.Lock()


def get_router() -> ModelRouter:
    """The process-wide router, created on first use (thread-safe)."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = ModelRouter()
    return _instance


def reset_router() -> None:
    """Close the process-wide router's pools and forget it (the next get makes a new one)."""
    global _instance
    with _instance_lock:
        router, _instance = _instance, None
    if router is not None:
        router.close()
