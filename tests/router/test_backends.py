"""Backends on real fitted models: sklearn/ONNX parity, schemas, regressors, pipelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from modelrouter import DataError, MissingColumnsError, ModelLoadError, ModelPool, ModelType
from modelrouter.backends import backend_for
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.errors import ProbabilitiesUnsupportedError

Wine = tuple[pd.DataFrame, np.ndarray]


def load(kind: ModelType, path: Path) -> ModelPool:
    return ModelPool.load(kind, path, size=1)


@pytest.mark.parametrize("onnx_file", ["forest.onnx", "forest_zipmap.onnx"])
def test_sklearn_and_onnx_agree(models_dir: Path, wine: Wine, onnx_file: str) -> None:
    frame, _ = wine
    with load(ModelType.SKLEARN, models_dir / "forest.pkl").borrow() as sk:
        labels, proba = sk.predict(frame), sk.predict_proba(frame)
        classes = sk.classes
    with load(ModelType.ONNX, models_dir / onnx_file).borrow() as ox:
        onnx_labels, onnx_proba = ox.predict(frame), ox.predict_proba(frame)
        assert ox.classes is not None and classes is not None
        assert list(ox.classes) == list(classes)
    assert list(labels) == list(onnx_labels)
    assert np.abs(proba - onnx_proba).max() < 1e-5
    assert labels.dtype == object and onnx_labels.dtype == object


def test_shipped_sample_models_agree() -> None:
    root = Path(__file__).resolve().parents[2]
    frame = pd.read_parquet(root / "sample_data" / "wine.parquet")
    with load(ModelType.SKLEARN, root / "models" / "classifier.pkl").borrow() as sk:
        labels, proba = sk.predict(frame), sk.predict_proba(frame)
    with load(ModelType.ONNX, root / "models" / "classifier.onnx").borrow() as ox:
        assert list(ox.predict(frame)) == list(labels)
        assert np.abs(ox.predict_proba(frame) - proba).max() < 1e-5


@pytest.mark.parametrize("kind,name", [(ModelType.SKLEARN, "forest.pkl"), (ModelType.ONNX, "forest.onnx")])
def test_column_order_does_not_matter(models_dir: Path, wine: Wine, kind: ModelType, name: str) -> None:
    frame, _ = wine
    shuffled = frame[list(reversed(frame.columns))].assign(extra="ignored")
    with load(kind, models_dir / name).borrow() as model:
        assert list(model.predict(frame)) == list(model.predict(shuffled))


@pytest.mark.parametrize("kind,name", [(ModelType.SKLEARN, "forest.pkl"), (ModelType.ONNX, "forest.onnx")])
def test_arrow_batches_score_like_frames(models_dir: Path, wine: Wine, kind: ModelType, name: str) -> None:
    frame, _ = wine
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    with load(kind, models_dir / name).borrow() as model:
        assert list(model.predict(batch)) == list(model.predict(frame))


def test_sklearn_named_matrices_share_one_column_index(models_dir: Path, wine: Wine) -> None:
    # Made once per instance: a fresh index per call cost about 5% of a small forest call.
    frame, _ = wine
    prototype = load(ModelType.SKLEARN, models_dir / "forest.pkl").prototype
    assert isinstance(prototype, SklearnModel)
    names = list(prototype.schema.names or ())
    first, second = prototype.feature_matrix(frame, names), prototype.feature_matrix(frame.head(3), names)
    assert isinstance(first, pd.DataFrame) and isinstance(second, pd.DataFrame)
    assert second.columns is first.columns
    assert list(second.columns) == names
    assert np.array_equal(second.to_numpy(), frame[names].head(3).to_numpy(dtype=float))


@pytest.mark.parametrize("kind,name", [(ModelType.SKLEARN, "forest.pkl"), (ModelType.ONNX, "forest.onnx")])
def test_missing_columns_are_all_named(models_dir: Path, wine: Wine, kind: ModelType, name: str) -> None:
    frame, _ = wine
    with load(kind, models_dir / name).borrow() as model, pytest.raises(MissingColumnsError) as excinfo:
        model.predict(frame.drop(columns=["ash", "hue"]))
    assert excinfo.value.missing == ("ash", "hue")
    assert "missing feature columns 'ash', 'hue'" in str(excinfo.value)


@pytest.mark.parametrize("kind,name", [(ModelType.SKLEARN, "forest.pkl"), (ModelType.ONNX, "forest.onnx")])
def test_unconvertible_value_names_column_and_row(
    models_dir: Path, wine: Wine, kind: ModelType, name: str
) -> None:
    frame, _ = wine
    text = frame.head(6).astype(str).astype(object)
    text.loc[4, "magnesium"] = "lots"
    with load(kind, models_dir / name).borrow() as model, pytest.raises(DataError) as excinfo:
        model.predict(text)
    assert excinfo.value.row == 4
    assert excinfo.value.column == "magnesium"
    assert "column 'magnesium': cannot convert 'lots'" in str(excinfo.value)
    assert str(excinfo.value).startswith("row 5: ")


def test_empty_frame_gives_empty_typed_output(models_dir: Path, wine: Wine) -> None:
    frame, _ = wine
    with load(ModelType.SKLEARN, models_dir / "forest.pkl").borrow() as model:
        labels = model.predict(frame.head(0))
        proba = model.predict_proba(frame.head(0))
    assert labels.shape == (0,) and labels.dtype == object
    assert proba.shape == (0, 3)


def test_regressor_predicts_and_refuses_probabilities(models_dir: Path, wine: Wine) -> None:
    frame, _ = wine
    with load(ModelType.SKLEARN, models_dir / "regressor.pkl").borrow() as model:
        values = model.predict(frame)
        assert values.dtype == np.float64
        np.testing.assert_allclose(values.astype(np.float64), frame["alcohol"].to_numpy() * 2, rtol=1e-9)
        assert model.classes is None
        with pytest.raises(ProbabilitiesUnsupportedError, match="the model is a regressor"):
            model.predict_proba(frame)


def test_nan_rejected_by_a_model_names_the_row(models_dir: Path, wine: Wine) -> None:
    frame, _ = wine
    bad = frame.head(5).copy()
    bad.loc[3, "ash"] = np.nan
    with (
        load(ModelType.SKLEARN, models_dir / "regressor.pkl").borrow() as model,
        pytest.raises(DataError) as e,
    ):
        model.predict(bad)
    assert e.value.row == 3 and e.value.column == "ash"


def test_pipeline_with_string_column_one_onnx_input_per_column(models_dir: Path) -> None:
    frame = pd.read_csv(models_dir / "mixed.csv")
    sk_pool = load(ModelType.SKLEARN, models_dir / "mixed.pkl")
    ox_pool = load(ModelType.ONNX, models_dir / "mixed.onnx")
    assert sk_pool.schema.dtypes == ("number", "string")
    assert ox_pool.schema.names == ("x", "colour")
    assert ox_pool.schema.dtypes == ("float32", "string")
    shuffled = frame[["colour", "x"]]
    with sk_pool.borrow() as sk, ox_pool.borrow() as ox:
        assert list(sk.predict(frame)) == list(ox.predict(shuffled))
        assert np.abs(sk.predict_proba(frame) - ox.predict_proba(shuffled)).max() < 1e-5


def test_fixed_batch_dimension_runs_in_slices(tmp_path: Path, wine: Wine, models_dir: Path) -> None:
    import json

    import joblib
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    frame, _ = wine
    forest = joblib.load(models_dir / "forest.pkl")
    onx = to_onnx(
        forest,
        initial_types=[("input", FloatTensorType([4, frame.shape[1]]))],
        options={id(forest): {"zipmap": False}},
    )
    prop = onx.metadata_props.add()
    prop.key, prop.value = "feature_names", json.dumps(list(frame.columns))
    (tmp_path / "fixed.onnx").write_bytes(onx.SerializeToString())
    with load(ModelType.ONNX, tmp_path / "fixed.onnx").borrow() as model:
        labels = model.predict(frame.head(11))  # 4 + 4 + 3 (padded)
    assert list(labels) == list(forest.predict(frame.head(11)))


def test_corrupt_files_raise_model_load_error(tmp_path: Path) -> None:
    for kind, name in [(ModelType.SKLEARN, "bad.pkl"), (ModelType.ONNX, "bad.onnx")]:
        path = tmp_path / name
        path.write_bytes(b"\x00not a model\xff" * 10)
        with pytest.raises(ModelLoadError, match=f"{path}: cannot load"):
            ModelPool.load(kind, path)


def test_version_mismatch_is_surfaced(tmp_path: Path, models_dir: Path) -> None:
    import sklearn
    from modelrouter.backends.sklearn_backend import ModelVersionWarning

    raw = (models_dir / "regressor.pkl").read_bytes()
    forged = raw.replace(sklearn.__version__.encode(), b"0.0.1")  # the version pickle records
    assert forged != raw
    path = tmp_path / "old.pkl"
    path.write_bytes(forged)
    with pytest.warns(ModelVersionWarning, match=r"pickled with scikit-learn 0\.0\.1, running"):
        backend_for(ModelType.SKLEARN).load(path)


def test_registry_maps_every_model_type() -> None:
    for kind in ModelType:
        assert backend_for(kind).model_type is kind
