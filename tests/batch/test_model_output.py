"""Model output is never trusted; every output of a multi-output model is written.

End-to-end: the real ``modelrouter`` command in a subprocess, on real files, with models that
misbehave (tests/misbehaving.py) and real multi-output models. Each misbehaviour must end
with exit 4, an ``error:`` line naming the model and what it returned, no traceback, and no
output or temporary file left behind. Library-level hypothesis properties cover the one
check every backend goes through (random shapes, labels and probabilities).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.backends import OutputSpec
from modelrouter.backends.declared_outputs import PROBABILITY_SLACK, checked_labels, checked_probabilities
from modelrouter.errors import ModelError, ModelOutputError
from sklearn.datasets import load_wine

from tests.misbehaving import Misbehaving
from tests.tiers import cross

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
EXIT_MODEL = 4


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    env["PYTHONPATH"] = str(ROOT)  # the misbehaving estimators' module, as a user's would be
    return subprocess.run(
        [str(MODELROUTER), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def wine_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    return frame, data.target.to_numpy()


def small_forest() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)


def assert_model_error(proc: subprocess.CompletedProcess[str], folder: Path, *needles: str) -> None:
    assert proc.returncode == EXIT_MODEL, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith("out") or p.name.endswith(".tmp")]
    assert leftovers == []


# -- misbehaving models, end to end ---------------------------------------------------------

#: mode → (command, what the error line must say besides the model's file name)
MISBEHAVIOURS: dict[str, tuple[str, str]] = {
    "more_rows": ("predict", "returned 186 rows for 178 input rows"),
    "fewer_rows": ("predict", "returned 177 rows for 178 input rows"),
    "none": ("predict", "predict returned None"),
    "two_d": ("predict", "returned shape (178, 2) where one output per row is declared"),
    "strings_for_ints": ("predict", "returned label '0' (str), which is not one of its classes [0, 1, 2]"),
    "mixed": ("predict", "(str), which is not one of its classes"),
    "other_label": ("predict", "returned label 7, which is not one of its classes [0, 1, 2]"),
    "scalar": ("predict", "returned a single int, not one value per row"),
    "system_exit": ("predict", "the model failed while predicting (SystemExit: 7)"),
    "keyboard_interrupt": ("predict", "the model failed while predicting (KeyboardInterrupt"),
    "proba_more_columns": ("predict-proba", "returned shape (178, 4) where (178, 3) is declared"),
    "proba_fewer_columns": ("predict-proba", "returned shape (178, 2) where (178, 3) is declared"),
    "proba_more_rows": ("predict-proba", "returned shape (180, 3) where (178, 3) is declared"),
    "proba_above_one": ("predict-proba", "returned 1.5 (row 3, column 1); probabilities must be in [0, 1]"),
    "proba_negative": ("predict-proba", "returned -0.25 (row 1, column 2); probabilities must be in [0, 1]"),
    "proba_nan": ("predict-proba", "returned nan (row 4, column 3)"),
    "proba_text": ("predict-proba", "returned text values, not numbers"),
}


#: The modes also run through the real CLI (each run is a fresh interpreter, ~2-5 s); every
#: mode goes through the backend in-process below.
E2E_MODES = [
    "more_rows",
    "none",
    "two_d",
    "strings_for_ints",
    "mixed",
    "system_exit",
    "keyboard_interrupt",
    "proba_more_columns",
    "proba_above_one",
]


#: The CLI runs that ``make test`` keeps (one per kind of failure: a wrong shape, an exception
#: the model raises, a signal-like exception, a probability contract); the others run in
#: ``make test-slow`` (tests/tiers.py).
E2E_FAST = {"more_rows", "system_exit", "keyboard_interrupt", "proba_above_one"}


@pytest.mark.matrix
@pytest.mark.parametrize(
    "mode", [pytest.param(m, marks=() if m in E2E_FAST else (pytest.mark.slow,)) for m in E2E_MODES]
)
def test_misbehaving_model_is_a_model_error(mode: str, tmp_path: Path) -> None:
    frame, target = wine_frame()
    model = Misbehaving(small_forest(), mode).fit(frame.drop(columns=["id"]), target)
    joblib.dump(model, tmp_path / f"{mode}.pkl")
    frame.to_csv(tmp_path / "wine.csv", index=False)
    command, _ = MISBEHAVIOURS[mode]
    args = [command, "wine.csv", "-m", f"{mode}.pkl", "-o", "out.csv", "-k", "id", "-w", "2"]
    assert_model_error(run_cli(args, tmp_path), tmp_path, f"{mode}.pkl", MISBEHAVIOURS[mode][1])


@pytest.mark.parametrize("mode", [m for m in MISBEHAVIOURS if m != "keyboard_interrupt"])
def test_misbehaving_model_in_the_library(mode: str) -> None:
    """The same check for library users (keyboard_interrupt: see the main-thread test)."""
    from modelrouter.backends.sklearn_backend import SklearnModel

    frame, target = wine_frame()
    features = frame.drop(columns=["id"])
    model = SklearnModel(Path(f"{mode}.pkl"), Misbehaving(small_forest(), mode).fit(features, target))
    with pytest.raises(ModelError) as caught:
        model.run(
            features, labels=MISBEHAVIOURS[mode][0] == "predict", probabilities=mode.startswith("proba")
        )
    assert str(caught.value).startswith(f"{mode}.pkl: ")
    assert MISBEHAVIOURS[mode][1] in str(caught.value)


def test_honest_wrapper_scores(tmp_path: Path) -> None:
    """The same wrapper without misbehaviour scores: the checks refuse only what is wrong."""
    frame, target = wine_frame()
    features = frame.drop(columns=["id"])
    model = Misbehaving(small_forest(), "honest").fit(features, target)
    joblib.dump(model, tmp_path / "honest.pkl")
    frame.to_csv(tmp_path / "wine.csv", index=False)
    proc = run_cli(["predict", "wine.csv", "-m", "honest.pkl", "-o", "out.csv", "--no-stats"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["prediction"].tolist() == model.predict(features).tolist()


# -- multi-output models ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-target Ridge, a MultiOutputClassifier and a multilabel forest, pickled and as ONNX."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.tree import DecisionTreeClassifier

    folder = tmp_path_factory.mktemp("multi")
    frame, target = wine_frame()
    features = frame.drop(columns=["id"])
    labels = np.c_[target, (target > 0).astype(np.int64)]
    models = {
        "ridge2": Ridge().fit(features, features[["alcohol", "hue"]].to_numpy() * [1.0, 2.0]),
        "moc": MultiOutputClassifier(DecisionTreeClassifier(max_depth=3, random_state=0)).fit(
            features, labels
        ),
        "forest": RandomForestClassifier(n_estimators=7, max_depth=4, random_state=0).fit(features, labels),
    }
    frame.to_csv(folder / "wine.csv", index=False)
    frame.head(0).to_csv(folder / "empty.csv", index=False)
    sample = features.to_numpy(np.float32)[:1]
    for name, model in models.items():
        joblib.dump(model, folder / f"{name}.pkl")
        options = None if name == "ridge2" else {id(model): {"zipmap": False}}
        onx = to_onnx(model, sample, options=options)
        prop = onx.metadata_props.add()
        prop.key, prop.value = "feature_names", json.dumps(list(features.columns))
        (folder / f"{name}.onnx").write_bytes(onx.SerializeToString())
    return folder


MULTI = [
    ("ridge2", "predict"),
    ("moc", "predict"),
    ("moc", "predict-proba"),
    ("forest", "predict"),
    ("forest", "predict-proba"),
]


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("name", "command", "suffix"),
    cross(MULTI, ["pkl", "onnx"], fast_column="pkl", fast_row=("moc", "predict-proba")),
)
def test_multi_output_writes_every_output(multi_output: Path, name: str, command: str, suffix: str) -> None:
    folder = multi_output
    out = f"{name}.{suffix}.{command}.parquet"
    proc = run_cli(
        [command, "wine.csv", "-m", f"{name}.{suffix}", "-o", out, "-k", "id", "--no-stats"], folder
    )
    if (name, command, suffix) == ("forest", "predict-proba", "onnx"):
        # skl2onnx records no per-output classes for a multilabel forest (one node per tree):
        # refused by name; `modelrouter convert` records them (test_inspect_and_convert_…).
        assert proc.returncode == EXIT_MODEL, proc.stderr
        assert "class labels of the model's outputs are unknown" in proc.stderr
        assert not (folder / out).exists()
        return
    assert proc.returncode == 0, proc.stderr
    written = pq.read_table(folder / out).to_pandas()
    model = joblib.load(folder / f"{name}.pkl")
    features = pd.read_csv(folder / "wine.csv").drop(columns=["id"])
    if command == "predict":
        expected = np.asarray(model.predict(features))
        assert list(written.columns) == ["id", "prediction_0", "prediction_1"]
        got = written[["prediction_0", "prediction_1"]].to_numpy()
        if suffix == "pkl" or name != "ridge2":
            assert np.array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-4)
    else:
        proba = model.predict_proba(features)
        names = [f"proba_{i}_{c}" for i, classes in enumerate(model.classes_) for c in classes]
        assert list(written.columns) == ["id", *names]
        expected = np.concatenate(proba, axis=1)
        tolerance = 0 if suffix == "pkl" else 1e-5
        np.testing.assert_allclose(written[names].to_numpy(), expected, atol=tolerance)

    # A header-only input gives the same columns, without calling the model.
    empty = f"{name}.{suffix}.{command}.empty.csv"
    proc = run_cli(
        [command, "empty.csv", "-m", f"{name}.{suffix}", "-o", empty, "-k", "id", "--no-stats"], folder
    )
    assert proc.returncode == 0, proc.stderr
    assert (folder / empty).read_text().strip().replace('"', "").split(",") == list(written.columns)


# skl2onnx conversions cost ~6-10 s each: make test-slow runs these (tests/tiers.py); make
# test scores multi-output models through the other tests of this file.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["ridge2", "moc", "forest"])
def test_inspect_and_convert_multi_output(multi_output: Path, name: str) -> None:
    folder = multi_output
    proc = run_cli(["inspect", f"{name}.pkl", "--json"], folder)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["outputs"] == 2
    proc = run_cli(
        ["convert", f"{name}.pkl", "-o", f"{name}.converted.onnx", "--sample", "wine.csv", "--json"], folder
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["written"] and report["parity"]["passed"]
    assert report["parity"]["rows"] == 178 and report["parity"]["agreeing_rows"] == 178
    proc = run_cli(["inspect", f"{name}.converted.onnx", "--json"], folder)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["outputs"] == 2
    if name != "ridge2":
        assert facts["classes"] == [[0, 1, 2], [0, 1]]
        out = f"{name}.converted.csv"
        proc = run_cli(
            ["predict-proba", "wine.csv", "-m", f"{name}.converted.onnx", "-o", out, "--no-stats"], folder
        )
        assert proc.returncode == 0, proc.stderr
        model = joblib.load(folder / f"{name}.pkl")
        features = pd.read_csv(folder / "wine.csv").drop(columns=["id"])
        expected = np.concatenate(model.predict_proba(features), axis=1)
        np.testing.assert_allclose(pd.read_csv(folder / out).to_numpy(), expected, atol=1e-5)


def test_multi_output_regressor_refuses_predict_proba(multi_output: Path) -> None:
    proc = run_cli(["predict-proba", "wine.csv", "-m", "ridge2.pkl", "-o", "out.csv"], multi_output)
    assert proc.returncode == EXIT_MODEL
    assert "ridge2.pkl" in proc.stderr and "regressor" in proc.stderr


# -- ONNX metadata that is not a JSON list of strings -----------------------------------------


@pytest.fixture(scope="module")
def bad_metadata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx

    folder = tmp_path_factory.mktemp("metadata")
    model = onnx.load(ROOT / "models" / "classifier.onnx")
    for value, name in (
        ('["alcohol", "malic_acid"', "broken"),
        ('{"a": 1}', "object"),
        ("[1, 2, 3]", "numbers"),
    ):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        for prop in copy.metadata_props:
            if prop.key == "feature_names":
                prop.value = value
        (folder / f"{name}.onnx").write_bytes(copy.SerializeToString())
        (folder / f"{name}.toml").write_text(f'[onnx]\npath = "{name}.onnx"\n', encoding="utf-8")
    wine_frame()[0].to_csv(folder / "wine.csv", index=False)
    return folder


@pytest.mark.parametrize(
    ("name", "command"),
    cross(
        [("broken",), ("object",), ("numbers",)],
        ["predict", "inspect", "models"],
        fast_column="predict",
        fast_row=("broken",),
    ),
)
def test_onnx_feature_names_not_a_json_list_is_exit_4(bad_metadata: Path, name: str, command: str) -> None:
    args = {
        "predict": ["predict", "wine.csv", "-m", f"{name}.onnx", "-o", "out.csv"],
        "inspect": ["inspect", f"{name}.onnx"],
        "models": ["models", "-c", f"{name}.toml"],
    }[command]
    proc = run_cli(args, bad_metadata)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "feature_names" in proc.stdout + proc.stderr
    assert not (bad_metadata / "out.csv").exists()


# -- probabilities: clipped into [0, 1], float32 written as float32 -------------------------


def test_onnx_probabilities_in_unit_interval_and_float32_form(tmp_path: Path) -> None:
    """The shipped ONNX forest gave 1.0000001192092896 in 43 cells (issue 10, item 10)."""
    src = ROOT / "sample_data" / "wine.csv"
    csv_out, pq_out = tmp_path / "out.csv", tmp_path / "out.parquet"
    for out in (csv_out, pq_out):
        proc = run_cli(
            ["predict-proba", str(src), "-t", "onnx", "-o", str(out), "-k", "id", "--no-stats"], tmp_path
        )
        assert proc.returncode == 0, proc.stderr
    table = pq.read_table(pq_out)
    proba_names = [n for n in table.column_names if n.startswith("proba_")]
    assert all(str(table.schema.field(n).type) == "float" for n in proba_names)
    values = table.select(proba_names).to_pandas().to_numpy()
    assert values.min() >= 0.0 and values.max() <= 1.0
    text = pd.read_csv(csv_out, dtype=str)
    for name in proba_names:
        for cell in text[name]:
            shortest = np.format_float_positional(np.float32(cell), unique=True, trim="-")
            assert float(shortest) == float(cell), (name, cell)  # no float64 noise digits
            assert 0.0 <= float(cell) <= 1.0


# -- the one check, as properties over random outputs ------------------------------------------

INT_CLASSES = OutputSpec(classes=(np.array([0, 1, 2]),), dtypes=(np.dtype(np.int64),))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(1, 20),
    returned_rows=st.integers(0, 25),
    columns=st.sampled_from([None, 1, 2, 3]),
    kind=st.sampled_from(["int", "float", "str", "object", "bool"]),
)
def test_labels_accepted_only_when_shape_and_classes_match(
    rows: int, returned_rows: int, columns: int | None, kind: str
) -> None:
    base = np.arange(returned_rows) % 3
    shape = (returned_rows,) if columns is None else (returned_rows, columns)
    values: Any = np.broadcast_to(base[:, None] if columns else base, shape).copy()
    values = {
        "int": values,
        "float": values.astype(float),
        "str": values.astype(str),
        "object": values.astype(object),
        "bool": values.astype(bool),
    }[kind]
    good = returned_rows == rows and columns in (None, 1) and kind in ("int", "float", "object", "bool")
    if good:
        result = checked_labels(values, rows, INT_CLASSES, "m.pkl")
        assert result.shape == (rows,) and result.dtype == np.int64
        assert np.array_equal(result, np.asarray(values).reshape(rows))
    else:
        with pytest.raises(ModelOutputError, match=r"m\.pkl: predict returned"):
            checked_labels(values, rows, INT_CLASSES, "m.pkl")


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 10),
    width=st.integers(1, 4),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_probabilities_clipped_within_slack_refused_beyond(
    rows: int, width: int, data: st.DataObject, dtype: type[np.floating[Any]]
) -> None:
    spec = OutputSpec(classes=(np.arange(3),), dtypes=(np.dtype(np.int64),), proba_dtype=np.dtype(dtype))
    edges = [float("nan"), float("inf"), 1.0000001192092896, -1e-7, 1.0 + 2e-6, -2e-6, 0.0, 1.0]
    cell = st.one_of(st.floats(-0.5, 1.5, width=32 if dtype is np.float32 else 64), st.sampled_from(edges))
    values = np.array(
        data.draw(st.lists(st.lists(cell, min_size=width, max_size=width), min_size=rows, max_size=rows)),
        dtype=dtype,
    )
    ok = (
        width == 3
        and bool(np.isfinite(values).all())
        and values.min() >= -PROBABILITY_SLACK
        and values.max() <= 1 + PROBABILITY_SLACK
    )
    if not ok:
        with pytest.raises(ModelOutputError):
            checked_probabilities(values, rows, spec, "m.onnx")
        return
    result = checked_probabilities(values, rows, spec, "m.onnx")
    assert result.dtype == dtype  # never widened
    assert result.min() >= 0.0 and result.max() <= 1.0
    np.testing.assert_allclose(result, values, atol=PROBABILITY_SLACK)


def test_model_raising_keyboard_interrupt_on_the_main_thread_still_interrupts() -> None:
    """A KeyboardInterrupt in the main thread may be a real Ctrl-C: it is not swallowed."""
    from modelrouter.backends.sklearn_backend import SklearnModel

    frame, target = wine_frame()
    features = frame.drop(columns=["id"])
    model = SklearnModel(
        Path("k.pkl"),
        Misbehaving(small_forest(), "keyboard_interrupt").fit(features, target),
    )
    with pytest.raises(KeyboardInterrupt):
        model.predict(features)
    exiting = Misbehaving(small_forest(), "system_exit").fit(features, target)
    with pytest.raises(ModelError, match="SystemExit"):
        SklearnModel(Path("s.pkl"), exiting).predict(features)
