"""Model tooling: ``convert``, ``compare``, ``inspect`` and the extended ``models --json``.

Models are fitted here into a temporary folder: a plain random forest, a StandardScaler +
LogisticRegression pipeline, a ColumnTransformer pipeline over numeric and string columns
(one named ``x/1``, which skl2onnx would rename), an estimator skl2onnx cannot convert, and
a 1-D logistic regression with a sample that straddles its decision boundary by less than
float32 resolution (so the ONNX conversion flips labels — a forced parity failure). Most
cases run in-process (CliRunner); a few run the installed console script.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import modelrouter.cli.render
import numpy as np
import onnx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sklearn
from modelrouter import ModelType
from modelrouter.backends import OutputSpec, Prediction, backend_for
from modelrouter.cli.main import app
from modelrouter.tools.convert import convert_model, opset_limits
from modelrouter.tools.parity import ParityAccumulator, Tolerance
from typer.testing import CliRunner, Result

from tests.commands import run_modelrouter

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SAMPLE_PARQUET = ROOT / "sample_data" / "wine.parquet"


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_modelrouter(*args, timeout=60)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config; rich's consoles re-created on the streams CliRunner captures."""
    monkeypatch.delenv("MODELROUTER_CONFIG", raising=False)
    monkeypatch.setattr(modelrouter.cli.render, "_console", None)
    monkeypatch.setattr(modelrouter.cli.render, "_stdout_console", None)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, wine: tuple[pd.DataFrame, np.ndarray]) -> Path:
    """The models and samples described in the module docstring."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.semi_supervised import LabelPropagation

    folder = tmp_path_factory.mktemp("tooling")
    frame, labels = wine
    joblib.dump(
        RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, labels),
        folder / "forest.pkl",
    )
    scaled = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    joblib.dump(scaled.fit(frame, labels), folder / "scaled_lr.joblib")

    rng = np.random.default_rng(0)
    mixed = pd.DataFrame(
        {
            "x/1": rng.normal(size=120),
            "size": rng.integers(0, 10, 120).astype(float),
            "colour": rng.choice(["red", "green", "blue"], 120).astype(object),
        }
    )
    target = np.where((mixed["x/1"] > 0) | (mixed["colour"] == "red"), "yes", "no")
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["x/1", "size"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ]
    )
    pipeline = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(mixed, target)
    joblib.dump(pipeline, folder / "mixed.pkl")
    mixed.to_csv(folder / "mixed.csv", index=False)
    pq.write_table(pa.Table.from_pandas(mixed, preserve_index=False), folder / "mixed.parquet")

    joblib.dump(LabelPropagation().fit(mixed[["x/1"]], target), folder / "propagation.pkl")
    joblib.dump(
        Pipeline([("scale", StandardScaler()), ("lp", LabelPropagation())]).fit(mixed[["x/1"]], target),
        folder / "propagation_pipeline.pkl",
    )

    x = np.linspace(-3, 3, 100)
    edge = LogisticRegression().fit(pd.DataFrame({"x": x}), (x > 0.3).astype(int))
    boundary = -edge.intercept_[0] / edge.coef_[0, 0]
    joblib.dump(edge, folder / "edge.pkl")
    # 101 rows within 5e-11 of the boundary: float64 sees both sides, float32 one value.
    pd.DataFrame({"x": boundary + np.arange(-50, 51) * 1e-12}).to_csv(
        folder / "edge.csv", index=False, float_format="%.17g"
    )
    return folder


@pytest.fixture(scope="module")
def forest_onnx(fitted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The forest converted through the library API (parity on the shipped sample)."""
    out = tmp_path_factory.mktemp("converted") / "forest.onnx"
    result = convert_model(fitted / "forest.pkl", out)
    assert result.written and result.parity is not None and result.parity.passed
    return out


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- convert -----------------------------------------------------------------------------------


