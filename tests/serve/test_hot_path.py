"""The scoring routes' short way in (router/serve/hot_path.py): the answers, errors and
metrics of FastAPI's way, and FastAPI's way for everything it does not take."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from fastapi import FastAPI
from modelrouter import ModelRouter
from modelrouter.serve import ServeConfig, create_app
from modelrouter.serve.hot_path import HotPath
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

# Starlette 1.x asks for its httpx fork in TestClient (imported in the tests, after this filter).
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

WINE = Path(__file__).parents[2] / "sample_data" / "wine.csv"


def _body(n: int) -> dict[str, Any]:
    frame = pd.read_csv(WINE).drop(columns=["id"]).head(n)
    return {"rows": frame.to_dict(orient="records")}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(ServeConfig(pool_size=1), router=ModelRouter())) as c:
        yield c


def _counted(client: TestClient, endpoint: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "modelrouter_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["endpoint"] == endpoint:
                    key = f"{sample.labels['status']} {sample.labels['model_type']}"
                    counts[key] = counts.get(key, 0) + sample.value
    return counts


def test_the_scoring_routes_take_the_short_way_and_are_counted(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[str] = []
    original = HotPath.__call__

    async def spy(self: HotPath, scope: Any, receive: Any, send: Any, mode: Any) -> None:
        taken.append(mode)
        await original(self, scope, receive, send, mode)

    monkeypatch.setattr(HotPath, "__call__", spy)
    before = _counted(client, "/predict_proba")
    ok = client.post("/predict_proba", json=_body(3))
    bad = client.post("/predict_proba?model_type=nosuch", json=_body(1))
    assert ok.status_code == 200 and len(ok.json()["probabilities"]) == 3
    assert bad.status_code == 404 and "nosuch" in bad.json()["error"]
    assert taken == ["proba", "proba"]
    after = _counted(client, "/predict_proba")
    assert after.get("200 sklearn", 0) == before.get("200 sklearn", 0) + 1
    assert after.get("404 ", 0) == before.get("404 ", 0) + 1


def test_the_short_way_answers_as_the_routes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same request through FastAPI's route (the short way switched off) gets the same answer."""
    requests = [
        ("/predict", _body(4), ""),
        ("/predict?model_type=sklearn&model_type=onnx", _body(2), ""),
        ("/predict", {"rows": [{"alcohol": "x"}]}, ""),
        ("/predict_proba?keep=id", _body(1), ""),
        ("/predict", None, "alcohol\n1\n"),
    ]

    def answers() -> list[tuple[int, Any]]:
        out = []
        for url, body, text in requests:
            answer = (
                client.post(url, json=body)
                if body is not None
                else client.post(url, content=text, headers={"content-type": "text/csv"})
            )
            out.append((answer.status_code, answer.json()))
        return out

    short = answers()
    monkeypatch.setattr(client.app, "hot", None)
    assert answers() == short
    assert [status for status, _ in short] == [200, 200, 422, 400, 422]


def test_other_methods_and_routes_take_fastapis_way(client: TestClient) -> None:
    assert client.get("/predict").status_code == 405
    assert client.get("/pool/stats").status_code == 200
    assert client.post("/predict/", json=_body(1)).status_code in (200, 307, 404)


def test_mounted_under_a_prefix_the_routes_still_answer() -> None:
    from fastapi.testclient import TestClient

    app = create_app(ServeConfig(pool_size=1), router=ModelRouter())

    # Starlette does not run a mounted app's lifespan: the outer app runs it as its own.
    def lifespan(_: FastAPI) -> Any:
        return app.router.lifespan_context(app)

    outer = FastAPI(lifespan=lifespan)
    outer.mount("/scoring", app)
    with TestClient(outer) as client:
        answer = client.post("/scoring/predict", json=_body(2))
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
        assert client.post("/scoring/predict?model_type=nosuch", json=_body(1)).status_code == 404
        assert client.post("/predict", json=_body(1)).status_code == 404
