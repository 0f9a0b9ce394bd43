"""A row's ONNX answer never depends on the rows it is scored with.

With several intra-op threads, onnxruntime's tree ensembles sum the trees of a call of 2-50
rows in another order than those of one row or of more than 50: the probabilities differ in
their last bits and a tied row's label flips with the batch — a served request's answer
would depend on other clients' traffic, a file's last chunk on its length. OnnxModel pads
small calls into the large calls' path (``ROW_PARALLEL_FROM``); if onnxruntime changes its
thresholds, this test says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


def _forest(kind: str) -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if kind == "regressor":
        X, y = load_diabetes(return_X_y=True)
        model: Any = RandomForestRegressor(120, max_depth=6, random_state=0)
    else:
        X, y = (load_wine if kind == "multi-class" else load_breast_cancer)(return_X_y=True)
        model = RandomForestClassifier(120, max_depth=6, random_state=0)
    X = X.astype(np.float32)
    model.fit(X, y)
    rng = np.random.default_rng(0)
    jittered = np.concatenate([X * rng.uniform(0.8, 1.2, X.shape).astype(np.float32) for _ in range(2)])
    return model, jittered[:300]


# make test: the multi-class forest on 2 threads (the case that differed); the other kinds
# and one thread in make test-slow (tests/tiers.py).
@pytest.mark.parametrize(
    ("kind", "threads"),
    [
        pytest.param(
            kind,
            threads,
            id=f"{kind}-{threads}",
            marks=() if (kind, threads) == ("multi-class", 2) else pytest.mark.slow,
        )
        for kind in ("multi-class", "binary", "regressor")
        for threads in (2, 1)
    ],
)
def test_every_batch_size_gives_each_row_the_same_answer(tmp_path: Path, kind: str, threads: int) -> None:
    from modelrouter.backends.onnx_backend import ROW_PARALLEL_FROM, OnnxModel
    from skl2onnx import to_onnx

    model, X = _forest(kind)
    options = None if kind == "regressor" else {"zipmap": False}
    path = tmp_path / "forest.onnx"
    path.write_bytes(to_onnx(model, X[:1], options=options, target_opset=17).SerializeToString())
    onnx = OnnxModel.load(path, threads=threads)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    probabilities = kind != "regressor"
    whole = onnx.run(frame, probabilities=probabilities)
    for size in (1, 2, 7, ROW_PARALLEL_FROM - 1, ROW_PARALLEL_FROM, 128):
        for start in range(0, len(frame), size):
            part = onnx.run(frame.iloc[start : start + size], probabilities=probabilities)
            stop = start + len(frame.iloc[start : start + size])
            assert whole.labels is not None and part.labels is not None
            assert np.array_equal(part.labels, whole.labels[start:stop]), (size, start)
            if probabilities:
                assert whole.probabilities is not None and part.probabilities is not None
                assert np.array_equal(part.probabilities, whole.probabilities[start:stop]), (size, start)
