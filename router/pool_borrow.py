"""The borrower's side of a pool: the ``with`` / ``async with`` borrowing and the lent model.

:class:`Borrow` enters by waiting for an instance (blocking for threads, on a future of the
running loop for coroutines) and leaves by returning it; :class:`BorrowedModel` is the
instance as the borrower sees it, each model call tracked so that the instance goes back
only when the last call running on it ends. The pool's own bookkeeping is in
:mod:`modelrouter.pool`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from modelrouter.backends import Model, Prediction
from modelrouter.backends.base import InputSchema, OutputSpec
from modelrouter.features import Frame, frame_length
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType
from modelrouter.pool_claims import Claim

if TYPE_CHECKING:
    from modelrouter.pool import ModelPool

__all__ = ["Borrow", "BorrowedModel", "settle"]


def settle(pool: ModelPool, claim: Claim) -> None:
    """Abandon ``claim`` even if another interrupt lands meanwhile (Ctrl-C pressed twice):
    :meth:`modelrouter.pool.ModelPool._abandon` can be repeated, and the exception being raised already
    carries the interrupt."""
    for _ in range(100):
        try:
            pool._abandon(claim)
            return
        except BaseException:  # an interrupt again: abandoning is idempotent
            continue


class BorrowedModel:
    """The lent instance as the borrower sees it: the model API, with rows counted.

    Model calls made through it (``run``, ``predict``, ``predict_proba``) are tracked: when
    the borrow ends while one still runs in another thread (a task cancelled around
    ``await asyncio.to_thread(model.predict, …)``), the instance goes back to the pool when
    that call returns, and calls started after the borrow ended raise ``RuntimeError``.
    ``model`` is the raw instance, for its metadata; do not score with it directly.
    """

    def __init__(self, pool: ModelPool, claim: Claim) -> None:
        self._pool = pool
        self._claim = claim
        assert claim.instance is not None
        self.model: Model = claim.instance

    @property
    def model_type(self) -> ModelType:
        return self.model.model_type

    @property
    def path(self) -> ModelLocation:
        return self.model.path

    @property
    def schema(self) -> InputSchema:
        return self.model.schema

    @property
    def classes(self) -> npt.NDArray[np.generic] | None:
        return self.model.classes

    @property
    def has_probabilities(self) -> bool:
        return self.model.has_probabilities

    @property
    def label_dtype(self) -> np.dtype[np.generic]:
        return self.model.label_dtype

    @property
    def outputs(self) -> OutputSpec:
        return self.model.outputs

    def run(
        self,
        frame: Frame,
        *,
        labels: bool = True,
        probabilities: bool = False,
        exclude: Sequence[str] = (),
    ) -> Prediction:
        """See :meth:`Model.run`. Raises ``RuntimeError`` once the borrow has ended."""
        instance = self._pool._begin_call(self._claim)
        rows: int | None = None
        try:
            result = instance.run(frame, labels=labels, probabilities=probabilities, exclude=exclude)
            rows = frame_length(frame)
        finally:
            self._pool._end_call(self._claim, rows)
        return result

    @contextmanager
    def tracked(self, rows: int) -> Iterator[None]:
        """Count work done with :attr:`model` directly (an explanation) as a model call on
        ``rows`` rows: the pool's ``chunks``/``rows`` when it ends without raising, and, like
        :meth:`run`, the instance goes back only once it has ended."""
        self._pool._begin_call(self._claim)
        counted: int | None = None
        try:
            yield
            counted = rows
        finally:
            self._pool._end_call(self._claim, counted)

    def predict(self, frame: Frame) -> npt.NDArray[np.generic]:
        """See :meth:`Model.predict`."""
        labels = self.run(frame).labels
        assert labels is not None
        return labels

    def predict_proba(self, frame: Frame) -> npt.NDArray[np.floating[Any]]:
        """See :meth:`Model.predict_proba`."""
        proba = self.run(frame, labels=False, probabilities=True).probabilities
        assert proba is not None
        return proba


class Borrow:
    """One borrowing, usable once at a time with ``with`` or ``async with``.

    Entering waits for an instance; leaving returns it (see :class:`BorrowedModel` for calls
    still running then). An exception of any kind while waiting — a timeout, a
    ``KeyboardInterrupt``, a task cancellation — gives back whatever had been handed over.
    """

    def __init__(self, pool: ModelPool, timeout: float | None, queued_at: float | None = None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._queued_at = queued_at
        self._claim: Claim | None = None

    def _start(self) -> Claim:
        if self._claim is not None:
            raise RuntimeError("a Borrow cannot be entered twice")
        self._claim = Claim(self._queued_at)
        return self._claim

    def __enter__(self) -> BorrowedModel:
        claim = self._start()
        try:
            self._pool._checkout(claim, self._timeout)
            return BorrowedModel(self._pool, claim)
        except BaseException:
            self._claim = None
            settle(self._pool, claim)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        claim = self._claim
        if claim is None:
            return
        try:
            self._pool._release(claim, failed=exc_type is not None)
        except BaseException:
            settle(self._pool, claim)
            raise
        finally:
            self._claim = None

    async def __aenter__(self) -> BorrowedModel:
        claim = self._start()
        try:
            # Waits on a future of this loop, not in an executor thread (module docstring).
            await self._pool._acheckout(claim, self._timeout)
            return BorrowedModel(self._pool, claim)
        except BaseException:
            self._claim = None
            settle(self._pool, claim)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __del__(self) -> None:
        # A signal can land as ``__exit__`` is entered, before its first line runs (CPython
        # checks for signals there): the block is left without returning the instance. The
        # borrowing object is dropped right after, so it returns it here.
        claim = self._claim
        if claim is not None:
            self._claim = None
            try:
                self._pool._release(claim, failed=True)
            except Exception:  # nothing to report to at collection time
                pass
