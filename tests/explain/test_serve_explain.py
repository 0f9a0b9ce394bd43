"""``POST /explain``: the ``/predict`` bodies in, ``{"model_type", "space", "columns", "base",
"contributions"}`` out (plus ``explained_class`` for multi-class), one entry per row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelrouter import ModelRouter

from tests.explain.helpers import ROOT

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

WINE = pd.read_csv(ROOT / "sample_data" / "wine.csv")


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "serve.toml"
    models = ROOT / "models"
    config.write_text(
        f'default_model_type = "sklearn"\n[sklearn]\npath = "{models / "classifier.pkl"}"\npool_size = 1\n'
        f'[onnx]\npath = "{models / "classifier.onnx"}"\npool_size = 1\n'
    )
    return config


def test_explain_answers_per_row_contributions(tmp_path: Path) -> None:
    import joblib
    from fastapi.testclient import TestClient
    from modelrouter.serve import ServeConfig, create_app

    rows = WINE.drop(columns=["id"]).head(4)
    with TestClient(create_app(ServeConfig(config=_config(tmp_path)), router=ModelRouter())) as client:
        answer = client.post("/explain", json={"rows": rows.to_dict(orient="records")})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        csv = client.post("/explain", content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
        assert csv.status_code == 200 and csv.json() == body
        onnx = client.post("/explain?model_type=onnx", json={"rows": rows.to_dict(orient="records")})
        pool = client.get("/pool/stats").json()["pools"]["sklearn"]
    # Each explained request is a call through the pool: its rows are the pool's rows.
    assert (pool["borrows"], pool["chunks"], pool["rows"], pool["in_use"]) == (2, 2, 8, 0)
    assert set(body) == {"model_type", "space", "columns", "base", "contributions", "explained_class"}
    assert body["model_type"] == "sklearn" and body["space"] == "probability"
    assert body["columns"] == list(rows.columns)
    forest = joblib.load(ROOT / "models" / "classifier.pkl")
    assert body["explained_class"] == forest.predict(rows).tolist()
    proba = forest.predict_proba(rows)
    column = [list(forest.classes_).index(c) for c in body["explained_class"]]
    total = np.asarray(body["base"]) + np.asarray(body["contributions"]).sum(axis=1)
    np.testing.assert_allclose(total, proba[np.arange(4), column], rtol=1e-6)
    assert onnx.status_code == 422 and "ONNX" in onnx.json()["error"]


def test_keep_on_explain_is_refused_not_ignored(tmp_path: Path) -> None:
    """An /explain answer is JSON whatever the body, as a JSON body's /predict answer: a
    ``?keep=`` column could not be in it, so it is a 400 (it was silently dropped)."""
    from fastapi.testclient import TestClient
    from modelrouter.serve import ServeConfig, create_app

    body = WINE.head(3).to_csv(index=False)
    with TestClient(create_app(ServeConfig(config=_config(tmp_path)), router=ModelRouter())) as client:
        answer = client.post("/explain?keep=id", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "keep applies to the CSV and Parquet answers of /predict and /predict_proba; an "
        "/explain answer is JSON, one entry per row in request order"
    )