def test_convert_forest_subprocess_parity_figures(
    fitted: Path, tmp_path: Path, wine: tuple[pd.DataFrame, np.ndarray]
) -> None:
    out = tmp_path / "forest.onnx"
    proc = run_cli("convert", fitted / "forest.pkl", "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["written"] is True and out.is_file()
    assert report["sample"] == str(SAMPLE_PARQUET)  # the shipped sample fits: used by default
    assert report["inputs"] == [{"name": "input", "dtype": "float32", "width": 13}]
    assert report["opset"]["ai.onnx"] <= opset_limits().target

    frame, _ = wine
    meta = metadata(out)
    assert json.loads(meta["feature_names"]) == list(frame.columns)
    assert json.loads(meta["class_labels"]) == ["class_0", "class_1", "class_2"]
    assert meta["sklearn_version"] == sklearn.__version__
    assert "ZipMap" not in {n.op_type for n in onnx.load(str(out)).graph.node}

    # The figures are those of the two models called directly on the sample.
    table = pq.read_table(SAMPLE_PARQUET)
    original = backend_for(ModelType.SKLEARN).load(fitted / "forest.pkl")
    converted = backend_for(ModelType.ONNX).load(out)
    p_ref, p_onnx = original.predict_proba(table), converted.predict_proba(table)
    cells = np.abs(p_ref - p_onnx)
    parity = report["parity"]
    assert parity["rows"] == 178 and parity["compared"] == "probabilities"
    assert parity["label_agreement"] == 1.0 and parity["disagreements"] == []
    assert parity["max_abs_diff"] == pytest.approx(cells.max(), rel=1e-9, abs=1e-15)
    assert parity["mean_abs_diff"] == pytest.approx(cells.mean(), rel=1e-9, abs=1e-15)
    assert [c["class"] for c in parity["per_class"]] == ["class_0", "class_1", "class_2"]
    assert [c["max_abs_diff"] for c in parity["per_class"]] == pytest.approx(cells.max(axis=0), abs=1e-15)
    assert parity["passed"] is True and parity["failures"] == []


def test_convert_scaler_logistic_pipeline(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "scaled.onnx"
    result = invoke("convert", fitted / "scaled_lr.joblib", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # human output only on stderr
    assert "1 input 'input' (float32 × 13), 3 classes, ZipMap off" in result.stderr
    assert "probability |Δ| per class" in result.stderr and "class_2" in result.stderr
    assert f"parity within tolerance; wrote {out}" in result.stderr
    session_inputs = [i.name for i in onnx.load(str(out)).graph.input]
    assert session_inputs == ["input"]


def test_convert_mixed_column_transformer(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "mixed.onnx"
    result = invoke("convert", fitted / "mixed.pkl", "-o", out, "--sample", fitted / "mixed.csv", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs"] == [
        {"name": "x/1", "dtype": "float32", "width": 1},
        {"name": "size", "dtype": "float32", "width": 1},
        {"name": "colour", "dtype": "string", "width": 1},
    ]
    assert report["parity"]["label_agreement"] == 1.0 and report["parity"]["passed"]
    assert [c["class"] for c in report["parity"]["per_class"]] == ["no", "yes"]
    graph = onnx.load(str(out)).graph
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [
        ("x/1", onnx.TensorProto.FLOAT),
        ("size", onnx.TensorProto.FLOAT),
        ("colour", onnx.TensorProto.STRING),
    ]

    # The converted model scores the mixed frame through the normal CLI, matched by name.
    scored = tmp_path / "scored.parquet"
    run = invoke("predict-proba", fitted / "mixed.parquet", "-m", out, "-o", scored, "-q")
    assert run.exit_code == 0, run.stderr
    expected = joblib.load(fitted / "mixed.pkl").predict_proba(pd.read_parquet(fitted / "mixed.parquet"))
    got = pq.read_table(scored).to_pandas()[["proba_no", "proba_yes"]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_convert_without_fitting_sample_skips_parity_with_a_note(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "mixed.onnx"
    result = invoke("convert", fitted / "mixed.pkl", "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["parity"] is None and report["written"] is True and out.is_file()
    assert "lacks the model's column(s) 'x/1', 'size', 'colour'" in report["note"]
    assert "note: parity not checked:" in result.stderr and "pass --sample DATA" in result.stderr


def test_convert_label_flips_exit_4_and_write_nothing(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "edge.onnx"
    out.write_bytes(b"previous")
    result = invoke("convert", fitted / "edge.pkl", "-o", out, "--sample", fitted / "edge.csv", "--json")
    assert result.exit_code == 4
    parity = json.loads(result.stdout)["parity"]
    assert parity["label_agreement"] < 1.0 and parity["passed"] is False
    assert parity["disagreeing_rows"] == parity["rows"] - parity["agreeing_rows"] > 0
    assert result.stderr.startswith(f"error: {out}: not written: the ONNX model differs from")
    assert "below --min-agreement 1" in result.stderr
    assert out.read_bytes() == b"previous"  # an existing file is only replaced on success
    assert leftovers(tmp_path) == []

    # Accepting the difference writes the file; the flips are real (the sklearn labels differ).
    accepted = invoke(
        "convert", fitted / "edge.pkl", "-o", out, "--sample", fitted / "edge.csv", "--min-agreement", "0.3"
    )
    assert accepted.exit_code == 0, accepted.stderr
    sample = pd.read_csv(fitted / "edge.csv")
    direct = joblib.load(fitted / "edge.pkl").predict(sample)
    converted = backend_for(ModelType.ONNX).load(out).predict(sample)
    flipped = np.flatnonzero(direct != converted)
    assert len(flipped) == parity["disagreeing_rows"]
    assert [d["row"] for d in parity["disagreements"]] == [int(i) + 1 for i in flipped]  # 1-based
    assert {(d["reference"], d["other"]) for d in parity["disagreements"]} <= {(0, 1), (1, 0)}


def test_convert_max_proba_diff_zero_fails(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "scaled.onnx"
    result = invoke("convert", fitted / "scaled_lr.joblib", "-o", out, "--max-proba-diff", "0")
    assert result.exit_code == 4
    assert "exceeds --max-proba-diff 0" in result.stderr
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "model,expected",
    [
        ("propagation.pkl", "skl2onnx cannot convert LabelPropagation: no converter is registered for "
         "sklearn.semi_supervised._label_propagation.LabelPropagation; replace it with an estimator"),
        ("propagation_pipeline.pkl", "skl2onnx cannot convert LabelPropagation (a step of the Pipeline)"),
    ],
)  # fmt: skip
def test_convert_unsupported_estimator(fitted: Path, tmp_path: Path, model: str, expected: str) -> None:
    out = tmp_path / "x.onnx"
    result = invoke("convert", fitted / model, "-o", out)
    assert result.exit_code == 4
    assert result.stderr.startswith(f"error: {fitted / model}: {expected}")
    assert "update_registered_converter" in result.stderr and "-t sklearn" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and leftovers(tmp_path) == []


def test_convert_errors_map_to_exit_codes(fitted: Path, forest_onnx: Path, tmp_path: Path) -> None:
    onnx_in = invoke("convert", forest_onnx, "-o", tmp_path / "again.onnx")
    assert onnx_in.exit_code == 4 and "already an ONNX model" in onnx_in.stderr
    no_folder = invoke("convert", fitted / "forest.pkl", "-o", tmp_path / "missing" / "x.onnx")
    assert no_folder.exit_code == 5 and "does not exist" in no_folder.stderr
    no_sample = invoke(
        "convert", fitted / "forest.pkl", "-o", tmp_path / "x.onnx", "--sample", tmp_path / "no.csv"
    )
    assert no_sample.exit_code == 3 and f"error: {tmp_path / 'no.csv'}: file not found" in no_sample.stderr
    too_new = invoke("convert", fitted / "forest.pkl", "--opset", "999")
    assert too_new.exit_code == 2 and "above the supported maximum" in too_new.stderr
    assert leftovers(tmp_path) == []


def test_convert_respects_an_older_opset(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "old.onnx"
    result = invoke("convert", fitted / "forest.pkl", "-o", out, "--opset", "15", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["opset"]["ai.onnx"] <= 15
    assert result.stderr == ""


def test_opset_limits_are_consistent() -> None:
    limits = opset_limits()
    assert limits.target == min(limits.skl2onnx, limits.onnx, limits.onnxruntime)
    assert limits.target <= onnx.defs.onnx_opset_version()
    assert 1 <= limits.ml_for(limits.target) <= limits.onnxruntime_ml


# -- compare -----------------------------------------------------------------------------------


def test_compare_builtin_config_json_structure() -> None:
    result = invoke("compare", SAMPLE_PARQUET, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["reference"] == "sklearn" and payload["passed"] is True
    assert list(payload["models"]) == ["sklearn", "onnx", "skops"]
    assert [c["other"] for c in payload["comparisons"]] == ["onnx", "skops"]
    for comparison in payload["comparisons"]:
        assert comparison["reference"] == "sklearn" and comparison["rows"] == 178
        assert comparison["label_agreement"] == 1.0
        assert [c["class"] for c in comparison["per_class"]] == ["class_0", "class_1", "class_2"]
        assert set(comparison["per_class"][0]) == {"class", "max_abs_diff", "mean_abs_diff"}
    skops = payload["comparisons"][1]
    assert skops["max_abs_diff"] == 0.0  # the same forest, unpickled differently


def test_compare_chunked_equals_whole_and_renders_tables() -> None:
    whole = json.loads(invoke("compare", SAMPLE_PARQUET, "--json", "-t", "sklearn", "-t", "onnx").stdout)
    chunked = invoke("compare", SAMPLE_PARQUET, "-t", "sklearn", "-t", "onnx", "--chunk-size", "7")
    assert chunked.exit_code == 0, chunked.stderr
    chunked_json = json.loads(
        invoke("compare", SAMPLE_PARQUET, "--json", "-t", "sklearn", "-t", "onnx", "--chunk-size", "7").stdout
    )
    a, b = whole["comparisons"][0], chunked_json["comparisons"][0]
    # onnxruntime's float32 tree sums may differ in the last bit between batch sizes.
    assert (a["rows"], a["agreeing_rows"]) == (b["rows"], b["agreeing_rows"]) == (178, 178)
    assert a["max_abs_diff"] == pytest.approx(b["max_abs_diff"], abs=1e-6)
    assert a["mean_abs_diff"] == pytest.approx(b["mean_abs_diff"], abs=1e-6)
    assert chunked.stderr == ""  # the parity tables are compare's product: stdout
    for text in ("parity", "label agreement", "100.00% (178/178)", "probability |Δ| per class", "class_1"):
        assert text in chunked.stdout


def test_compare_different_models_exit_4_subprocess(fitted: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "scaled.onnx"
    assert convert_model(fitted / "scaled_lr.joblib", wrong).written
    config = tmp_path / "two.toml"
    config.write_text(f'[sklearn]\npath = "{fitted / "forest.pkl"}"\n\n[onnx]\npath = "{wrong}"\n')
    proc = run_cli("compare", SAMPLE_PARQUET, "-c", config, "--json")
    assert proc.returncode == 4, proc.stderr
    payload = json.loads(proc.stdout)  # the report is still printed
    comparison = payload["comparisons"][0]
    assert payload["passed"] is False and comparison["passed"] is False
    assert comparison["max_abs_diff"] > 0.01
    assert proc.stderr.startswith("error: onnx vs sklearn: ")
    assert "exceeds --max-proba-diff 0.0001" in proc.stderr


def test_compare_class_mismatch_and_single_type(fitted: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.onnx"
    assert convert_model(fitted / "mixed.pkl", mixed).written
    config = tmp_path / "clash.toml"
    config.write_text(f'[sklearn]\npath = "{fitted / "forest.pkl"}"\n\n[onnx]\npath = "{mixed}"\n')
    clash = invoke("compare", SAMPLE_PARQUET, "-c", config)
    assert clash.exit_code == 4
    assert (
        "error: onnx has classes ['no', 'yes'] but sklearn has ['class_0', 'class_1', 'class_2']"
        in clash.stderr
    )

    single = tmp_path / "one.toml"
    single.write_text(f'[sklearn]\npath = "{fitted / "forest.pkl"}"\n')
    alone = invoke("compare", SAMPLE_PARQUET, "-c", single)
    assert (
        alone.exit_code == 4
        and "compare needs at least two model types (configured: sklearn)" in alone.stderr
    )


# -- inspect and models ------------------------------------------------------------------------


def test_inspect_onnx_subprocess(forest_onnx: Path, wine: tuple[pd.DataFrame, np.ndarray]) -> None:
    proc = run_cli("inspect", forest_onnx, "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["format"] == "onnx" and d["loads"] is True and d["error"] is None
    assert d["file_size"] == forest_onnx.stat().st_size
    assert d["sha256"] == hashlib.sha256(forest_onnx.read_bytes()).hexdigest()
    assert d["inputs"]["names"] == list(wine[0].columns) and set(d["inputs"]["dtypes"]) == {"float32"}
    assert d["graph_inputs"] == [{"name": "input", "type": "tensor(float)", "shape": [None, 13]}]
    assert d["classes"] == ["class_0", "class_1", "class_2"]
    assert d["versions"]["sklearn"] == sklearn.__version__
    assert d["versions"]["producer"].startswith("skl2onnx ")
    assert d["opset"]["ai.onnx"] <= opset_limits().target and "ai.onnx.ml" in d["opset"]


@pytest.mark.parametrize("name", ["forest.pkl", "scaled_lr.joblib", "mixed.pkl"])
def test_inspect_pickles(fitted: Path, name: str) -> None:
    result = invoke("inspect", fitted / name, "--json")
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    assert (d["model_type"], d["format"], d["loads"]) == ("sklearn", "pickle", True)
    assert d["versions"] == {"sklearn": sklearn.__version__}
    assert d["opset"] is None and d["graph_inputs"] is None
    if name == "mixed.pkl":
        assert d["estimator"] == "Pipeline(ColumnTransformer, LogisticRegression)"
        assert d["inputs"] == {
            "names": ["x/1", "size", "colour"],
            "dtypes": ["number", "number", "string"],
            "width": 3,
        }
        assert d["classes"] == ["no", "yes"]


def test_inspect_skops_needs_trust(fitted: Path, tmp_path: Path) -> None:
    import skops
    import skops.io as sio

    path = tmp_path / "forest.skops"
    sio.dump(joblib.load(fitted / "forest.pkl"), path)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    refused = invoke("inspect", path, "-c", empty, "--json")
    assert refused.exit_code == 4
    assert json.loads(refused.stdout)["error"].endswith(
        "refusing untrusted types sklearn.tree._tree.Tree; "
        "list them under [skops] trusted in the config if you trust this file"
    )
    trusted = invoke("inspect", path, "-c", empty, "--trust", "sklearn.tree._tree.Tree")
    assert trusted.exit_code == 0, trusted.stderr
    expected = ("RandomForestClassifier", f"skops {skops.__version__}, sklearn {sklearn.__version__}")
    for text in (*expected, "od280/od315_of_diluted_wines: number"):
        assert text in trusted.stdout
    assert re.search(r"loads here\s+yes", trusted.stdout)


@pytest.mark.parametrize("name,content", [("broken.pkl", b"\x80\x05garbage"), ("broken.onnx", b"not onnx")])
def test_inspect_corrupt_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = invoke("inspect", path, "--json")
    assert result.exit_code == 4
    d = json.loads(result.stdout)
    assert d["loads"] is False and d["file_size"] == len(content)
    assert "cannot load as" in d["error"]
    assert result.stderr.startswith(f"error: {path}: cannot load as")
    human = invoke("inspect", path)
    assert human.exit_code == 4 and "loads here" in human.stdout and "no: " in human.stdout


def test_inspect_reports_the_pickling_version(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    original = tmp_path / "lr.pkl"
    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), original)
    fake = "".join("0" if c.isdigit() else c for c in sklearn.__version__)  # same length
    raw = original.read_bytes()
    assert raw.count(sklearn.__version__.encode()) == 1
    old = tmp_path / "old.pkl"
    old.write_bytes(raw.replace(sklearn.__version__.encode(), fake.encode()))
    d = json.loads(invoke("inspect", old, "--json").stdout)
    assert d["versions"] == {"sklearn": fake}
    assert d["warnings"] and f"pickled with scikit-learn {fake}" in d["warnings"][0]


def test_inspect_missing_and_unknown_suffix(tmp_path: Path) -> None:
    missing = invoke("inspect", tmp_path / "nope.pkl")
    assert (
        missing.exit_code == 4 and missing.stderr == f"error: {tmp_path / 'nope.pkl'}: model file not found\n"
    )
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"x")
    result = invoke("inspect", unknown)
    assert result.exit_code == 4 and "pass --model-type" in result.stderr


def test_models_json_has_the_new_fields() -> None:
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.stderr
    entries = {m["model_type"]: m for m in json.loads(result.stdout)["models"]}
    for kind, entry in entries.items():
        path = Path(entry["path"])
        assert entry["file_size"] == path.stat().st_size and entry["loads"] is True
        assert entry["versions"]["sklearn"] == sklearn.__version__, kind
        assert len(entry["inputs"]["names"]) == len(entry["inputs"]["dtypes"]) == 13
    assert entries["onnx"]["format"] == "onnx" and entries["onnx"]["opset"]["ai.onnx"] >= 1
    assert entries["sklearn"]["format"] == "pickle" and entries["sklearn"]["opset"] is None
    assert entries["skops"]["versions"]["skops"]


# -- parity accumulator --------------------------------------------------------------------------


class FixedScorer:
    """A scorer that returns precomputed predictions, chunk by chunk."""

    def __init__(self, classes: list[Any] | None, outputs: list[Prediction]) -> None:
        self._classes = None if classes is None else np.asarray(classes, dtype=object)
        self._outputs = iter(outputs)

    @property
    def classes(self) -> np.ndarray | None:
        return self._classes

    @property
    def has_probabilities(self) -> bool:
        return self._classes is not None

    @property
    def outputs(self) -> OutputSpec:
        dtype = np.dtype(np.float64) if self._classes is None else np.dtype(object)
        return OutputSpec(classes=(self._classes,), dtypes=(dtype,))

    def run(
        self, frame: Any, *, labels: bool = True, probabilities: bool = False, exclude: Any = ()
    ) -> Prediction:
        return next(self._outputs)


def test_parity_aligns_classes_by_label_and_counts_rows_across_chunks() -> None:
    ref = FixedScorer(["a", "b"], [])
    other = FixedScorer(["b", "a"], [])  # the same classes in another order
    acc = ParityAccumulator(ref, other, names=("ref", "other"), tolerance=Tolerance(0.9, 0.05))
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    acc.update(
        Prediction(np.array(["a", "b"], dtype=object), p),
        Prediction(np.array(["a", "b"], dtype=object), p[:, ::-1]),
    )
    acc.update(
        Prediction(np.array(["a"], dtype=object), np.array([[0.6, 0.4]])),
        Prediction(np.array(["b"], dtype=object), np.array([[0.7, 0.3]])),  # b=0.7, a=0.3
    )
    report = acc.report()
    assert (report.rows, report.agreeing, report.disagreement_count) == (3, 2, 1)
    assert report.disagreements[0].row == 3  # 1-based across chunks
    assert (report.disagreements[0].reference, report.disagreements[0].other) == ("a", "b")
    assert report.max_abs_diff == pytest.approx(0.3)
    assert report.mean_abs_diff == pytest.approx(0.6 / 6)
    assert [c.max_abs_diff for c in report.per_class] == pytest.approx([0.3, 0.3])
    assert report.failures() == [
        "66.67% of labels agree (1 of 3 rows differ), below --min-agreement 0.9",
        "max absolute probability difference 0.3 exceeds --max-proba-diff 0.05",
    ]


def test_parity_regressors_compare_values() -> None:
    acc = ParityAccumulator(FixedScorer(None, []), FixedScorer(None, []), tolerance=Tolerance(1.0, 1e-3))
    acc.update(
        Prediction(np.array([1.0, 1000.0, 5.0]), None), Prediction(np.array([1.0005, 1000.004, 5.1]), None)
    )
    report = acc.report()
    assert report.compared == "values" and report.per_class == ()
    assert report.agreeing == 2  # 1000.004 is within 1e-5 relative; 5.1 is not
    assert report.max_abs_diff == pytest.approx(0.1)
    assert report.disagreements[0].row == 3
