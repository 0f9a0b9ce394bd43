"""``modelrouter serve --max-batch-rows N`` and the columnar JSON body, end to end.

A real server in a subprocess (the helpers of test_serve.py). Batching must never change an
answer: every request gets the model's output for its own rows, and its own error with a
row counted in its own body, whichever requests it shared a model call with.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.test_serve import (
    FEATURES,
    Server,
    json_body,
    onnx_oracle,
    sklearn_oracle,
    start_server,
    stats,
    wine_rows,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def batching(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shipped models, one instance per pool, so concurrent requests must share calls."""
    server = start_server(
        ["--pool-size", "1", "--max-batch-rows", "64", "--timeout", "60"],
        cwd=tmp_path_factory.mktemp("cwd"),
    )
    yield server
    assert server.stop() == 0


def _batch_samples(server: Server) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{server.url}/metrics").text
    return {
        (s.name, s.labels.get("model_type", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("modelrouter_http_batch_requests")
    }


def test_concurrent_requests_share_calls_and_each_gets_its_own_answer(batching: Server) -> None:
    """150 concurrent requests of 1-20 rows, both endpoints and types, some with a bad value."""
    chooser = random.Random(7)
    cases: list[tuple[str, str, int, int, int | None]] = []  # kind, endpoint, start, rows, bad row
    for _ in range(150):
        rows = chooser.randint(1, 20)
        bad = chooser.randrange(rows) if chooser.random() < 0.15 else None
        cases.append(
            (
                chooser.choice(["sklearn", "onnx"]),
                chooser.choice(["/predict", "/predict_proba"]),
                chooser.randrange(178 - rows),
                rows,
                bad,
            )
        )
    before_pools = stats(batching)["pools"]
    before = _batch_samples(batching)

    def body(start: int, rows: int, bad: int | None) -> dict[str, Any]:
        payload = json_body(wine_rows(rows, start).drop(columns=["id"]))
        if bad is not None:
            payload["rows"][bad]["ash"] = "n/a"
        return payload

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=150), timeout=120) as client:
            return await asyncio.gather(
                *(
                    client.post(f"{batching.url}{path}", params={"model_type": kind}, json=body(s, n, b))
                    for kind, path, s, n, b in cases
                )
            )

    answers = asyncio.run(fire())
    for (kind, path, start, rows, bad), answer in zip(cases, answers, strict=True):
        if bad is not None:
            assert answer.status_code == 422, answer.text
            assert (answer.json()["column"], answer.json()["row"]) == ("ash", bad)
            assert f"rows[{bad}]" in answer.json()["error"]
            continue
        assert answer.status_code == 200, answer.text
        frame = wine_rows(rows, start)
        labels, proba = (sklearn_oracle if kind == "sklearn" else onnx_oracle)(frame)
        if path == "/predict":
            assert answer.json()["predictions"] == labels.tolist()
        else:
            got = answer.json()["probabilities"]
            assert len(got) == rows
            if kind == "sklearn":
                assert got == proba.tolist()
            else:
                # float32, written in its shortest form; the pool's session uses every core
                # (the oracle one), which moves the last bits of a forest's sum over trees.
                np.testing.assert_allclose(np.asarray(got), proba, rtol=0, atol=1e-6)
    after_pools = stats(batching)["pools"]
    after = _batch_samples(batching)
    for kind in ("sklearn", "onnx"):
        borrows = after_pools[kind]["borrows"] - before_pools[kind]["borrows"]
        calls = after[("modelrouter_http_batch_requests_count", kind)] - before.get(
            ("modelrouter_http_batch_requests_count", kind), 0
        )
        served = after[("modelrouter_http_batch_requests_sum", kind)] - before.get(
            ("modelrouter_http_batch_requests_sum", kind), 0
        )
        assert borrows == calls  # one borrow per model call
        # ``errors`` counts model failures: a request's bad value (422) is the client's, counted
        # by status in /metrics, so the batches that held one are not pool errors.
        failed = after_pools[kind]["errors"] - before_pools[kind]["errors"]
        assert failed == 0
        assert served == sum(1 for c in cases if c[0] == kind)  # every request was in one batch
        assert after_pools[kind]["in_use"] == 0
    total_calls = sum(
        after[("modelrouter_http_batch_requests_count", k)]
        - before.get(("modelrouter_http_batch_requests_count", k), 0)
        for k in ("sklearn", "onnx")
    )
    assert total_calls < len(cases)  # concurrent requests did share model calls


