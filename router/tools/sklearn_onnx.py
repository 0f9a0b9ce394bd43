"""scikit-learn estimators to ONNX graphs with skl2onnx (docs/specification.md §4).

Plain estimators and pipelines get one float tensor input ``input``; pipelines whose first
step is a ``ColumnTransformer`` (and that know their column names) get one input per column,
named like the column. Classifiers have ZipMap off; ``metadata_props`` record the feature
names, class labels and scikit-learn version. The target opset is the highest that skl2onnx
has tested, the installed ``onnx`` knows and the installed onnxruntime loads
(:func:`opset_limits`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelrouter.backends import InputSchema
from modelrouter.errors import ModelError
from modelrouter.tools.converter_failures import failure_detail

if TYPE_CHECKING:
    import onnx

__all__ = [
    "InputSpec",
    "OpsetLimits",
    "UnsupportedModelError",
    "input_specs",
    "opset_limits",
    "plain_labels",
    "require_skl2onnx",
    "to_onnx_model",
]

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


# -- opsets ----------------------------------------------------------------------------------


@functools.cache
def opset_limits() -> OpsetLimits:
    """Probe the installed skl2onnx, onnx and onnxruntime once per process.

    Raises :class:`ModelError` when skl2onnx is not installed.
    """
    require_skl2onnx()
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
    require_skl2onnx()
    _refuse_boolean_labels(estimator, classes, source)
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
        properties["class_labels"] = json.dumps(plain_labels(classes))
    properties["sklearn_version"] = sklearn.__version__
    onnx.helper.set_model_props(onx, properties)
    try:
        onnx.checker.check_model(onx)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(f"{source}: the converted model is not valid ONNX ({first})") from exc
    return onx


def require_skl2onnx() -> None:
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


def _refuse_boolean_labels(estimator: Any, classes: Sequence[Any] | None, source: str) -> None:
    """ONNX classifiers hold integer or text labels: skl2onnx writes ``False``/``True`` as
    0/1, and the file would answer other labels than the original. Refused before
    converting, with what to do."""
    import numpy as np

    def flat(value: Any) -> list[Any]:
        if isinstance(value, list | tuple) or (hasattr(value, "ndim") and value.ndim > 0):
            return [x for v in value for x in flat(v)]
        return [value]

    if classes is not None and any(isinstance(c, bool | np.bool_) for c in flat(classes)):
        raise UnsupportedModelError(
            f"{source}: the {type(estimator).__name__}'s class labels are booleans (False, True), "
            "which an ONNX classifier cannot hold (integers or text only; skl2onnx would write "
            "0 and 1, so the file would answer other labels than the original): refit it with "
            "integer or text labels (y.astype(int) or y.astype(str)), or keep scoring the "
            "original with -t sklearn"
        )


def plain_labels(value: Any) -> Any:
    """A label (or a list of them, nested for multi-output models) as JSON can hold it."""
    if isinstance(value, list | tuple):
        return [plain_labels(v) for v in value]
    return value.item() if hasattr(value, "item") else value
