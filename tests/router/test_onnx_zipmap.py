"""skl2onnx's default ZipMap, left out of the graph onnxruntime runs
(``modelrouter.backends.onnx_zipmap``): the CLI's labels and probabilities on a default
conversion equal those of the same model converted with ``zipmap=False`` and scikit-learn's;
the rewrite is used only when the graph has the expected shape, and leaves every other byte
as it was."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from modelrouter.backends.onnx_backend import OnnxModel
from modelrouter.backends.onnx_zipmap import without_zipmap
from onnx import helper

from tests.commands import run_modelrouter as run_cli

MODELROUTER = Path(sys.executable).parent / "modelrouter"
Wine = tuple[pd.DataFrame, np.ndarray]


def _classifier(name: str, frame: pd.DataFrame, names: np.ndarray) -> tuple[Any, np.ndarray]:
    """A fitted classifier and its labels (strings or integers, binary or not)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ints = np.unique(names, return_inverse=True)[1] * 7 - 3
    model, target = {
        "logreg-binary-int": (LogisticRegression(max_iter=5000), (ints > 0).astype(np.int64)),
        "logreg-multi-str": (LogisticRegression(max_iter=5000), names),
        "forest-str": (RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0), names),
        "pipeline-int": (make_pipeline(StandardScaler(), LogisticRegression()), ints),
        "forest-binary-str": (
            RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
            np.where(names == names[0], "yes", "no"),
        ),
    }[name]
    return model.fit(frame.to_numpy(np.float32), target), target


def _unnamed(x: np.ndarray) -> pd.DataFrame:
    """The features as a frame (a graph without ``feature_names`` takes them in order)."""
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])


def _converted(model: Any, frame: pd.DataFrame, **options: Any) -> bytes:
    from skl2onnx import to_onnx

    sample = frame.to_numpy(np.float32)[:1]
    onx = to_onnx(model, sample, options={id(model): options}) if options else to_onnx(model, sample)
    return bytes(onx.SerializeToString())


@pytest.mark.matrix
@pytest.mark.parametrize(
    "name", ["logreg-binary-int", "logreg-multi-str", "forest-str", "pipeline-int", "forest-binary-str"]
)
def test_default_conversion_scores_like_zipmap_off_and_sklearn(wine: Wine, tmp_path: Path, name: str) -> None:
    frame, names = wine
    model, _ = _classifier(name, frame, names)
    x = frame.to_numpy(np.float32)
    data = tmp_path / "wine.csv"
    _unnamed(x).to_csv(data, index=False)
    default, plain = tmp_path / "default.onnx", tmp_path / "plain.onnx"
    default.write_bytes(_converted(model, frame))
    plain.write_bytes(_converted(model, frame, zipmap=False))
    assert without_zipmap(default.read_bytes()) is not None  # the rewrite applies
    results: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for path in (default, plain):
        outs = []
        for command in ("predict", "predict-proba"):
            out = tmp_path / f"{path.stem}.{command}.csv"
            done = run_cli(command, data, "-m", path, "-o", out, "--no-stats", "-q")
            assert done.returncode == 0, done.stderr
            outs.append(pd.read_csv(out, dtype={"prediction": str}))
        results[path.stem] = (outs[0], outs[1])
    labels, proba = results["default"]
    expected_proba = model.predict_proba(x)
    assert list(proba.columns) == [f"proba_{c}" for c in model.classes_]
    assert labels["prediction"].tolist() == [str(v) for v in model.predict(x)]
    assert np.abs(proba.to_numpy() - expected_proba).max() < 1e-5
    assert labels.equals(results["plain"][0])
    assert np.abs(proba.to_numpy() - results["plain"][1].to_numpy()).max() < 1e-6


def test_the_rewritten_graph_is_what_onnxruntime_runs(wine: Wine, tmp_path: Path) -> None:
    frame, names = wine
    model, _ = _classifier("forest-str", frame, names)
    path = tmp_path / "default.onnx"
    path.write_bytes(_converted(model, frame))
    loaded = OnnxModel.load(path)
    outputs = loaded.session.get_outputs()
    assert [o.type for o in outputs] == ["tensor(string)", "tensor(float)"]
    assert outputs[1].shape[1] == len(model.classes_)
    assert not loaded._zipmap
    x = frame.to_numpy(np.float32)
    assert np.abs(loaded.predict_proba(_unnamed(x)) - model.predict_proba(x)).max() < 1e-5


