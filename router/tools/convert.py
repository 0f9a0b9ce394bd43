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

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from modelrouter.tools.converter_failures import failure_detail, installed_versions
from modelrouter.tools.parity import ParityReport, Tolerance, compare_frames, read_frames
from modelrouter.tools.sklearn_onnx import (
    InputSpec,
    OpsetLimits,
    UnsupportedModelError,
    input_specs,
    opset_limits,
    plain_labels,
    require_skl2onnx,
    to_onnx_model,
)

if TYPE_CHECKING:
    import onnx

# The skl2onnx conversion (sklearn_onnx) and the failure lines (converter_failures) live
# beside this module; their public names stay importable from here.
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
    stream = _checked_target(model_path, sample, output)
    require_skl2onnx()

    data = _pinned_bytes(model_path, kind, data, sha256)
    source = backend_for(kind).load(model_path, threads=1, trusted=trusted, data=data)
    onx, specs, classes, converter = _to_onnx(source, kind, model_path, opset)
    chosen_sample, note = _choose_sample(sample, source)
    check = _ParityCheck(source, kind, chosen_sample, input_format, tolerance or Tolerance())
    written, parity = _write_if_faithful(onx.SerializeToString(), output, stream, check)

    import onnxruntime
    import sklearn

    from_versions = installed_versions()

    return ConvertResult(
        source=model_path,
        output=output,
        written=written,
        opset={("ai.onnx" if o.domain == "" else o.domain): int(o.version) for o in onx.opset_import},
        inputs=specs,
        classes=None if classes is None else plain_labels(classes),
        sample=chosen_sample,
        parity=parity,
        note=note,
        versions={
            "sklearn": sklearn.__version__,
            converter: from_versions[converter],
            "onnxruntime": onnxruntime.__version__,
        },
    )


def _checked_target(model_path: ModelLocation, sample: Path | str | None, output: Path | str) -> bool:
    """Check the output before anything is converted; whether it is written as a stream
    (``/dev/null``, a FIFO: never replaced). An object is put at the commit."""
    inputs = [PathUse(str(model_path), "the model being converted", "MODEL")]
    if sample is not None:
        inputs.append(PathUse(str(sample), "the sample", "--sample"))
    check_paths(inputs, [PathUse(str(output), "the ONNX output", "--output")])  # PathConflict: exit 2
    stream = isinstance(output, str) or is_stream_target(output)
    if isinstance(output, str):
        storage.check_output(output)  # a missing bucket fails before the conversion
    elif not stream and not output.parent.is_dir():
        raise OutputError(f"{output}: output folder {str(output.parent)!r} does not exist")
    return stream


def _to_onnx(
    source: Model, kind: ModelType, model_path: ModelLocation, opset: int | None
) -> tuple[onnx.ModelProto, tuple[InputSpec, ...], list[Any] | None, str]:
    """The ONNX graph of ``source``, its inputs, its classes and the converter that made it."""
    if booster_library(source) is not None:
        # XGBoost/LightGBM, native or a pickled wrapper: onnxmltools converts them.
        classes = None if source.classes is None else list(source.classes)
        onx = booster_to_onnx(source, opset=opset, source=str(model_path))
        return onx, (InputSpec("input", "float32", source.schema.width),), classes, "onnxmltools"
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
    return onx, tuple(input_specs(estimator, source.schema)), classes, "skl2onnx"


@dataclass(frozen=True)
class _ParityCheck:
    """The source model and the sample the converted one is compared with (none: no check)."""

    source: Model
    kind: ModelType
    sample: Path | str | None
    input_format: FileFormat | None
    tolerance: Tolerance

    def run(self, converted: Model) -> ParityReport | None:
        if self.sample is None:
            return None
        with read_frames(self.sample, self.input_format) as frames:
            reports = compare_frames(
                {str(self.kind): self.source, "onnx": converted},
                frames,
                self.tolerance,
                source=str(self.sample),
            )
        return reports["onnx"]


def _write_if_faithful(
    data: bytes, output: Path | str, stream: bool, check: _ParityCheck
) -> tuple[bool, ParityReport | None]:
    """Write the converted model to a temporary file, load it, check parity, and publish it
    only when the check passes (or there was no sample); the temporary file never stays."""
    temp = _temp_for(output, stream)
    try:
        try:
            temp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
        parity = check.run(_load_converted(temp, output))
        written = parity is None or parity.passed
        if written:
            _publish(temp, data, output, stream)
    finally:
        temp.unlink(missing_ok=True)
        inflight.current().temp_files.discard(temp)
    return written, parity


def _publish(temp: Path, data: bytes, output: Path | str, stream: bool) -> None:
    """The checked model at ``output``: an object put in one request, a stream written, a
    file renamed over the destination."""
    if isinstance(output, str):
        RunOutputs([storage.RemoteText(storage.Uri.parse(output), data)]).commit(final=True)
    elif stream:
        RunOutputs([TextOutput(output, data)]).commit(final=True)
    else:
        try:
            with inflight.current().commit.section(final=True):
                os.replace(temp, output)
        except OSError as exc:
            raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None


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
