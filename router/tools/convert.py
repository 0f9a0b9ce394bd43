"""scikit-learn → ONNX conversion with skl2onnx, checked against the original before it is kept.

What :func:`convert_model` produces (docs/specification.md §4 is how the ONNX backend reads it):

- plain estimators and pipelines get **one float tensor input** ``input`` of the model's width;
- pipelines whose first step is a ``ColumnTransformer`` (and that know their column names)
  get **one input per column, named exactly like the column** — ``float`` for numbers,
  ``string`` for the columns the pipeline encodes as text — so mixed numeric/string frames
  are fed by name;
- classifiers have ZipMap off (a probability matrix, not a list of dicts);
- ``metadata_props`` record ``feature_names`` and ``class_labels`` (JSON lists) and the
  ``sklearn_version`` the model was converted with;
- the target opset is the highest that skl2onnx has tested, the installed ``onnx`` knows and
  the installed onnxruntime loads (probed once, with a one-node model).

The ONNX file is written to a temporary file beside the output and renamed over it (an object
``-o s3://…``: put in one request) only when
the parity check on the sample (:mod:`modelrouter.tools.parity`) is within tolerance, so a failed
conversion never leaves a file behind nor replaces an existing one.

XGBoost and LightGBM models (native boosters or pickled wrappers) go through onnxmltools
instead (:mod:`modelrouter.tools.convert_boosters`), with the same input, metadata and
parity check. A converter's failure is reported by its root cause, capped in length, with the
versions that work when it is a known incompatibility (:func:`failure_detail`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelrouter.backends import InputSchema, Model, backend_for
from modelrouter.backends.base import read_model_bytes
from modelrouter.batch.dataio import FileFormat
from modelrouter.errors import IntegrityError, ModelError, ModelLoadError, OutputError
from modelrouter.feature_names import match_columns
from modelrouter.locations import ModelLocation, is_uri
from modelrouter.model_type import ModelType
from modelrouter.storage import inflight
from modelrouter.storage import object_store as storage
from modelrouter.storage.commit import (
    RunOutputs,
    TextOutput,
    is_stream_target,
    temp_beside,
)
from modelrouter.storage.run_paths import PathUse, check_paths
from modelrouter.tools.convert_boosters import booster_library, booster_to_onnx
from modelrouter.tools.parity import ParityReport, Tolerance, compare_frames, read_frames

if TYPE_CHECKING:
    import onnx

__all__ = [
    "ConvertResult",
    "InputSpec",
    "OpsetLimits",
    "UnsupportedModelError",
    "convert_model",
    "default_sample",
    "failure_detail",
    "input_specs",
    "opset_limits",
    "to_onnx_model",
]

#: The shipped sample, used for the parity check when --sample is not given and it fits.
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data" / "wine.parquet"

_ML_DOMAIN = "ai.onnx.ml"


class UnsupportedModelError(ModelError):
    """skl2onnx has no converter for the estimator (or one of its steps)."""


@dataclass(frozen=True)
class InputSpec:
    """One ONNX graph input: its name, element type (``float32`` or ``string``) and width."""

    name: str
    dtype: Literal["float32", "string"]
    width: int


@dataclass(frozen=True)
class OpsetLimits:
    """The highest opsets each installed piece supports; :attr:`target` is what we convert to."""

    skl2onnx: int
    onnx: int
    onnxruntime: int
    onnxruntime_ml: int

    @property
    def target(self) -> int:
        """The default opset of the main (``ai.onnx``) domain: the lowest of the three limits."""
        return min(self.skl2onnx, self.onnx, self.onnxruntime)

    def ml_for(self, main: int) -> int:
        """The ``ai.onnx.ml`` opset to pair with ``main`` (skl2onnx's pairing, capped by onnxruntime)."""
        paired = 3 if main >= 18 else 2 if main >= 6 else 1
        return min(paired, self.onnxruntime_ml)

    def as_dict(self) -> dict[str, int]:
        """JSON-ready limits."""
        return {
            "skl2onnx": self.skl2onnx,
            "onnx": self.onnx,
            "onnxruntime": self.onnxruntime,
            "onnxruntime_ml": self.onnxruntime_ml,
        }


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_model` did; ``written`` is False when the parity check failed."""

    source: ModelLocation
    output: Path | str
    written: bool
    opset: dict[str, int]
    inputs: tuple[InputSpec, ...]
    classes: list[Any] | None
    sample: Path | str | None
    parity: ParityReport | None
    note: str | None
    versions: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (stable keys; more may be added, none renamed)."""
        return {
            "model": str(self.source),
            "output": str(self.output),
            "written": self.written,
            "opset": self.opset,
            "inputs": [{"name": i.name, "dtype": i.dtype, "width": i.width} for i in self.inputs],
            "classes": self.classes,
            "sample": None if self.sample is None else str(self.sample),
            "parity": None if self.parity is None else self.parity.as_dict(),
            "note": self.note,
            "versions": self.versions,
        }


# -- opsets ----------------------------------------------------------------------------------


@functools.cache
def opset_limits() -> OpsetLimits:
    """Probe the installed skl2onnx, onnx and onnxruntime once per process.

    Raises :class:`ModelError` when skl2onnx is not installed.
    """
    _require_skl2onnx()
    import onnx
    from skl2onnx import get_latest_tested_opset_version

    tested = int(get_latest_tested_opset_version())
    known = int(onnx.defs.onnx_opset_version())
    main = _ort_max_opset("", known, known)
    known_ml = max(int(row[3]) for row in onnx.helper.VERSION_TABLE)
    ml = _ort_max_opset(_ML_DOMAIN, known_ml, min(main, tested))
    return OpsetLimits(skl2onnx=tested, onnx=known, onnxruntime=main, onnxruntime_ml=ml)


def _ort_max_opset(domain: str, ceiling: int, main: int) -> int:
    """The highest opset of ``domain`` (≤ ``ceiling``) for which onnxruntime loads a model.

    onnxruntime publishes no API for this; it refuses a model that imports a newer opset
    than it implements, so a one-node model per candidate answers it (a few ms each).
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [value("x", TensorProto.FLOAT, [1])],
        [value("y", TensorProto.FLOAT, [1])],
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the refusals are the expected answers, not news
    for version in range(ceiling, 0, -1):
        imports = [helper.make_opsetid("", main if domain else version)]
        if domain:
            imports.append(helper.make_opsetid(domain, version))
        model = helper.make_model(graph, opset_imports=imports)
        model.ir_version = helper.find_min_ir_version_for(imports, ignore_unknown=True)
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime's errors are untyped; any refusal means "too new"
            continue
        return version
    raise ModelError(f"onnxruntime {ort.__version__} loads no ONNX opset of domain {domain or 'ai.onnx'!r}")


# -- conversion ------------------------------------------------------------------------------


def input_specs(estimator: Any, schema: InputSchema) -> list[InputSpec]:
    """The ONNX inputs for ``estimator`` (see the module docstring for the rule)."""
    names = schema.names
    if names is not None and _starts_with_column_transformer(estimator):
        return [
            InputSpec(name, "string" if dtype == "string" else "float32", 1)
            for name, dtype in zip(names, schema.dtypes, strict=True)
        ]
    width = schema.width or int(getattr(estimator, "n_features_in_", 0) or 0)
    if not width:
        raise ModelError(
            f"cannot tell how many features the {type(estimator).__name__} takes "
            "(it records neither n_features_in_ nor feature_names_in_)"
        )
    return [InputSpec("input", "float32", width)]


def to_onnx_model(
    estimator: Any,
    schema: InputSchema,
    classes: Sequence[Any] | None,
    *,
    opset: int | None = None,
    source: str = "the model",
) -> onnx.ModelProto:
    """Convert a fitted estimator/pipeline to an ONNX model (see the module docstring).

    ``opset`` overrides the main-domain opset (must not exceed :func:`opset_limits`'s target).
    Raises :class:`UnsupportedModelError` naming the estimator class skl2onnx cannot convert,
    :class:`ModelError` for any other conversion failure.
    """
    _require_skl2onnx()
    import onnx
    import sklearn
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator
    from sklearn.base import is_classifier

    limits = opset_limits()
    main = limits.target if opset is None else opset
    if main > limits.target:
        raise ModelError(
            f"opset {main} is above what the installed tools support together "
            f"(skl2onnx {limits.skl2onnx}, onnx {limits.onnx}, onnxruntime {limits.onnxruntime})"
        )
    target = {"": main, _ML_DOMAIN: limits.ml_for(main)}
    specs = input_specs(estimator, schema)
    initial_types = [
        (spec.name, (StringTensorType if spec.dtype == "string" else FloatTensorType)([None, spec.width]))
        for spec in specs
    ]
    options = {id(estimator): {"zipmap": False}} if is_classifier(estimator) else None
    try:
        onx: onnx.ModelProto = convert_sklearn(
            estimator, initial_types=initial_types, options=options, target_opset=target
        )
    except (MissingShapeCalculator, MissingConverter) as exc:
        dotted = _unconvertible_class(str(exc)) or _dotted(type(estimator))
        short = dotted.rsplit(".", 1)[-1]
        inside = "" if short == type(estimator).__name__ else f" (a step of the {type(estimator).__name__})"
        raise UnsupportedModelError(
            f"{source}: skl2onnx cannot convert {short}{inside}: no converter is registered for "
            f"{dotted}; replace it with an estimator skl2onnx supports "
            "(skl2onnx.supported_converters() lists them), register a converter with "
            "skl2onnx.update_registered_converter, or keep scoring the original with -t sklearn"
        ) from None
    except Exception as exc:  # skl2onnx raises RuntimeError, TypeError, NotImplementedError…
        raise ModelError(
            f"{source}: skl2onnx failed to convert the {type(estimator).__name__} ({failure_detail(exc)})"
        ) from exc
    if len(onx.graph.input) != len(specs):
        raise ModelError(
            f"{source}: skl2onnx produced {len(onx.graph.input)} inputs for {len(specs)} columns; "
            "cannot name them after the columns"
        )
    for graph_input, spec in zip(onx.graph.input, specs, strict=True):
        _rename_input(onx.graph, graph_input.name, spec.name)

    properties = {p.key: p.value for p in onx.metadata_props}
    if schema.names is not None:
        properties["feature_names"] = json.dumps(list(schema.names))
    if classes is not None:
        properties["class_labels"] = json.dumps(_plain(classes))
    properties["sklearn_version"] = sklearn.__version__
    onnx.helper.set_model_props(onx, properties)
    try:
        onnx.checker.check_model(onx)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(f"{source}: the converted model is not valid ONNX ({first})") from exc
    return onx


#: Failures of the converters that come from the versions installed together, with the
#: versions that work (measured). Keyed by a fragment of the root cause's message.
KNOWN_INCOMPATIBILITIES: dict[str, str] = {
    "Expected an int, got a boolean": (
        "a known version incompatibility: skl2onnx (≤ 1.20 at least) writes tree attributes "
        "as Python booleans, which protobuf 7.34 and later refuse in ONNX integer lists "
        "(installed: protobuf {protobuf}, onnx {onnx}, skl2onnx {skl2onnx}); it converts with "
        "protobuf < 7.34, e.g. pip install 'protobuf>=6.31,<7.34' (onnx 1.23 accepts 6.31+), "
        "where it is only a deprecation warning"
    ),
}

#: Characters of a library's error message quoted in ours (the cause is named separately).
DETAIL_LIMIT = 300


def failure_detail(exc: BaseException) -> str:
    """What went wrong in a converter: the root cause (not the wrapper), capped, and why.

    Converters wrap the real error in one that quotes everything they were building
    (skl2onnx: a whole tree ensemble's arrays in one message). The innermost exception of
    the chain names the cause; a known incompatibility also gets the versions that work.
    """
    root = exc
    seen = {id(root)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    text = " ".join(str(root).split())
    shown = text if len(text) <= DETAIL_LIMIT else text[:DETAIL_LIMIT] + " …"
    detail = f"{type(root).__name__}: {shown}" if shown else type(root).__name__
    for fragment, explanation in KNOWN_INCOMPATIBILITIES.items():
        if fragment in text:
            return f"{detail}; {explanation.format(**_installed_versions())}"
    return detail


def _installed_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("protobuf", "onnx", "skl2onnx", "onnxmltools"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _pinned_bytes(
    model_path: ModelLocation, kind: ModelType, data: bytes | None, sha256: str | None
) -> bytes:
    """The model's bytes, read once; with ``sha256`` their digest checked before anything is
    loaded, as the pool does (:class:`IntegrityError`)."""
    data = read_model_bytes(model_path, data)
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise IntegrityError(
                f"{model_path}: sha256 is {actual}, expected {sha256.lower()}; "
                "refusing to load a model that differs from the pinned one"
            )
        backend_for(kind).check_pinnable(model_path, data)
    return data


def convert_model(
    model_path: ModelLocation,
    output: Path | str | None = None,
    *,
    model_type: ModelType | None = None,
    trusted: Sequence[str] = (),
    opset: int | None = None,
    sample: Path | str | None = None,
    input_format: FileFormat | None = None,
    tolerance: Tolerance | None = None,
    sha256: str | None = None,
    data: bytes | None = None,
) -> ConvertResult:
    """Convert the model file at ``model_path`` to ONNX at ``output`` and check parity.

    ``sha256`` pins the model's digest, checked on the bytes before anything is loaded
    (:class:`IntegrityError` otherwise); ``data`` is the model's bytes when the caller has
    read them already (the pin and the load then see exactly the same bytes).

    Either may be a URI (``s3://…``, a string): the model is fetched once, and an ONNX
    object is put in one request only when the check passed (whole or absent; an existing
    object is replaced only then). ``output`` defaults to ``<model stem>.onnx`` beside the
    model. The parity check scores
    ``sample`` (default: the shipped sample data when it has every feature column) with both
    models; when it is outside ``tolerance`` the result has ``written=False`` and no file is
    written (the caller reports it and exits 4). Raises :class:`ModelError` (model cannot be
    loaded or converted), :class:`DataError` (sample unusable), :class:`OutputError`.
    """
    kind = model_type or ModelType.from_path(model_path)
    if kind is ModelType.ONNX:
        raise ModelError(
            f"{model_path}: already an ONNX model; convert takes a scikit-learn pickle or skops file"
        )
    if output is None:  # beside the model, on the store too
        output = (
            str(storage.Uri.parse(model_path).with_suffix(".onnx"))
            if isinstance(model_path, str) and is_uri(model_path)
            else Path(model_path).with_suffix(".onnx")
        )
    inputs = [PathUse(str(model_path), "the model being converted", "MODEL")]
    if sample is not None:
        inputs.append(PathUse(str(sample), "the sample", "--sample"))
    check_paths(inputs, [PathUse(str(output), "the ONNX output", "--output")])  # PathConflict: exit 2
    # /dev/null, a FIFO: written as a stream, never replaced; an object: put at the commit.
    stream = isinstance(output, str) or is_stream_target(output)
    if isinstance(output, str):
        storage.check_output(output)  # a missing bucket fails before the conversion
    elif not stream and not output.parent.is_dir():
        raise OutputError(f"{output}: output folder {str(output.parent)!r} does not exist")
    _require_skl2onnx()

    data = _pinned_bytes(model_path, kind, data, sha256)
    source = backend_for(kind).load(model_path, threads=1, trusted=trusted, data=data)
    converter = "skl2onnx"
    classes: list[Any] | None
    if booster_library(source) is not None:
        # XGBoost/LightGBM, native or a pickled wrapper: onnxmltools converts them.
        classes = None if source.classes is None else list(source.classes)
        onx = booster_to_onnx(source, opset=opset, source=str(model_path))
        specs: tuple[InputSpec, ...] = (InputSpec("input", "float32", source.schema.width),)
        converter = "onnxmltools"
    else:
        estimator = getattr(source, "estimator", None)
        if estimator is None:
            raise ModelError(f"{model_path}: the {kind} backend holds no scikit-learn estimator to convert")
        spec = source.outputs
        if spec.multi:
            # One class list per output (None for a multi-output regressor), recorded as a list
            # of lists: the ONNX backend reads each output's classes from it.
            classes = [list(c) for c in spec.classes if c is not None] if spec.has_classes else None
        else:
            classes = None if source.classes is None else list(source.classes)
        onx = to_onnx_model(estimator, source.schema, classes, opset=opset, source=str(model_path))
        specs = tuple(input_specs(estimator, source.schema))
    chosen_sample, note = _choose_sample(sample, source)

    data = onx.SerializeToString()
    temp = _temp_for(output, stream)
    try:
        try:
            temp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
        converted = _load_converted(temp, output)
        parity = None
        if chosen_sample is not None:
            with read_frames(chosen_sample, input_format) as frames:
                reports = compare_frames(
                    {str(kind): source, "onnx": converted},
                    frames,
                    tolerance or Tolerance(),
                    source=str(chosen_sample),
                )
            parity = reports["onnx"]
        written = parity is None or parity.passed
        if written and isinstance(output, str):
            RunOutputs([storage.RemoteText(storage.Uri.parse(output), data)]).commit(final=True)
        elif written and stream:
            assert isinstance(output, Path)
            RunOutputs([TextOutput(output, data)]).commit(final=True)
        elif written:
            try:
                with inflight.current().commit.section(final=True):
                    os.replace(temp, output)
            except OSError as exc:
                raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    finally:
        temp.unlink(missing_ok=True)
        inflight.current().temp_files.discard(temp)

    import onnxruntime
    import sklearn

    from_versions = _installed_versions()

    return ConvertResult(
        source=model_path,
        output=output,
        written=written,
        opset={("ai.onnx" if o.domain == "" else o.domain): int(o.version) for o in onx.opset_import},
        inputs=specs,
        classes=None if classes is None else _plain(classes),
        sample=chosen_sample,
        parity=parity,
        note=note,
        versions={
            "sklearn": sklearn.__version__,
            converter: from_versions[converter],
            "onnxruntime": onnxruntime.__version__,
        },
    )


def default_sample(schema: InputSchema) -> tuple[Path | None, str | None]:
    """The shipped sample when it holds every feature column, else ``None`` and why not."""
    if schema.names is None:
        return None, "the model records no feature names, so no sample is known to fit it"
    if not SAMPLE_DATA.is_file():
        return None, f"{SAMPLE_DATA} is not there"
    import pyarrow.parquet as pq

    _, missing = match_columns(schema.names, pq.read_schema(SAMPLE_DATA).names, schema.name_rule)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (", …" if len(missing) > 5 else "")
        return None, f"the shipped sample {SAMPLE_DATA.name} lacks the model's column(s) {shown}"
    return SAMPLE_DATA, None


def _choose_sample(sample: Path | str | None, source: Model) -> tuple[Path | str | None, str | None]:
    if sample is not None:
        return sample, None
    chosen, reason = default_sample(source.schema)
    if chosen is None:
        return None, f"parity not checked: {reason}; pass --sample DATA to check the conversion"
    return chosen, None


def _load_converted(temp: Path, output: Path | str) -> Model:
    try:
        return backend_for(ModelType.ONNX).load(temp, threads=1)
    except ModelLoadError as exc:
        # The message names the temporary file; say which output it was meant to become.
        detail = str(exc).replace(str(temp), str(output))
        raise ModelError(f"the converted model does not load in onnxruntime: {detail}") from None


def _require_skl2onnx() -> None:
    try:
        import skl2onnx  # noqa: F401
    except ImportError:
        raise ModelError(
            "converting needs skl2onnx, which is not installed: "
            "pip install 'modelrouter[convert]' (or skl2onnx itself)"
        ) from None


def _starts_with_column_transformer(estimator: Any) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[0][1]
    return isinstance(estimator, ColumnTransformer)


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a graph input and every use of it (skl2onnx sanitises names like ``a/b``)."""
    if old == new:
        return
    for graph_input in graph.input:
        if graph_input.name == old:
            graph_input.name = new
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _unconvertible_class(message: str) -> str | None:
    match = re.search(r"<class '([\w.]+)'>", message)
    return match.group(1) if match else None


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> Any:
    """A label (or a list of them, nested for multi-output models) as JSON can hold it."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _temp_for(output: Path | str, stream: bool) -> Path:
    """Where the converted model waits for its parity check: beside the output (renamed over
    it when the check passes), or in the system's temporary folder for a stream output."""
    try:
        if stream:
            fd, name = tempfile.mkstemp(prefix=".modelrouter-convert.", suffix=".onnx")
            os.close(fd)
            inflight.current().temp_files.add(Path(name))
            return Path(name)
        assert isinstance(output, Path)
        return temp_beside(output)
    except OSError as exc:
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