def test_only_the_zipmap_node_and_its_output_change(wine: Wine) -> None:
    frame, names = wine
    model, _ = _classifier("pipeline-int", frame, names)
    raw = _converted(model, frame)
    unzipped = without_zipmap(raw)
    assert unzipped is not None
    before, after = onnx.load_model_from_string(raw), onnx.load_model_from_string(unzipped.raw)
    onnx.checker.check_model(after)
    zipmap = next(n for n in before.graph.node if n.op_type == "ZipMap")
    assert list(after.graph.node) == [n for n in before.graph.node if n is not zipmap]
    assert unzipped.output == zipmap.input[0] and unzipped.zipmap_output == zipmap.output[0]
    assert after.graph.output[0] == before.graph.output[0]
    proba = after.graph.output[1]
    assert proba.name == zipmap.input[0]
    assert proba.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in proba.type.tensor_type.shape.dim] == [0, len(model.classes_)]
    keys = next(a for a in zipmap.attribute if a.name.startswith("classlabels"))
    assert unzipped.classes.tolist() == list(keys.ints) == model.classes_.tolist()
    # Everything but the graph, and the graph's other fields, byte for byte.
    after.graph.ClearField("node")
    after.graph.ClearField("output")
    before.graph.ClearField("node")
    before.graph.ClearField("output")
    assert after.SerializeToString() == before.SerializeToString()


def _with_extra_consumer(raw: bytes) -> bytes:
    """The model with a second node reading the ZipMap's output (a copy as another output;
    onnxruntime refuses Identity on a sequence of maps, the rewrite must not get that far)."""
    model = onnx.load_model_from_string(raw)
    zipmap = next(n for n in model.graph.node if n.op_type == "ZipMap")
    model.graph.node.append(helper.make_node("Identity", [zipmap.output[0]], ["proba_copy"]))
    copy = onnx.ValueInfoProto()
    copy.CopyFrom(model.graph.output[1])
    copy.name = "proba_copy"
    model.graph.output.append(copy)
    return bytes(model.SerializeToString())


def _with_reordered_metadata(raw: bytes, classes: list[str]) -> bytes:
    """The model with ``class_labels`` metadata naming the classes in another order."""
    model = onnx.load_model_from_string(raw)
    prop = model.metadata_props.add()
    prop.key, prop.value = "class_labels", ",".join(reversed(classes))
    return bytes(model.SerializeToString())


def test_a_zipmap_output_another_node_reads_is_not_rewritten(wine: Wine) -> None:
    frame, names = wine
    model, _ = _classifier("logreg-multi-str", frame, names)
    raw = _converted(model, frame)
    assert without_zipmap(raw) is not None
    assert without_zipmap(_with_extra_consumer(raw)) is None
    assert without_zipmap(_converted(model, frame, zipmap=False)) is None


@pytest.mark.matrix
@pytest.mark.parametrize("variant", ["no-zipmap", "reordered-metadata"])
def test_graphs_of_another_shape_run_as_they_are_and_metadata_never_reorders(
    wine: Wine, tmp_path: Path, variant: str
) -> None:
    frame, names = wine
    model, _ = _classifier("logreg-multi-str", frame, names)
    classes = [str(c) for c in model.classes_]
    raw = {
        "no-zipmap": lambda: _converted(model, frame, zipmap=False),
        "reordered-metadata": lambda: _with_reordered_metadata(_converted(model, frame), classes),
    }[variant]()
    path = tmp_path / "model.onnx"
    path.write_bytes(raw)
    loaded = OnnxModel.load(path)
    original = onnx.load_model_from_string(raw)
    if variant == "no-zipmap":
        assert [o.name for o in loaded.session.get_outputs()] == [o.name for o in original.graph.output]
    else:
        # The classifier node's labels name the columns: metadata in another order changes
        # nothing, so the ZipMap can go as usual (docs/models.md).
        assert loaded.classes is not None and [str(c) for c in loaded.classes] == classes
    x = frame.to_numpy(np.float32)
    expected = model.predict_proba(x)
    assert loaded.classes is not None
    order = [classes.index(str(c)) for c in loaded.classes]
    assert np.abs(loaded.predict_proba(_unnamed(x)) - expected[:, order]).max() < 1e-5
    assert [str(v) for v in loaded.predict(_unnamed(x))] == [str(v) for v in model.predict(x)]


def test_bytes_that_are_not_protobuf_are_left_to_onnxruntime() -> None:
    from modelrouter.backends.onnx_graph import MalformedGraphError

    assert without_zipmap(b"") is None
    for raw in (b"\x3a\xff\xff", b"\x3a\x05ab", b"\x0f"):
        with pytest.raises(MalformedGraphError):
            without_zipmap(raw)
