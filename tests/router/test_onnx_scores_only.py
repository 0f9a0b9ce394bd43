"""An ONNX classifier exported as its probabilities alone (one float [N, k] output, no
classifier node: what most exporters other than skl2onnx write) is a classifier once its
classes are named — by the ``class_labels`` metadata or by ``--classes`` — with labels the
arg max of its probabilities (docs/specification.md §4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelrouter import ConfigError, ModelLoadError

from tests.commands import run_modelrouter

WEIGHTS = np.array([[1.0, -1.0, 0.5], [0.2, 0.3, -0.4]], dtype=np.float32)
BIAS = np.array([0.1, 0.0, -0.1], dtype=np.float32)


def _graph(path: Path, labels: list[object] | None) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "scores",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(WEIGHTS, "W"), numpy_helper.from_array(BIAS, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if labels is not None:
        prop = model.metadata_props.add()
        prop.key, prop.value = "class_labels", json.dumps(labels)
    onnx.save_model(model, str(path))
    return path


def _expected(X: np.ndarray) -> np.ndarray:
    logits = X.astype(np.float32) @ WEIGHTS + BIAS
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


FRAME = pd.DataFrame({"a": [0.0, 3.0, -2.0, 1.0], "b": [1.0, 0.0, 4.0, -3.0]})


@pytest.mark.parametrize("labels", [["low", "mid", "high"], [10, 20, 30]], ids=["strings", "integers"])
def test_class_labels_metadata_names_the_probability_columns(tmp_path: Path, labels: list[object]) -> None:
    from modelrouter.backends.onnx_backend import OnnxModel

    model = OnnxModel.load(_graph(tmp_path / "m.onnx", labels))
    assert model.classes is not None and model.classes.tolist() == labels
    result = model.run(FRAME, probabilities=True)
    expected = _expected(FRAME.to_numpy())
    assert result.probabilities is not None
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    assert result.labels is not None
    assert result.labels.tolist() == [labels[i] for i in expected.argmax(axis=1)]


def test_classes_option_names_them_when_the_file_does_not(tmp_path: Path) -> None:
    from modelrouter.backends.onnx_backend import OnnxModel

    path = _graph(tmp_path / "m.onnx", None)
    unnamed = OnnxModel.load(path)
    assert unnamed.classes is None  # k regression outputs, as before
    with pytest.raises(ConfigError, match="3 scores per row but 2 classes were given"):
        OnnxModel.load(path).assign_classes(["x", "y"])
    named = OnnxModel.load(path)
    named.assign_classes(["x", "y", "z"])
    result = named.run(FRAME, probabilities=True)
    assert result.labels is not None
    assert result.labels.tolist() == [["x", "y", "z"][i] for i in _expected(FRAME.to_numpy()).argmax(axis=1)]


def test_metadata_naming_another_count_of_classes_is_refused(tmp_path: Path) -> None:
    from modelrouter.backends.onnx_backend import OnnxModel

    with pytest.raises(ModelLoadError, match="gives 3 scores per row but names 2 classes"):
        OnnxModel.load(_graph(tmp_path / "m.onnx", ["a", "b"]))


def test_the_command_scores_it_like_a_classifier(tmp_path: Path) -> None:
    model = _graph(tmp_path / "m.onnx", ["low", "mid", "high"])
    data = tmp_path / "in.csv"
    FRAME.assign(id=range(4)).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    done = run_modelrouter(
        "predict-proba", str(data), "-m", str(model), "-o", str(out), "-k", "id", "--no-stats"
    )
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(out)
    assert list(written.columns) == ["id", "proba_low", "proba_mid", "proba_high"]
    np.testing.assert_allclose(written.iloc[:, 1:].to_numpy(), _expected(FRAME.to_numpy()), atol=1e-6)
