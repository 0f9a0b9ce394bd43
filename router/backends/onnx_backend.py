"""ONNX models run by onnxruntime.

Handles what skl2onnx and other converters produce: one tensor input or one input per
column, classifiers with or without ZipMap, a fixed or dynamic batch dimension, and the
``feature_names`` / ``class_labels`` metadata properties (docs/specification.md §4).

What the session's inputs and outputs say is read by :mod:`~modelrouter.backends.onnx_signature`,
external weights by :mod:`~modelrouter.backends.onnx_external`; the graph's classes, ZipMap and
non-finite handling by ``onnx_graph``, ``onnx_zipmap`` and ``onnx_nonfinite``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from modelrouter.backends.base import (
    InputSchema,
    Model,
    OutputSpec,
    Prediction,
    RawOutput,
    read_model_bytes,
)
from modelrouter.backends.onnx_external import external_tensors, with_external_data
from modelrouter.backends.onnx_graph import MalformedGraphError, graph_classes
from modelrouter.backends.onnx_signature import (
    TENSOR_DTYPES,
    dtype_of,
    input_schema,
    metadata_names,
    output_count,
    probability_output,
)
from modelrouter.backends.onnx_zipmap import Unzipped, without_zipmap
from modelrouter.errors import ConfigError, DataError, IntegrityError, ModelLoadError, RejectedValuesError
from modelrouter.features import NUMERIC_DTYPES, Frame, column_as, frame_length, numeric_matrix
from modelrouter.locations import ModelLocation
from modelrouter.model_type import ModelType

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["ROW_PARALLEL_FROM", "OnnxModel"]

#: The fewest rows onnxruntime's tree ensembles (1.32) score the way they score one row
#: with several threads (their ``parallel_N`` of 50, plus one): smaller calls are padded to
#: it so that a row's answer never depends on its batch (tests/router/test_onnx_batches.py).
ROW_PARALLEL_FROM = 51


class OnnxModel(Model):
    """An ``onnxruntime.InferenceSession`` plus what we learned about its inputs and outputs."""

    model_type = ModelType.ONNX

    def __init__(
        self,
        path: ModelLocation,
        session: onnxruntime.InferenceSession,
        graph_classes: Any,
        node_classes: Sequence[npt.NDArray[np.generic]] = (),
        raw: bytes | None = None,
    ) -> None:
        super().__init__(path)
        self.session = session
        #: The graph's bytes (shared by a pool's instances), read again only when a batch
        #: holds a non-finite value (see :meth:`_check_finite`).
        self._raw = raw
        self._refused: dict[str, frozenset[str]] | None = None
        # 0 is onnxruntime's "as many as cores".
        self._threads = session.get_session_options().intra_op_num_threads or (os.cpu_count() or 1)
        inputs = session.get_inputs()
        self._input_names = [i.name for i in inputs]
        metadata = session.get_modelmeta().custom_metadata_map
        self._schema, self._single_tensor = input_schema(path, inputs, metadata)
        first = inputs[0]
        self._batch = first.shape[0] if first.shape and isinstance(first.shape[0], int) else None
        outputs = session.get_outputs()
        self._label_output: str | None = outputs[0].name
        self._label_type = outputs[0].type
        #: A graph whose one output is a float [N, k] tensor and that has no classifier
        #: node: a classifier's probabilities when its k classes are named (``class_labels``
        #: metadata, ``--classes``), its labels their arg max; else k regression outputs.
        self._scores_width = _scores_only(outputs) if graph_classes is None and not node_classes else None
        proba = probability_output(outputs[1:])
        self._proba_output = proba.name
        self._zipmap = proba.zipmap
        self._proba_width = proba.width
        self._proba_dtype = proba_dtype = proba.dtype
        count = output_count(outputs[0].shape)
        label_dtype = self._declared_label_dtype()
        named = _metadata_labels(path, metadata) if self._scores_width is not None else None
        if named is not None:
            self._as_probabilities(named)
            return
        if count > 1:
            per_output = self._multi_output_classes(path, metadata, count, node_classes)
            self._classes: npt.NDArray[np.generic] | None = None
            dtypes = tuple(label_dtype if c is None else dtype_of(c, label_dtype) for c in per_output)
            self._outputs = OutputSpec(classes=per_output, dtypes=dtypes, proba_dtype=proba_dtype)
            return
        classes = graph_classes
        if "class_labels" in metadata:
            named = self._typed(np.asarray(metadata_names(path, metadata, "class_labels")))
            # The classifier node's order is the probability columns' order: metadata listing
            # the same labels never reorders them. Other labels than the first classifier
            # node's (an inner estimator's node, in a stack) are the model's own.
            if classes is None or sorted(map(str, named)) != sorted(map(str, classes)):
                classes = named
        self._classes = classes
        # Probabilities without labels load fine (predict needs no class names); only
        # predict-proba refuses, unless --classes / the config's `classes` name them.
        self._outputs = OutputSpec(
            classes=(self._classes,), dtypes=(self.label_dtype,), proba_dtype=proba_dtype
        )

    def _as_probabilities(self, classes: npt.NDArray[np.generic]) -> None:
        """Read the graph's one output as the probabilities of ``classes`` (labels: arg max)."""
        width = self._scores_width
        if width and width != len(classes):
            raise ModelLoadError(
                f"{self.path}: the model gives {width} scores per row but names "
                f"{len(classes)} classes ({', '.join(str(c) for c in classes)})"
            )
        self._proba_output, self._label_output = self._label_output, None
        self._proba_width = len(classes)
        self._proba_dtype = np.dtype(np.float64 if "double" in self._label_type else np.float32)
        self._label_type = "tensor(int64)" if classes.dtype.kind == "i" else "tensor(string)"
        self._classes = classes
        self._outputs = OutputSpec(
            classes=(classes,), dtypes=(self.label_dtype,), proba_dtype=self._proba_dtype
        )

    def _declared_label_dtype(self) -> np.dtype[Any]:
        if self._label_type == "tensor(string)":
            return np.dtype(object)
        return np.dtype(TENSOR_DTYPES.get(self._label_type, "float32"))

    def _typed(self, labels: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Metadata labels are text; an integer label tensor means integer classes."""
        if self._label_type == "tensor(int64)":
            try:
                return labels.astype(np.int64)
            except ValueError:
                raise ModelLoadError(
                    f"{self.path}: metadata 'class_labels' holds non-integer labels "
                    "but the model's labels are int64"
                ) from None
        return labels.astype(object)

    def _multi_output_classes(
        self,
        path: ModelLocation,
        metadata: dict[str, str],
        count: int,
        node_classes: Sequence[npt.NDArray[np.generic]],
    ) -> tuple[npt.NDArray[np.generic] | None, ...]:
        """Per-output classes: ``class_labels`` metadata as a list of lists (what convert
        writes, from the estimator's ``classes_`` per output, in output order), else one
        classifier node per output; unknown otherwise (labels only)."""
        if self._label_type not in ("tensor(int64)", "tensor(string)"):
            return (None,) * count  # a multi-output regressor
        raw = metadata.get("class_labels")
        if raw is not None and raw.strip().startswith("[["):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise ModelLoadError(f"{path}: metadata 'class_labels' is not valid JSON ({exc})") from None
            if (
                not isinstance(value, list)
                or len(value) != count
                or not all(isinstance(v, list) and v for v in value)
            ):
                raise ModelLoadError(
                    f"{path}: metadata 'class_labels' must list the classes of each of the {count} outputs"
                )
            return tuple(self._typed(np.asarray([str(x) for x in v])) for v in value)
        if len(node_classes) == count:
            return tuple(node_classes)
        return (None,) * count

    def _typed_labels(self, labels: Sequence[str], origin: str) -> npt.NDArray[np.generic]:
        """``labels`` in the label output's type (int64 outputs need integer labels)."""
        if self._label_type != "tensor(int64)":
            return np.asarray(list(labels), dtype=object)
        try:
            return np.asarray([int(v) for v in labels], dtype=np.int64)
        except ValueError:
            raise ConfigError(
                f"{self.path}: the model's label output is int64, so the class labels from the "
                f"{origin} must be integers (got {', '.join(labels)})"
            ) from None

    def assign_classes(self, labels: Sequence[str]) -> None:
        """Name the classes of a model whose graph records none (``--classes`` / config).

        When the graph does record them, ``labels`` must be the same (a check, not an
        override). Raises :class:`ConfigError` on a mismatch or an unusable label.
        """
        if self._scores_width is not None and self._label_output is not None:
            # One [N, k] score output and no classifier node: k classes name its columns.
            if self._scores_width and self._scores_width != len(labels):
                raise ConfigError(
                    f"{self.path}: the model gives {self._scores_width} scores per row but "
                    f"{len(labels)} classes were given ({', '.join(labels)})"
                )
            self._as_probabilities(np.asarray(list(labels), dtype=object))
            return
        if self._outputs.multi:
            raise ConfigError(
                f"{self.path}: --classes (config key classes) names the classes of a single-output "
                "model; this one has several outputs (their classes come from its metadata)"
            )
        given = self._typed_labels(labels, "--classes option or the config's classes key")
        if len(set(given.tolist())) != len(given):
            raise ConfigError(f"{self.path}: the classes given repeat a label ({', '.join(labels)})")
        width = self._proba_width
        if width is not None and width != len(given):
            raise ConfigError(
                f"{self.path}: the model gives {width} probabilities per row but "
                f"{len(given)} classes were given ({', '.join(labels)})"
            )
        if self._classes is not None:
            if [str(c) for c in self._classes] != [str(c) for c in given]:
                recorded = ", ".join(str(c) for c in self._classes)
                raise ConfigError(
                    f"{self.path}: the model records its classes ({recorded}); "
                    f"the classes given ({', '.join(labels)}) differ"
                )
            return
        self._classes = given
        self._outputs = OutputSpec(
            classes=(given,), dtypes=(self.label_dtype,), proba_dtype=self._proba_dtype
        )

    def require_probabilities(self) -> None:
        if self._proba_output is not None and self._classes is None and not self._outputs.multi:
            from modelrouter.errors import ProbabilitiesUnsupportedError

            raise ProbabilitiesUnsupportedError(
                f"{self.path}: the model outputs probabilities but its class labels are unknown "
                "(no classifier node with classlabels_*, no class labels in the graph and no "
                "class_labels metadata); name them in order with --classes a,b,c "
                "(or the config's classes key)"
            )
        super().require_probabilities()

    @classmethod
    def load(
        cls,
        path: ModelLocation,
        *,
        threads: int | None = None,
        concurrent: bool = False,
        trusted: Sequence[str] = (),
        data: bytes | None = None,
    ) -> OnnxModel:
        import onnxruntime as ort

        raw = with_external_data(path, read_model_bytes(path, data))
        options = ort.SessionOptions()
        # An explicit thread count: each session owns an intra-op pool, and K sessions with the
        # default (all cores) oversubscribe the CPU — measured 2× slower (docs/performance.md).
        options.intra_op_num_threads = max(1, threads or 1)
        options.inter_op_num_threads = 1
        # No spinning: idle intra-op threads that spin burn the cores that other instances, and
        # our own reader and writer threads, need (measured: no slower when alone, and 17 s
        # instead of 5 s for 1M rows while another process kept one core busy).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # onnxruntime logs a kernel failure on stderr itself before raising it; we report it
        # once, as our own `error:` line (docs/specification.md §5), so its log stays quiet.
        options.log_severity_level = 4
        # skl2onnx's default ZipMap costs more than most models (docs/models.md): the graph
        # runs without it when its shape allows, and as it is otherwise.
        unzipped = _without_zipmap(raw)
        if unzipped is not None:
            try:
                lean = ort.InferenceSession(unzipped.raw, options, providers=["CPUExecutionProvider"])
            except Exception:  # onnxruntime's own errors: the original graph reports them
                lean = None
            if lean is not None:
                model = cls._built(path, lean, raw)
                if model._reads_zipmap_columns(unzipped):
                    return model
        session = _session(path, raw, options)
        return cls._built(path, session, raw)

    @classmethod
    def _built(cls, path: ModelLocation, session: onnxruntime.InferenceSession, raw: bytes) -> OnnxModel:
        # The graph's classifier nodes are read even when the metadata lists class labels:
        # their order is the order of the probability columns, and metadata that says
        # otherwise must not rename them (docs/specification.md §4). Reading them costs no
        # ``onnx`` import and skips the trees' tables (onnx_graph.py).
        graph_classes, node_classes = _graph_classes(raw)
        return cls(path, session, graph_classes, node_classes, raw)

    def _reads_zipmap_columns(self, unzipped: Unzipped) -> bool:
        """Whether this model, loaded from the graph without ZipMap, reads its probabilities
        from the ZipMap's input in the order the ZipMap's keys gave them: one output whose
        classes are those keys, in that order (else the graph is loaded as it is)."""
        return (
            not self._outputs.multi
            and self._proba_output == unzipped.output
            and self._proba_width == len(unzipped.classes)
            and self._classes is not None
            and self._classes.tolist() == unzipped.classes.tolist()
        )

    @classmethod
    def check_pinnable(cls, path: ModelLocation, data: bytes) -> None:
        """A pin is the sha256 of the ``.onnx`` file alone: it cannot vouch for weights kept
        in external files, so a pinned model must hold its weights inline."""
        files = sorted({location for _, location in external_tensors(data)})
        if files:
            raise IntegrityError(
                f"{path}: the model keeps weights in external data ({', '.join(files)}), which its "
                "sha256 pin does not cover; refusing a pinned model with external data (save it "
                "with its weights inline: onnx.save_model(model, path, save_as_external_data=False))"
            )

    @property
    def schema(self) -> InputSchema:
        return self._schema

    @property
    def classes(self) -> npt.NDArray[np.generic] | None:
        return self._classes

    @property
    def has_probabilities(self) -> bool:
        return (
            self._outputs.has_classes
            and self._outputs.classes[0] is not None
            and (self._proba_output is not None)
        )

    @property
    def label_dtype(self) -> np.dtype[np.generic]:
        if self._label_type == "tensor(string)":
            return np.dtype(object)
        if self._classes is not None:
            return self._classes.dtype
        return np.dtype(TENSOR_DTYPES.get(self._label_type, "float32"))

    @property
    def outputs(self) -> OutputSpec:
        return self._outputs

    def _feeds(self, frame: Frame, features: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
        dtypes = self._schema.dtypes
        if self._single_tensor:
            if dtypes[0] in NUMERIC_DTYPES:
                return {self._input_names[0]: numeric_matrix(frame, features, dtypes[0])}
            matrix = np.empty((frame_length(frame), len(features)), dtype=object)
            for j, name in enumerate(features):
                matrix[:, j] = column_as(frame, name, dtypes[j])
            return {self._input_names[0]: matrix}
        # ``features`` are the input's columns in model order; the graph's inputs may be
        # named differently (sanitised by the converter), so feed them by position.
        return {
            self._input_names[j]: column_as(frame, name, dtypes[j]).reshape(-1, 1)
            for j, name in enumerate(features)
        }

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction | RawOutput:
        feeds = self._feeds(frame, features)
        self._check_finite(feeds, features)
        rows = frame_length(frame)
        if self._label_output is None:  # probabilities only: the labels are their arg max
            assert self._proba_output is not None and self._classes is not None
            (scores,) = self._run_batched(feeds, [self._proba_output], rows)
            scores = np.asarray(scores)
            label_values = None
            if labels:
                label_values = self._classes[np.argmax(scores, axis=1)] if len(scores) else self._classes[:0]
            return RawOutput(labels=label_values, probabilities=scores if probabilities else None)
        wanted = []
        if labels:
            wanted.append(self._label_output)
        if probabilities:
            assert self._proba_output is not None
            wanted.append(self._proba_output)
        outputs = self._run_batched(feeds, wanted, rows)
        # Returned as the session gave them: Model.run checks rows, shapes, classes and ranges.
        label_values = outputs[0] if labels else None
        proba = None
        if probabilities:
            raw = outputs[-1]
            proba = self._zipmap_matrix(raw) if self._zipmap else raw
        return RawOutput(labels=label_values, probabilities=proba)

    def _check_finite(self, feeds: dict[str, npt.NDArray[Any]], features: Sequence[str]) -> None:
        """Refuse the non-finite values the graph gives no meaning to (see
        :mod:`modelrouter.backends.onnx_nonfinite`): a :class:`RejectedValuesError` naming the
        first such cell's row and column, as scikit-learn's own check does for the model the
        graph was converted from. Finite batches cost one ``isfinite`` pass."""
        found: list[tuple[int, int, float]] = []  # (row, feature index, value) per input
        position = 0
        for name, array in feeds.items():
            width = array.shape[1] if array.ndim == 2 else 1
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                kinds = self._refused_kinds().get(name, frozenset())
                bad = np.zeros(array.shape, dtype=bool)
                if "nan" in kinds:
                    bad |= np.isnan(array)
                if "inf" in kinds:
                    bad |= np.isinf(array)
                if bad.any():
                    cells = np.argwhere(bad.reshape(len(array), -1))
                    row, cell = (int(v) for v in cells[0])
                    found.append((row, position + cell, float(array.reshape(len(array), -1)[row, cell])))
            position += width
        if not found:
            return
        row, index, value = min(found)
        name = str(features[index])
        kind = "NaN" if np.isnan(value) else "infinity"
        raise RejectedValuesError(
            f"column {name!r}: value {value} rejected by the model (its ONNX graph has no "
            f"node that handles {kind} in this input: no tree ensemble or imputer takes it)",
            column=name,
            row=row,
        )

    def _refused_kinds(self) -> dict[str, frozenset[str]]:
        if self._refused is None:
            if self._raw is None:
                # Built without its bytes: nothing is known about the graph, so refuse.
                self._refused = {name: frozenset(("nan", "inf")) for name in self._input_names}
            else:
                from modelrouter.backends.onnx_nonfinite import refused_nonfinite

                self._refused = refused_nonfinite(self._raw)
        return self._refused

    def _run_batched(self, feeds: dict[str, npt.NDArray[Any]], wanted: list[str], rows: int) -> list[Any]:
        try:
            if self._batch is None and self._threads > 1 and 0 < rows < ROW_PARALLEL_FROM:
                # A row's answer must not depend on the rows it is scored with (a request
                # batched with others', a file's last chunk). With several threads,
                # onnxruntime's tree ensembles sum the trees in another order for 2-50 rows
                # than for one row or more than 50 (docs/models.md, "Same answer in any
                # batch"): a small call is padded into the large calls' path.
                missing = ROW_PARALLEL_FROM - rows
                padded = {
                    n: np.concatenate([a, np.repeat(a[-1:], missing, axis=0)]) for n, a in feeds.items()
                }
                return [out[:rows] for out in self.session.run(wanted, padded)]
            if self._batch is None or self._batch == rows:
                return list(self.session.run(wanted, feeds))
            # Fixed batch dimension: run in slices of that size, padding the last one by
            # repeating its final row, and drop the padding from the results.
            step = self._batch
            parts: list[list[Any]] = []
            for start in range(0, rows, step):
                stop = min(start + step, rows)
                sliced = {}
                for name, array in feeds.items():
                    piece = array[start:stop]
                    if len(piece) < step:
                        pad = np.repeat(piece[-1:], step - len(piece), axis=0)
                        piece = np.concatenate([piece, pad])
                    sliced[name] = piece
                out = self.session.run(wanted, sliced)
                parts.append([o[: stop - start] for o in out])
            return [
                [d for p in parts for d in p[i]]  # ZipMap: a list of dicts per slice
                if self._zipmap and name == self._proba_output
                else np.concatenate([np.asarray(p[i]) for p in parts])
                for i, name in enumerate(wanted)
            ]
        except DataError:
            raise
        except Exception as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "Non-zero status code returned while running" in first_line:
                # Inputs were accepted (types, shapes); a node failed while computing: the
                # model's failure, e.g. a radius-neighbours graph finding no neighbour.
                from modelrouter.errors import ModelFaultError

                raise ModelFaultError(
                    f"{self.path}: the model failed while predicting ({first_line})"
                ) from exc
            raise DataError(f"the ONNX model rejected the input ({first_line})") from exc

    def _zipmap_matrix(self, rows: object) -> object:
        assert self._classes is not None
        keys = list(self._classes)
        if not isinstance(rows, list) or not all(isinstance(r, dict) and len(r) == len(keys) for r in rows):
            return rows  # not one {class: probability} per row: the shape check names it
        try:
            return np.array([[row[k] for k in keys] for row in rows], dtype=np.float32)
        except KeyError as exc:
            from modelrouter.errors import ModelOutputError

            raise ModelOutputError(
                f"{self.path}: the ZipMap output has class {exc.args[0]!r}, which is not one of its classes"
            ) from None


def _session(path: ModelLocation, raw: bytes, options: Any) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: cannot load as an ONNX model ({first_line})") from exc


def _without_zipmap(raw: bytes) -> Unzipped | None:
    """The graph without its final ZipMap (:func:`onnx_zipmap.without_zipmap`), else ``None``."""
    try:
        return without_zipmap(raw)
    except (MalformedGraphError, UnicodeDecodeError):
        return None  # onnxruntime judges the bytes as they are


def _scores_only(outputs: Sequence[Any]) -> int | None:
    """The width k of a graph's only output when it is a float [N, k] tensor (k > 1, or
    unknown: 0), else ``None``."""
    if len(outputs) != 1 or outputs[0].type not in ("tensor(float)", "tensor(double)"):
        return None
    shape = outputs[0].shape or []
    if len(shape) != 2:
        return None
    width = shape[1]
    if not isinstance(width, int):
        return 0
    return width if width > 1 else None


def _metadata_labels(path: ModelLocation, metadata: dict[str, str]) -> npt.NDArray[np.generic] | None:
    """The ``class_labels`` metadata of a graph with no classifier node: integers when every
    label is one (JSON numbers), else text; ``None`` when absent."""
    raw = metadata.get("class_labels")
    if raw is None or raw.strip().startswith("[["):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, list) and value and all(type(v) is int for v in value):
        return np.asarray(value, dtype=np.int64)
    names = metadata_names(path, metadata, "class_labels")
    return None if names is None else np.asarray(list(names), dtype=object)


def _graph_classes(
    raw: bytes,
) -> tuple[npt.NDArray[np.generic] | None, list[npt.NDArray[np.generic]]]:
    """Class labels wherever the graph keeps them (:func:`onnx_graph.graph_classes`), read
    from the file's bytes without importing ``onnx``."""
    try:
        return graph_classes(raw)
    except (MalformedGraphError, UnicodeDecodeError):
        return None, []  # onnxruntime ran it; a graph we cannot read just has no labels here