def test_a_lone_request_is_not_delayed_and_mixed_schemas_do_not_mix(batching: Server) -> None:
    frame = wine_rows(3).drop(columns=["id"])
    as_floats = json_body(frame)
    as_ints = json_body(frame)
    for row in as_ints["rows"]:
        row["magnesium"] = int(row["magnesium"])  # int64 column: another Arrow schema
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(httpx.post, f"{batching.url}/predict", json=b, timeout=60)
            for b in [as_floats, as_ints] * 4
        ]
        answers = [f.result() for f in futures]
    expected = sklearn_oracle(wine_rows(3))[0].tolist()
    assert all(a.status_code == 200 and a.json()["predictions"] == expected for a in answers)


# -- the columnar JSON body ---------------------------------------------------------------------


def _columns(frame: Any) -> dict[str, Any]:
    return {"columns": {name: frame[name].tolist() for name in frame.columns}}


@pytest.mark.parametrize("kind", ["sklearn", "onnx"])
def test_columnar_body_answers_like_rows(batching: Server, kind: str) -> None:
    frame = wine_rows(30, start=100)
    labels, _ = (sklearn_oracle if kind == "sklearn" else onnx_oracle)(frame)
    answer = httpx.post(f"{batching.url}/predict", params={"model_type": kind}, json=_columns(frame))
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == labels.tolist()
    rows = httpx.post(f"{batching.url}/predict_proba", params={"model_type": kind}, json=json_body(frame))
    cols = httpx.post(f"{batching.url}/predict_proba", params={"model_type": kind}, json=_columns(frame))
    assert rows.json() == cols.json()
    empty = httpx.post(f"{batching.url}/predict", json={"columns": {name: [] for name in FEATURES}})
    assert empty.json() == {"model_type": "sklearn", "predictions": []}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"columns": [1]}, 400, ["'columns' must be an object"]),
        ({"columns": {"alcohol": 3}}, 400, ["columns['alcohol'] must be a list"]),
        ({"columns": {"alcohol": [1, 2], "ash": [1]}}, 400, ["columns['ash'] has 1 values", "2"]),
        ({"columns": {}, "rows": []}, 400, ["not both"]),
        ({"columns": {"alcohol": [1.0]}}, 422, ["missing feature columns 'malic_acid'", "12 missing"]),
    ],
    ids=["not-object", "not-list", "ragged", "both", "missing-column"],
)
def test_columnar_body_errors(batching: Server, body: dict[str, Any], status: int, words: list[str]) -> None:
    answer = httpx.post(f"{batching.url}/predict", content=json.dumps(body).encode(), headers=JSON)
    assert answer.status_code == status, answer.text
    for word in words:
        assert word in answer.json()["error"]


def test_bad_value_in_columnar_body_names_its_row(batching: Server) -> None:
    frame = wine_rows(5).drop(columns=["id"])
    body = _columns(frame)
    body["columns"]["hue"][3] = "n/a"
    answer = httpx.post(f"{batching.url}/predict", json=body)
    assert answer.status_code == 422
    assert (answer.json()["column"], answer.json()["row"]) == ("hue", 3)


def test_columnar_row_limit_is_checked_before_conversion() -> None:
    from modelrouter.backends import InputSchema
    from modelrouter.serve.bodies import json_table
    from modelrouter.serve.problems import Problem

    body = json.dumps({"columns": {"a": [1] * 4, "b": ["x"] * 4}}).encode()
    with pytest.raises(Problem) as raised:
        json_table(body, 3, InputSchema(names=None, dtypes=(), width=0))
    assert raised.value.status == 413 and "4 rows" in str(raised.value)
    table = json_table(body, 4, InputSchema(names=None, dtypes=(), width=0))
    assert table is not None and table.column_names == ["a", "b"] and table.num_rows == 4


# -- the fast column conversion is the checked one ----------------------------------------------

_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_SCALAR, max_size=8) | st.lists(st.floats(allow_nan=False) | st.none(), max_size=8))
def test_fast_column_conversion_equals_the_checked_one(values: list[Any]) -> None:
    from modelrouter.serve.bodies import _checked_column, _column

    fast, checked = _column("c", list(values)), _checked_column("c", list(values))
    assert fast.type == checked.type
    assert fast.equals(checked) or (
        pa.types.is_floating(fast.type) and fast.to_pylist() == checked.to_pylist()
    )


# -- the dispatchers, in-process ----------------------------------------------------------------


@pytest.fixture
def shipped_router() -> Iterator[Any]:
    from modelrouter import ModelRouter
    from modelrouter.serve.asgi import ServeConfig, load_pools

    loaded = load_pools(ServeConfig(pool_size=1))
    router = ModelRouter()
    for kind, pool in loaded.pools.items():
        router.register(kind, pool)
    yield router
    router.close()


