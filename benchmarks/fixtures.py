"""Deterministic benchmark fixtures: a wide float32 Parquet file and two fitted models.

Data: ``rows`` rows of ``id`` (int64, 0..rows-1) and 20 float32 features ``f00..f19``, written
one 65,536-row row group at a time, each row group drawn from its own seeded generator (so the
first N rows of a bigger file equal the smaller file, and the generator holds one row group in
memory, whatever the size).

Models, fitted on a 20,000-row DataFrame with those 20 column names and 3 classes (labels 0, 1,
2 from a non-linear function of the features plus noise):

- ``rf``: RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0);
- ``logreg``: Pipeline(StandardScaler, LogisticRegression).

Each is saved as a joblib pickle and as ONNX (skl2onnx ``to_onnx``, one ``FloatTensorType([None,
20])`` input, ZipMap off, ``feature_names`` and ``class_labels`` metadata as JSON lists, as
``modelrouter convert`` writes them). :func:`plain_onnx` also converts a pickle the way a user
calling skl2onnx directly does (``to_onnx(model, X[:1])``, its defaults, no metadata): the
router then reads the class labels from the graph and takes the columns by position.

Everything is cached under the data folder (``benchmarks/data/`` by default, gitignored): the
Parquet file keyed by row count, the models keyed by the scikit-learn version (a pickle is only
good for the version that wrote it). Files are written to a temporary name and renamed, so an
interrupted build never leaves a half-written fixture behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_DATA_DIR",
    "FEATURES",
    "ID_COLUMN",
    "ROW_GROUP_SIZE",
    "TRAIN_ROWS",
    "Fixtures",
    "ModelFiles",
    "build_fixtures",
    "build_models",
    "build_parquet",
    "feature_block",
    "plain_onnx",
]

#: Bump when the data or model recipe changes: old caches are then ignored.
FIXTURE_VERSION = 1
#: Bump when only the models change (the data files are kept). 2: ONNX class_labels metadata.
MODEL_VERSION = 2
SEED = 20_260_404
N_FEATURES = 20
FEATURES: tuple[str, ...] = tuple(f"f{i:02d}" for i in range(N_FEATURES))
ID_COLUMN = "id"
ROW_GROUP_SIZE = 65_536
TRAIN_ROWS = 20_000
N_CLASSES = 3

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"

Log = Callable[[str], None]


@dataclass(frozen=True)
class ModelFiles:
    """One model saved twice: joblib pickle (sklearn type) and ONNX."""

    name: str
    pickle: Path
    onnx: Path


@dataclass(frozen=True)
class Fixtures:
    """Paths of everything a benchmark run needs."""

    rows: int
    data: Path
    rf: ModelFiles
    logreg: ModelFiles

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "data": str(self.data),
            "data_bytes": self.data.stat().st_size,
            "row_group_size": ROW_GROUP_SIZE,
            "features": len(FEATURES),
            "train_rows": TRAIN_ROWS,
            "fixture_version": FIXTURE_VERSION,
            "models": {
                m.name: {"pickle": str(m.pickle), "onnx": str(m.onnx)} for m in (self.rf, self.logreg)
            },
        }


def _quiet(_: str) -> None:
    pass


def feature_block(block: int, rows: int) -> npt.NDArray[np.float32]:
    """Features of row group ``block`` (``rows`` ≤ 65,536 of them), from its own generator."""
    rng = np.random.default_rng([SEED, block])
    return rng.standard_normal((rows, N_FEATURES), dtype=np.float32)


def _labels(x: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Three balanced classes from a non-linear score (so the forest uses its depth)."""
    score = (
        x[:, 0]
        + 0.8 * x[:, 1] * x[:, 2]
        + 0.5 * np.sin(2.0 * x[:, 3])
        + 0.4 * x[:, 4] ** 2
        - 0.3 * x[:, 5]
        + 0.2 * x[:, 6] * x[:, 7]
        + 0.5 * rng.standard_normal(len(x))
    )
    edges = np.quantile(score, [1 / 3, 2 / 3])
    return np.asarray(np.digitize(score, edges), dtype=np.int64)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def build_parquet(path: Path, rows: int) -> None:
    """Write the ``rows``-row feature file, one row group at a time (memory stays flat)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [pa.field(ID_COLUMN, pa.int64())] + [pa.field(name, pa.float32()) for name in FEATURES]
    )
    tmp = _tmp(path)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for block, start in enumerate(range(0, rows, ROW_GROUP_SIZE)):
                stop = min(start + ROW_GROUP_SIZE, rows)
                x = feature_block(block, stop - start)
                arrays = [pa.array(np.arange(start, stop, dtype=np.int64))]
                arrays += [pa.array(x[:, j]) for j in range(N_FEATURES)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=ROW_GROUP_SIZE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _to_onnx(model: Any, path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        options={id(model): {"zipmap": False}},
    )
    # The metadata `modelrouter convert` writes: feature names and class labels.
    for key, value in (
        ("feature_names", list(FEATURES)),
        ("class_labels", [str(c) for c in model.classes_]),
    ):
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value)
    tmp = _tmp(path)
    try:
        tmp.write_bytes(onx.SerializeToString())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def plain_onnx(models: ModelFiles) -> Path:
    """``models``' pickle converted by skl2onnx with its defaults and nothing added (built
    once, beside the pickle): ``<name>.plain.onnx``."""
    path = models.pickle.with_name(f"{models.name}.plain.onnx")
    if path.is_file():
        return path
    import joblib
    from skl2onnx import to_onnx

    model = joblib.load(models.pickle)
    sample = feature_block(0, 1)
    onx = to_onnx(model, sample)
    tmp = _tmp(path)
    try:
        tmp.write_bytes(onx.SerializeToString())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _dump(model: Any, path: Path) -> None:
    import joblib

    tmp = _tmp(path)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def build_models(folder: Path, log: Log = _quiet) -> tuple[ModelFiles, ModelFiles]:
    """Fit (or reuse) the forest and the logistic pipeline in ``folder``."""
    rf = ModelFiles("rf", folder / "rf.pkl", folder / "rf.onnx")
    logreg = ModelFiles("logreg", folder / "logreg.pkl", folder / "logreg.onnx")
    wanted = [rf.pickle, rf.onnx, logreg.pickle, logreg.onnx]
    if all(p.is_file() for p in wanted):
        return rf, logreg

    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng([SEED, 10**9])
    x = rng.standard_normal((TRAIN_ROWS, N_FEATURES), dtype=np.float32)
    y = _labels(x, rng)
    frame = pd.DataFrame(x, columns=list(FEATURES))

    # Fitted on every core (the trees do not depend on n_jobs given random_state), saved with
    # the default n_jobs=None: the baseline's predict is the single-threaded one a user gets.
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=-1)
    forest.fit(frame, y)
    forest.set_params(n_jobs=None)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    pipeline.fit(frame, y)
    log(f"fitted models on {TRAIN_ROWS:,} rows in {time.perf_counter() - started:.1f} s")

    _dump(forest, rf.pickle)
    _dump(pipeline, logreg.pickle)
    _to_onnx(forest, rf.onnx)
    _to_onnx(pipeline, logreg.onnx)
    return rf, logreg


def build_fixtures(rows: int, data_dir: Path = DEFAULT_DATA_DIR, log: Log = _quiet) -> Fixtures:
    """Build (or reuse) the ``rows``-row Parquet file and both models under ``data_dir``."""
    import sklearn

    if rows < 1:
        raise ValueError(f"rows must be ≥ 1, not {rows}")
    root = data_dir / f"v{FIXTURE_VERSION}"
    root.mkdir(parents=True, exist_ok=True)
    rf, logreg = build_models(root / f"models-v{MODEL_VERSION}-sklearn{sklearn.__version__}", log)
    data = root / f"features-{rows}.parquet"
    if not data.is_file():
        started = time.perf_counter()
        build_parquet(data, rows)
        size = data.stat().st_size / 2**20
        log(f"wrote {data} ({rows:,} rows, {size:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    return Fixtures(rows=rows, data=data, rf=rf, logreg=logreg)
