"""Rebuild the shipped sample data and models, deterministically, and re-pin them.

    .venv/bin/python models/build_models.py

Data: scikit-learn's bundled wine dataset (178 wines, 13 chemical measurements with their real
column names, e.g. ``od280/od315_of_diluted_wines``; three cultivars ``class_0..class_2``).
Writes ``sample_data/wine.csv`` and ``sample_data/wine.parquet`` (an ``id`` column first), a
RandomForestClassifier fitted on a DataFrame (so it knows its feature names) as
``models/classifier.pkl`` and, converted with skl2onnx (ZipMap off, feature names and class
labels recorded in the metadata), as ``models/classifier.onnx``, and in the skops format (no
pickle) as ``models/classifier.skops``; finally rewrites
``models/default.toml`` with the sha256 of the three files. Nothing is downloaded.
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


def _deterministic_skops(archive: bytes) -> bytes:
    """Stable bytes for a skops file.

    skops numbers objects (``__id__``) and names array files after Python object ids, and
    stamps zip entries with the current time: renumber both in order of appearance in
    ``schema.json`` and pin the times.
    """
    import io
    import re
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        contents = {info.filename: source.read(info.filename) for info in source.infolist()}
    schema = contents.pop("schema.json").decode("utf-8")
    pattern = re.compile(r'("__id__": )(\d+)|"(\d+)(\.\w+)"')
    numbers: dict[str, str] = {}

    def renumber(match: re.Match[str]) -> str:
        old = match.group(2) or match.group(3)
        new = numbers.setdefault(old, str(len(numbers) + 1))
        if match.group(1):
            return f"{match.group(1)}{new}"
        return f'"{new}{match.group(4)}"'

    schema = pattern.sub(renumber, schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        target.writestr(zipfile.ZipInfo("schema.json", date_time=(1980, 1, 1, 0, 0, 0)), schema)
        for name in sorted(contents, key=lambda n: int(numbers[n.split(".")[0]])):
            stem, suffix = name.split(".", 1)
            info = zipfile.ZipInfo(f"{numbers[stem]}.{suffix}", date_time=(1980, 1, 1, 0, 0, 0))
            target.writestr(info, contents[name])
    return out.getvalue()


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

    import skops.io as sio

    (MODELS / "classifier.skops").write_bytes(_deterministic_skops(sio.dumps(model)))

    digests = {
        name: hashlib.sha256((MODELS / name).read_bytes()).hexdigest()
        for name in ("classifier.pkl", "classifier.onnx", "classifier.skops")
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
        "# One session using every core beats one single-threaded session per core (README).\n"
        "pool_size = 1\n"
        f'sha256 = "{digests["classifier.onnx"]}"\n\n'
        "[skops]\n"
        'path = "classifier.skops"\n'
        "pool_size = 2\n"
        f'sha256 = "{digests["classifier.skops"]}"\n'
        "# skops does not trust tree node arrays by default (unchecked indices); we built this file.\n"
        'trusted = ["sklearn.tree._tree.Tree"]\n',
        encoding="utf-8",
    )
    return digests


if __name__ == "__main__":
    for name, digest in build().items():
        print(f"{name}  sha256 {digest}")