def test_a_fault_in_a_batch_answers_its_requests_and_the_dispatcher_goes_on(shipped_router: Any) -> None:
    """An error of ours while scoring a batch (not the model's, not the request's) must not
    leave its requests waiting, nor cost the pool its dispatcher."""
    from modelrouter import ModelType
    from modelrouter.serve.batching import Batcher

    table = pa.Table.from_pandas(wine_rows(3).drop(columns=["id"]), preserve_index=False)
    calls: list[int] = []

    def faulty_once(waits: list[float]) -> None:
        calls.append(len(waits))
        if len(calls) == 1:
            raise RuntimeError("a fault of the service")

    async def run() -> tuple[BaseException | None, Any]:
        with ThreadPoolExecutor(1) as threads:
            batcher = Batcher(
                shipped_router,
                ModelType.SKLEARN,
                instances=1,
                max_rows=64,
                executor=threads,
                on_batch=faulty_once,
            )
            batcher.start()
            try:
                try:
                    await asyncio.wait_for(
                        batcher.infer(table, probabilities=False, exclude=(), timeout=5), 10
                    )
                    first: BaseException | None = None
                except RuntimeError as exc:
                    first = exc
                second = await asyncio.wait_for(
                    batcher.infer(table, probabilities=False, exclude=(), timeout=5), 10
                )
            finally:
                await batcher.stop()
            return first, second

    first, second = asyncio.run(run())
    assert isinstance(first, RuntimeError) and "batch was not scored" in str(first)
    assert second.labels.tolist() == sklearn_oracle(wine_rows(3))[0].tolist()
    stats = shipped_router.stats()[ModelType.SKLEARN]
    assert (stats.in_use, stats.borrows, stats.errors) == (0, 2, 1)


def test_a_pool_gone_while_requests_wait_is_a_503_not_a_500(shipped_router: Any) -> None:
    from modelrouter import ModelType, PoolTimeoutError
    from modelrouter.serve.batching import Batcher

    table = pa.Table.from_pandas(wine_rows(1).drop(columns=["id"]), preserve_index=False)

    async def run() -> BaseException:
        with ThreadPoolExecutor(1) as threads:
            batcher = Batcher(shipped_router, ModelType.SKLEARN, instances=1, max_rows=64, executor=threads)
            # No dispatcher runs: the request waits, and the pool goes away meanwhile.
            waiting = asyncio.ensure_future(
                batcher.infer(table, probabilities=False, exclude=(), timeout=0.2)
            )
            await asyncio.sleep(0.05)
            shipped_router.unregister(ModelType.SKLEARN)
            try:
                await waiting
            except PoolTimeoutError as exc:
                return exc
            raise AssertionError("no 503")

    error = asyncio.run(run())
    assert "no sklearn model instance became free within 0.2 s: the pool is gone" in str(error)


def test_a_failed_batch_is_halved_until_each_bad_request_is_alone() -> None:
    """8 requests, the 6th with a bad value: 7 calls (not 9), every answer its own."""
    from modelrouter import ConversionError
    from modelrouter.backends import Prediction
    from modelrouter.serve.batching import _Request, _score

    class Doubling:
        """Stands in for a borrowed model: doubles x, refuses a negative x (naming its row)."""

        calls = 0

        def run(
            self, table: pa.Table, *, labels: bool, probabilities: bool, exclude: tuple[str, ...]
        ) -> Prediction:
            self.calls += 1
            values = table.column("x").to_numpy()
            bad = np.flatnonzero(values < 0)
            if bad.size:
                raise ConversionError("column 'x': negative", column="x", row=int(bad[0]))
            return Prediction(labels=values * 2, probabilities=None)

    loop = asyncio.new_event_loop()
    try:
        batch = [
            _Request(
                pa.table({"x": [float(i), -1.0 if i == 5 else 10.0 + i]}), False, (), loop.create_future()
            )
            for i in range(8)
        ]
    finally:
        loop.close()
    model = Doubling()
    outcomes = _score(model, batch)  # type: ignore[arg-type]
    assert model.calls == 7
    for i, outcome in enumerate(outcomes):
        if i == 5:
            assert isinstance(outcome, ConversionError) and outcome.row == 1
        else:
            assert isinstance(outcome, Prediction)
            assert outcome.labels is not None and outcome.labels.tolist() == [2.0 * i, 2 * (10.0 + i)]
