"""Rebuild the shipped sample data and models, deterministically, and re-pin them.

    .venv/bin/python models/build_models.py

Data: scikit-learn's bundled wine dataset (178 wines, 13 chemical measurements with their real
column names, e.g. ``od280/od315_of_diluted_wines``; three cultivars ``class_0..class_2``).
Writes ``sample_data/wine.csv`` and ``sample_data/wine.parquet`` (an ``id`` column first), a
RandomForestClassifier fitted on a DataFrame (so it knows its feature names) as
``models/classifier.pkl`` and, converted with skl2onnx (ZipMap off, feature names and class
labels recorded in the metadata), as ``models/classifier.onnx``; finally rewrites
``models/default.toml`` with the sha256 of both files. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sklearn
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
DATA = ROOT / "sample_data"


def sample_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """The wine measurements with an ``id`` column, and the cultivar names as labels."""
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    labels = np.asarray(wine.target_names)[wine.target.to_numpy()]
    return frame, labels


def build() -> dict[str, str]:
    frame, labels = sample_frame()
    DATA.mkdir(exist_ok=True)
    frame.to_csv(DATA / "wine.csv", index=False, float_format="%.6g")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), DATA / "wine.parquet")

    features = frame.drop(columns=["id"])
    model = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)
    model.fit(features, labels)
    joblib.dump(model, MODELS / "classifier.pkl")

    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, features.shape[1]]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    for key, value in {
        "feature_names": json.dumps(list(features.columns)),
        "class_labels": json.dumps([str(c) for c in model.classes_]),
        "sklearn_version": sklearn.__version__,
    }.items():
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, value
    (MODELS / "classifier.onnx").write_bytes(onx.SerializeToString())

    digests = {
        name: hashlib.sha256((MODELS / name).read_bytes()).hexdigest()
        for name in ("classifier.pkl", "classifier.onnx")
    }
    (MODELS / "default.toml").write_text(
        "# Built-in default configuration: the shipped sample models, pinned by sha256.\n"
        "# Rewritten by models/build_models.py; relative paths resolve against this folder.\n"
        f"# Built with scikit-learn {sklearn.__version__}.\n"
        'default_model_type = "sklearn"\n'
        "enable_onnx = true\n\n"
        "[sklearn]\n"
        'path = "classifier.pkl"\n'
        "pool_size = 2\n"
        f'sha256 = "{digests["classifier.pkl"]}"\n\n'
        "[onnx]\n"
        'path = "classifier.onnx"\n'
        "pool_size = 2\n"
        f'sha256 = "{digests["classifier.onnx"]}"\n',
        encoding="utf-8",
    )
    return digests


if __name__ == "__main__":
    for name, digest in build().items():
        print(f"{name}  sha256 {digest}")
