"""The strategy interface every model backend implements.

A backend wraps one loaded model instance. It takes a frame — a pandas ``DataFrame`` or a
pyarrow ``RecordBatch``/``Table`` — selects the model's feature columns *by name* (docs/specification.md
§4), converts them to the model's input types and returns numpy arrays.

Instances are not required to be thread-safe: the pool lends each one to a single borrower
at a time.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from modelrouter.backends.declared_outputs import OutputSpec, RawOutput, checked_labels, checked_probabilities
from modelrouter.features import Frame, column_names, frame_length, slice_frame
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

__all__ = [
    "InputSchema",
    "Model",
    "OutputSpec",
    "Prediction",
    "RawOutput",
    "file_kind",
    "parse_name_list",
    "read_model_bytes",
    "unique_input_names",
]


@dataclass(frozen=True)
class InputSchema:
    """What a model consumes.

    ``names`` are the feature names in the model's order, or ``None`` when the model knows
    none (then columns are taken by position). ``dtypes`` holds one type name per feature
    (``float32``, ``float64``, ``int64``, ``string``, ``number``…). ``width`` is the number of
    features; 0 means unknown (a pipeline whose first step records nothing): every candidate
    column is then fed, as numbers.
    """

    names: tuple[str, ...] | None
    dtypes: tuple[str, ...]
    width: int
    #: The library rule that may have changed the names from the fitted columns
    #: (:data:`modelrouter.feature_names.NAME_RULES`), or ``None``: exact names only.
    name_rule: str | None = None

    def resolve(self, available: Sequence[str], exclude: Sequence[str] = ()) -> tuple[str, ...]:
        """Return the input columns to feed, in model order.

        With known names every one must be present, by exact name or by ``name_rule``
        (:class:`MissingColumnsError` names all the absent ones and the nearest columns);
        extra columns are ignored. Without names, the columns not in ``exclude`` are taken in
        order and their count must equal ``width``.
        """
        from modelrouter.errors import DataError, MissingColumnsError
        from modelrouter.feature_names import match_columns, suggestions

        if self.names is not None:
            matched, missing = match_columns(self.names, available, self.name_rule)
            if missing:
                hints = {m: suggestions(m, available, self.name_rule) for m in missing}
                raise MissingColumnsError(missing, list(available), hints)
            return tuple(matched[n] for n in self.names)
        excluded = set(exclude)
        chosen = tuple(c for c in available if c not in excluded)
        if self.width and len(chosen) != self.width:
            raise DataError(
                f"the model knows no feature names and expects {self.width} columns, "
                f"but the input has {len(chosen)} candidate columns ({', '.join(chosen)}); "
                "exclude non-feature columns with -k"
            )
        return chosen


@dataclass(frozen=True)
class Prediction:
    """Labels and/or probabilities for one frame; either may be ``None`` if not asked.

    ``labels`` has shape ``(rows,)``, or ``(rows, outputs)`` for a multi-output model;
    ``probabilities`` ``(rows, columns)``: every output's classes side by side
    (:meth:`OutputSpec.proba_names`), in the model's own float dtype.
    """

    labels: npt.NDArray[np.generic] | None
    probabilities: npt.NDArray[np.floating[Any]] | None


class Model(ABC):
    """One loaded model instance (Strategy). Subclasses implement loading and inference."""

    model_type: ClassVar[ModelType]

    def __init__(self, path: ModelLocation) -> None:
        self.path = path

    @classmethod
    @abstractmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> Model:
        """Load one instance from ``path`` (or from ``data``, the file's bytes already read).

        ``threads`` caps the native threads this instance may use for one call (``None``:
        the backend's default); ``concurrent`` says several instances will run at once;
        ``trusted`` names types allowed beyond the format's defaults (for formats that check
        types, like skops). The pool passes ``data`` so every instance is built from the bytes
        whose sha256 it checked (a file swapped in between is never loaded). Raises
        :class:`ModelLoadError` when the file is missing or unusable.
        """

    @classmethod
    def check_pinnable(cls, path: ModelLocation, data: bytes) -> None:
        """Raise :class:`IntegrityError` when a sha256 pin of ``data`` would not cover
        everything loading the model reads (ONNX external data). Default: it does."""
        return

    @property
    @abstractmethod
    def schema(self) -> InputSchema:
        """The features this model consumes."""

    @property
    @abstractmethod
    def classes(self) -> npt.NDArray[np.generic] | None:
        """Class labels in probability-column order, or ``None`` for a regressor."""

    @property
    def has_probabilities(self) -> bool:
        """Whether :meth:`predict_proba` works (classifiers with probabilities)."""
        return self.classes is not None

    @property
    @abstractmethod
    def label_dtype(self) -> np.dtype[np.generic]:
        """The dtype of :meth:`predict`'s result (known without running the model)."""

    @property
    def outputs(self) -> OutputSpec:
        """What :meth:`run` returns, per output (known without running the model).

        Single-output models (the default) declare their :attr:`classes` and
        :attr:`label_dtype`; multi-output backends override this.
        """
        return OutputSpec(classes=(self.classes,), dtypes=(self.label_dtype,))

    @abstractmethod
    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction | RawOutput:
        """Run the model on the named ``features`` of a non-empty ``frame``.

        Return what the model gave, as it gave it: :meth:`run` checks it against
        :attr:`outputs` (rows, shape, classes, probability range) in one place.
        """

    def assign_classes(self, labels: Sequence[str]) -> None:
        """Name the classes of a model that records none (``--classes``, config ``classes``).

        Only formats that can lack class labels (ONNX) accept it; the others know theirs.
        Raises :class:`ConfigError`.
        """
        from modelrouter.errors import ConfigError

        raise ConfigError(
            f"{self.path}: {self.model_type} models record their own classes; "
            "--classes (config key classes) applies to ONNX models only"
        )

    # -- public API, identical for every backend ------------------------------------------

    def require_probabilities(self) -> None:
        """Raise :class:`ProbabilitiesUnsupportedError` unless :meth:`predict_proba` works."""
        if not self.has_probabilities:
            from modelrouter.errors import ProbabilitiesUnsupportedError

            spec = self.outputs
            # Float values and no classes: a regressor. Integer or text labels without known
            # classes: a classifier whose class lists were not recorded (a foreign ONNX file).
            if all(c is None for c in spec.classes) and all(d.kind == "f" for d in spec.dtypes):
                reason = "the model is a regressor and gives no probabilities"
            elif not spec.has_classes:
                reason = (
                    "the class labels of the model's outputs are unknown (no 'class_labels' metadata "
                    "listing each output's classes), so its probabilities cannot be named; "
                    "`modelrouter convert` records them"
                )
            else:
                reason = "the model is a classifier without probabilities"
            raise ProbabilitiesUnsupportedError(
                f"{self.path}: {reason}; use predict instead of predict-proba"
            )

    def run(
        self,
        frame: Frame,
        *,
        labels: bool = True,
        probabilities: bool = False,
        exclude: Sequence[str] = (),
    ) -> Prediction:
        """Score ``frame``; ``exclude`` lists columns never used as positional features.

        Empty frames give empty arrays of the right dtype without calling the model.
        Raises :class:`DataError` for missing/unconvertible columns and rejected values,
        :class:`ProbabilitiesUnsupportedError` when probabilities are asked of a regressor,
        :class:`ModelError` when the model itself fails on the input.
        """
        if probabilities:
            self.require_probabilities()
        features = self.schema.resolve(column_names(frame), exclude)
        spec = self.outputs
        rows = frame_length(frame)
        if rows == 0:
            shape: tuple[int, ...] = (0,) if not spec.multi else (0, spec.count)
            label_dtype = spec.dtypes[0] if len(set(spec.dtypes)) == 1 else np.dtype(object)
            return Prediction(
                labels=np.empty(shape, dtype=label_dtype) if labels else None,
                probabilities=np.empty((0, spec.proba_width), dtype=spec.proba_dtype)
                if probabilities
                else None,
            )
        from modelrouter.errors import ModelFaultError, ModelRouterError

        try:
            raw = self._infer(frame, features, labels=labels, probabilities=probabilities)
        except ModelFaultError as exc:
            if exc.row is None and rows > 1:
                exc.row = self._failing_row(frame, features, labels=labels, probabilities=probabilities)
            raise
        except ModelRouterError:
            raise
        except BaseException as exc:
            if _may_be_a_signal(exc):
                raise
            # A model that breaks on valid input is a model problem, not a bug of ours; so is
            # one that calls sys.exit() or raises KeyboardInterrupt itself.
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            fault = ModelFaultError(
                f"{self.path}: the model failed while predicting ({type(exc).__name__}: {detail})"
            )
            if isinstance(exc, Exception):
                fault.row = (
                    0
                    if rows == 1
                    else self._failing_row(frame, features, labels=labels, probabilities=probabilities)
                )
            raise fault from exc
        who = str(self.path)
        return Prediction(
            labels=checked_labels(raw.labels, rows, spec, who) if labels else None,
            probabilities=checked_probabilities(raw.probabilities, rows, spec, who)
            if probabilities
            else None,
        )

    def _failing_row(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> int | None:
        """The first row that alone makes the model fail, found by halving the frame (at most
        two calls per halving: twice the frame's scoring, paid only on the failure path);
        ``None`` when the failure does not narrow down to one row (it depends on the batch)."""
        from modelrouter.errors import DataError

        def fails(start: int, stop: int) -> bool:
            try:
                self._infer(
                    slice_frame(frame, start, stop), features, labels=labels, probabilities=probabilities
                )
            except DataError:
                return False  # not the model's failure: that part is judged elsewhere
            except Exception:
                return True
            return False

        low, high = 0, frame_length(frame)
        while high - low > 1:
            middle = (low + high) // 2
            if fails(low, middle):
                high = middle
            elif fails(middle, high):
                low = middle
            else:
                return None
        return low if fails(low, low + 1) else None

    def predict(self, frame: Frame) -> npt.NDArray[np.generic]:
        """Labels for classifiers, values for regressors; shape ``(rows,)``."""
        result = self.run(frame, labels=True).labels
        assert result is not None
        return result

    def predict_proba(self, frame: Frame) -> npt.NDArray[np.floating[Any]]:
        """Class probabilities, shape ``(rows, len(classes))`` in :attr:`classes` order."""
        result = self.run(frame, labels=False, probabilities=True).probabilities
        assert result is not None
        return result


def _may_be_a_signal(exc: BaseException) -> bool:
    """Whether ``exc`` may come from a signal handler rather than from the model.

    Signal handlers run only in the main thread, and raise BaseExceptions that are not
    Exceptions (KeyboardInterrupt, the CLI's Interrupted): those must go on interrupting.
    Anything raised in another thread (the CLI scores on worker threads), and SystemExit
    anywhere, can only come from the model's own code.
    """
    if isinstance(exc, Exception | SystemExit | GeneratorExit):
        return False
    return threading.current_thread() is threading.main_thread()


def read_model_bytes(path: ModelLocation, data: bytes | None) -> bytes:
    """``data`` if given, else the file's bytes; :class:`ModelLoadError` when it is missing.

    A URI (``s3://…``) is fetched by :func:`modelrouter.remote.fetch_model`, imported only
    then (pyarrow's filesystem layer and the S3 client stay out of local-only processes).
    """
    if data is not None:
        return data
    from modelrouter.errors import ModelLoadError

    if isinstance(path, str):
        from modelrouter.remote import fetch_model

        return fetch_model(path)
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; what was opened is
        # checked before reading, so a device (/dev/zero) or a pipe is refused instead of
        # being read without end (memory exhausted) or waited on forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: model file not found") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ModelLoadError(f"{path}: is a directory, not a model file")
        raise ModelLoadError(f"{path}: is {file_kind(mode)}, not a regular model file")
    with os.fdopen(fd, "rb") as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise ModelLoadError(f"{path}: cannot read ({exc.strerror})") from None


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: ``a character device``, ``a named pipe``, …"""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def unique_input_names(path: ModelLocation, names: Sequence[str] | None) -> None:
    """Refuse a model whose input names repeat one (:class:`ModelLoadError`, exit 4).

    Columns are matched by name (docs/specification.md §4): a name listed twice would feed
    one column to two inputs, and the second input's own column never — whatever the file
    format claims, that is a broken model, not something to score with."""
    if names is None:
        return
    seen: set[str] = set()
    for name in names:
        if name in seen:
            from modelrouter.errors import ModelLoadError

            raise ModelLoadError(
                f"{path}: the model's input names list {name!r} more than once; "
                "each input must have its own name"
            )
        seen.add(name)


def parse_name_list(raw: str, *, what: str = "feature_names", strings_only: bool = True) -> tuple[str, ...]:
    """Parse a ``feature_names``/``class_labels`` metadata value: JSON list or comma-separated.

    Text that starts like JSON (``[``, ``{``, ``"``) must be a JSON list of strings (with
    ``strings_only=False`` also numbers or booleans: class labels); anything else raises
    :class:`ValueError` saying what is wrong with ``what``.
    """
    text = raw.strip()
    if not text.startswith(("[", "{", '"')):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"metadata {what!r} is not valid JSON ({exc})") from None
    allowed: tuple[type, ...] = (str,) if strings_only else (str, int, float, bool)
    if not isinstance(value, list) or not all(isinstance(v, allowed) for v in value):
        kind = "strings" if strings_only else "labels"
        raise ValueError(f"metadata {what!r} must be a JSON list of {kind}, not {_preview(text)}")
    return tuple(str(v) for v in value)


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
