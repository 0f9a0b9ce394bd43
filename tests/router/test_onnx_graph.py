"""ONNX class labels read from the file's bytes (``modelrouter.backends.onnx_graph``), without
importing ``onnx``: the same labels as the ``onnx`` package reads, for every way skl2onnx
stores them, and a run on a plain skl2onnx file never imports ``onnx``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _reference(raw: bytes) -> list[Any] | None:
    """The labels as the ``onnx`` package reads them (the classifier node, else the lookup table)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_model_from_string(raw)
    for node in model.graph.node:
        if node.op_type in ("TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier"):
            for attr in node.attribute:
                if attr.name == "classlabels_strings" and attr.strings:
                    return [s.decode() for s in attr.strings]
                if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                    return list(attr.ints)
    for node in model.graph.node:
        if node.op_type == "ArrayFeatureExtractor":
            for tensor in model.graph.initializer:
                if tensor.name == node.input[0]:
                    values = numpy_helper.to_array(tensor).reshape(-1)
                    return [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]
    return None


def _estimators() -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression()),
        "forest": RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0),
        "tree": DecisionTreeClassifier(max_depth=3, random_state=0),
        "svc": make_pipeline(StandardScaler(), SVC()),
        "hgb": HistGradientBoostingClassifier(max_iter=5),
    }


@pytest.mark.parametrize("name", list(_estimators()))
@pytest.mark.parametrize("labels", ["strings", "ints", "binary"])
@pytest.mark.parametrize("precision", ["float", "double"])
def test_labels_equal_the_onnx_packages(
    wine: tuple[pd.DataFrame, np.ndarray], name: str, labels: str, precision: str
) -> None:
    from modelrouter.backends.onnx_graph import graph_classes
    from skl2onnx import to_onnx

    frame, names = wine
    target: np.ndarray = {
        "strings": names,
        "ints": np.unique(names, return_inverse=True)[1] * 7 - 3,
        "binary": np.where(names == names[0], "yes", "no"),
    }[labels]
    model = _estimators()[name].fit(frame, target)
    sample = frame.to_numpy(np.float64 if precision == "double" else np.float32)
    try:
        onx = to_onnx(model, sample[:1], options={id(model): {"zipmap": False}})
    except Exception as exc:  # a converter without this precision: nothing to compare
        pytest.skip(f"skl2onnx: {type(exc).__name__}: {exc}")
    raw = onx.SerializeToString()
    expected = _reference(raw)
    found, per_node = graph_classes(raw)
    assert expected is not None
    assert found is not None and found.tolist() == expected
    assert found.dtype == (object if labels != "ints" else np.int64)
    assert all(n.tolist() == expected for n in per_node[:1])


def test_truncated_bytes_are_refused_not_crashed() -> None:
    from modelrouter.backends.onnx_graph import MalformedGraphError, graph_classes

    for raw in (b"\x3a\xff\xff", b"\x3a\x05ab", b"\x0f"):
        with pytest.raises(MalformedGraphError):
            graph_classes(raw)


@pytest.mark.parametrize("zipmap", [False, True], ids=["zipmap-off", "skl2onnx-default"])
def test_a_run_on_a_plain_skl2onnx_model_never_imports_onnx(
    wine: tuple[pd.DataFrame, np.ndarray], tmp_path: Path, zipmap: bool
) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, names = wine
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame.to_numpy(np.float32), names)
    sample = frame.to_numpy(np.float32)[:1]
    # skl2onnx's default ends in a ZipMap node, which the backend takes out of the graph.
    onx = to_onnx(model, sample) if zipmap else to_onnx(model, sample, options={id(model): {"zipmap": False}})
    assert not any(p.key == "class_labels" for p in onx.metadata_props)  # plain: no metadata
    path = tmp_path / "plain.onnx"
    path.write_bytes(onx.SerializeToString())
    data = tmp_path / "wine.csv"
    frame.head(20).to_csv(data, index=False)
    script = (
        "import sys\n"
        "from modelrouter.cli.main import main\n"
        "try:\n"
        f"    main(['predict-proba', {str(data)!r}, '-m', {str(path)!r}, '-o', {str(tmp_path / 'out.csv')!r},"
        " '--no-stats', '-q'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('onnx' in sys.modules, code, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.stderr.strip().splitlines()[-1] == "False 0", done.stderr
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == ",".join(f"proba_{c}" for c in sorted(set(names)))


@pytest.mark.parametrize("labels", ["strings", "integers"])
def test_class_labels_metadata_never_renames_the_classifier_nodes_columns(labels: str) -> None:
    """A ``class_labels`` property in another order than the classifier node's labels: the
    probability columns are in the node's order, so the node's labels name them (the
    metadata names the classes of a graph without a classifier node only)."""
    import json

    import onnx
    from modelrouter import ModelPool, ModelType
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    X = data.data.astype(np.float32)
    y = data.target_names[data.target] if labels == "strings" else data.target
    model = LogisticRegression(max_iter=500).fit(X, y)
    graph = to_onnx(model, X[:1], options={"zipmap": False}, target_opset=17)
    prop = graph.metadata_props.add()
    prop.key, prop.value = "class_labels", json.dumps([str(c) for c in model.classes_[::-1]])
    pool = ModelPool(ModelType.ONNX, [_load_onnx(onnx.save_model, graph)])
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    with pool.borrow() as loaded:
        assert loaded.classes is not None
        assert loaded.classes.tolist() == model.classes_.tolist()
        proba = loaded.predict_proba(frame)
        assert loaded.predict(frame).tolist() == model.predict(X).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-5)


def _load_onnx(save: Any, graph: Any) -> Any:
    import tempfile

    from modelrouter.backends.onnx_backend import OnnxModel

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        save(graph, str(path))
        return OnnxModel.load(path)
