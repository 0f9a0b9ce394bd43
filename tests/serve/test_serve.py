"""``modelrouter serve`` end to end: the real command in a subprocess, spoken to over HTTP.

One server on the shipped models (the built-in config, as a user starts it) answers the
oracle, error and load tests; servers with a slow model show the 503 and the graceful stop.
The app factory is also exercised in-process (``TestClient``) where a subprocess adds
nothing: a regressor's ``predict_proba`` and a property test that no body gives a 500.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SHIPPED = ROOT / "models"
WINE_CSV = ROOT / "sample_data" / "wine.csv"
FEATURES = [c for c in pd.read_csv(WINE_CSV, nrows=0).columns if c != "id"]
LISTENING = re.compile(r"listening on (http://\S+)")


# -- a server in a subprocess ----------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        if self.drain is not None:
            self.drain.join(timeout)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return code


def start_server(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Server:
    """Start ``modelrouter serve --port 0 ARGS`` and wait for its 'listening on' line (stdout)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    environment.update(env or {})
    process = subprocess.Popen(
        [str(MODELROUTER), "serve", "--port", "0", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    server = Server(process, "")

    def drain() -> None:  # keep reading, so the server never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            server.stderr.append(line)

    server.drain = threading.Thread(target=drain, daemon=True)
    server.drain.start()
    line = process.stdout.readline()  # the first line, once the pools are loaded
    found = LISTENING.search(line)
    if found is None:
        process.kill()
        process.wait()
        server.drain.join(10)
        process.stdout.close()
        process.stderr.close()
        raise AssertionError(f"server did not start: {line}{''.join(server.stderr)}")
    server.url = found.group(1)
    return server


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shipped models with the built-in config, two instances per pool."""
    server = start_server(
        ["--pool-size", "2", "--max-rows", "500", "--max-body-bytes", "300000"],
        cwd=tmp_path_factory.mktemp("cwd"),
    )
    yield server
    assert server.stop() == 0


def wine_rows(n: int, start: int = 0) -> pd.DataFrame:
    frame = pd.read_csv(WINE_CSV)
    return frame.iloc[start : start + n].reset_index(drop=True)


def json_body(frame: pd.DataFrame) -> dict[str, Any]:
    return {"rows": json.loads(frame.to_json(orient="records"))}


def wait_in_flight(server: Server, requests: int, timeout: float = 30) -> None:
    """Wait until ``requests`` requests are inside the app (the scrape itself is one more).

    Before that, a request may still be a connection uvicorn has not read from; a stop
    signal closes such idle connections, which is not "a request in flight"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text):
            if family.name == "modelrouter_http_requests_in_flight" and family.samples[0].value > requests:
                return
        time.sleep(0.02)
    raise AssertionError(f"{requests} requests did not reach the app within {timeout} s")


def stats(server: Server) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/pool/stats")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()
    return result


# -- oracle: the answers are the models' own --------------------------------------------------


def onnx_oracle(frame: pd.DataFrame | pa.Table) -> tuple[np.ndarray, np.ndarray]:
    # One intra-op thread, like each instance of the server's 2-instance pool: a forest's sum
    # over trees is split differently across threads, which moves the last float32 bits.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(SHIPPED / "classifier.onnx"), options, providers=["CPUExecutionProvider"]
    )
    names = json.loads(session.get_modelmeta().custom_metadata_map["feature_names"])
    if isinstance(frame, pa.Table):
        matrix = np.column_stack([frame.column(n).to_numpy() for n in names])
    else:
        matrix = frame[names].to_numpy(dtype=np.float32)
    labels, proba = session.run(None, {session.get_inputs()[0].name: matrix})
    return np.asarray(labels), np.asarray(proba, dtype=np.float64)


def sklearn_oracle(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    model = joblib.load(SHIPPED / "classifier.pkl")
    features = frame[list(model.feature_names_in_)]
    return np.asarray(model.predict(features)), np.asarray(model.predict_proba(features))


# 40 rows (12 KiB) are read with orjson, 120 rows (36 KiB) by Arrow's JSON reader.
@pytest.mark.parametrize("rows", [40, 120])
@pytest.mark.parametrize("kind", ["sklearn", "onnx"])
def test_json_answers_equal_the_model_called_directly(shipped: Server, kind: str, rows: int) -> None:
    frame = wine_rows(rows, start=50)
    labels, proba = (sklearn_oracle if kind == "sklearn" else onnx_oracle)(frame)
    body = json_body(frame.drop(columns=["id"]))
    predicted = httpx.post(f"{shipped.url}/predict", params={"model_type": kind}, json=body)
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["model_type"] == kind
    assert predicted.json()["predictions"] == labels.tolist()
    probabilities = httpx.post(f"{shipped.url}/predict_proba", params={"model_type": kind}, json=body)
    assert probabilities.status_code == 200, probabilities.text
    answer = probabilities.json()
    assert answer["classes"] == ["class_0", "class_1", "class_2"]
    # The model's own float type, written in its shortest form (float32 for ONNX: 0.83999974).
    dtype = np.float64 if kind == "sklearn" else np.float32
    np.testing.assert_array_equal(np.asarray(answer["probabilities"], dtype=dtype), proba.astype(dtype))


def test_default_type_is_the_configs(shipped: Server) -> None:
    answer = httpx.post(f"{shipped.url}/predict", json=json_body(wine_rows(3)))
    assert answer.json()["model_type"] == "sklearn"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bulk_bodies_are_answered_in_their_format(shipped: Server, fmt: str) -> None:
    frame = wine_rows(178)
    if fmt == "csv":
        # CSV text is parsed straight to the model's float32 (as the batch CLI does), which may
        # differ by one ulp from parsing to float64 first: the oracle reads it the same way.
        labels, proba = onnx_oracle(
            pacsv.read_csv(
                WINE_CSV,
                convert_options=pacsv.ConvertOptions(column_types={name: pa.float32() for name in FEATURES}),
            )
        )
    else:
        labels, proba = onnx_oracle(frame)
    if fmt == "csv":
        body, media = WINE_CSV.read_bytes(), "text/csv"
    else:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        body, media = sink.getvalue(), "application/vnd.apache.parquet"
    answer = httpx.post(
        f"{shipped.url}/predict_proba",
        params={"model_type": "onnx", "keep": "id"},
        content=body,
        headers={"Content-Type": media},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(media)
    if fmt == "csv":
        table = pd.read_csv(io.BytesIO(answer.content))
    else:
        table = pq.read_table(io.BytesIO(answer.content)).to_pandas()
    assert list(table.columns) == ["id", "proba_class_0", "proba_class_1", "proba_class_2"]
    assert table["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(table.iloc[:, 1:].to_numpy(), proba)
    labelled = httpx.post(
        f"{shipped.url}/predict",
        params={"model_type": "onnx"},
        content=body,
        headers={"Content-Type": media},
    )
    assert labelled.status_code == 200, labelled.text
    read = pd.read_csv if fmt == "csv" else (lambda b: pq.read_table(b).to_pandas())
    assert read(io.BytesIO(labelled.content))["prediction"].tolist() == labels.tolist()


# -- every error status ----------------------------------------------------------------------


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = json_body(wine_rows(1))["rows"][0]
    row.pop("id")
    row.update(changes)
    return row


def _rows(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"rows": list(rows)}).encode()


def _without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != key}


JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


def _parquet(rows: int) -> bytes:
    sink = io.BytesIO()
    frame = pd.concat([wine_rows(178)] * (rows // 178 + 1), ignore_index=True).head(rows)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


# (id, path, headers, body, status, words the error must contain, column, row)
ERROR_CASES: list[tuple[str, str, dict[str, str], bytes, int, list[str], str | None, int | None]] = [
    ("bad-json", "/predict", JSON, b'{"rows": [', 400, ["malformed JSON"], None, None),
    ("not-an-object", "/predict", JSON, b"[1, 2]", 400, ["must be an object"], None, None),
    ("rows-not-list", "/predict", JSON, b'{"rows": 3}', 400, ["'rows' must be a list"], None, None),
    ("row-not-object", "/predict", JSON, b'{"rows": [[1, 2]]}', 400, ["rows[0]", "object"], None, None),
    ("unknown-key", "/predict", JSON, b'{"row": []}', 400, ["unknown key 'row'"], None, None),
    (
        "deep-nesting",
        "/predict",
        JSON,
        b'{"rows": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        400,
        ["nested too deeply"],
        None,
        None,
    ),
    (
        "huge-integer",
        "/predict",
        JSON,
        b'{"rows": [{"alcohol": 1' + b"0" * 5000 + b"}]}",
        400,
        ["malformed JSON"],
        None,
        None,
    ),
    ("bad-csv", "/predict", CSV, b"alcohol,ash\n1,2,3\n", 400, ["malformed CSV"], None, None),
    (
        "duplicate-csv-column",
        "/predict",
        CSV,
        b"alcohol,alcohol\n1,2\n",
        400,
        ["duplicate column"],
        None,
        None,
    ),
    ("bad-parquet", "/predict", PARQUET, b"PAR1 this is not parquet", 400, ["malformed Parquet"], None, None),
    (
        "unknown-type",
        "/predict?model_type=bogus",
        JSON,
        _rows(_row()),
        404,
        ["no pool for model type 'bogus'", "sklearn, onnx, skops"],
        None,
        None,
    ),
    ("unknown-path", "/score", JSON, b"{}", 404, ["Not Found"], None, None),
    ("too-many-rows-json", "/predict", JSON, _rows(*[_row()] * 501), 413, ["501 rows", "500"], None, None),
    ("too-many-rows-parquet", "/predict", PARQUET, _parquet(501), 413, ["501 rows"], None, None),
    ("body-too-large", "/predict", CSV, b"x\n" + b"1\n" * 200_000, 413, ["--max-body-bytes"], None, None),
    ("media-type", "/predict", {"Content-Type": "text/plain"}, b"hello", 415, ["text/plain"], None, None),
    # A body without a type is not guessed to be JSON.
    (
        "no-content-type",
        "/predict",
        {},
        _rows(_row()),
        415,
        ["no Content-Type", "application/json"],
        None,
        None,
    ),
    (
        "duplicate-key-in-a-row",  # a JSON object with a key twice is malformed, not "the last wins"
        "/predict",
        JSON,
        _rows(_row(), _row()).replace(b'{"alcohol"', b'{"alcohol": 99.0, "alcohol"', 2),
        400,
        ["malformed JSON", "'alcohol' appears twice"],
        None,
        None,
    ),
    (
        "duplicate-key-top-level",
        "/predict",
        JSON,
        b'{"rows": [], "rows": ' + _rows(_row())[len(b'{"rows": ') :],
        400,
        ["'rows' appears twice"],
        None,
        None,
    ),
    (
        "duplicate-key-in-columns",
        "/predict",
        JSON,
        json.dumps({"columns": {c: [v] for c, v in _row().items()}})
        .encode()
        .replace(b'{"alcohol"', b'{"hue": [1.0], "alcohol"', 1),
        400,
        ["'hue' appears twice"],
        None,
        None,
    ),
    (
        "missing-column",
        "/predict",
        JSON,
        _rows(_without(_row(), "proline")),
        422,
        ["missing feature column 'proline'"],
        "proline",
        None,
    ),
    (
        "bad-value",
        "/predict",
        JSON,
        _rows(_row(), _row(), _row(), _row(ash="n/a")),
        422,
        ["rows[3]", "'ash'", "n/a"],
        "ash",
        3,
    ),
    (
        "list-value",
        "/predict_proba",
        JSON,
        _rows(_row(), _row(hue=[1, 2])),
        422,
        ["rows[1]", "'hue'", "a list"],
        "hue",
        1,
    ),
    (
        "key-missing-in-one-row",
        "/predict",
        JSON,
        _rows(_row(), _row(), _without(_row(), "hue")),
        422,
        ["rows[2]", "'hue'", "missing"],
        "hue",
        2,
    ),
    ("infinity", "/predict", JSON, _rows(_row(), _row(proline=1e999)), 422, ["proline"], "proline", None),
    (
        "lone-surrogate",  # JSON can spell one (\ud800); it is not text
        "/predict",
        JSON,
        _rows(_row(), _row(alcohol="\ud800")),
        422,
        ["rows[1]", "'alcohol'", "lone surrogate"],
        "alcohol",
        1,
    ),
    # Large bodies (≥ 16 KiB) are read by Arrow first: whatever it would read differently is
    # handed back, and the error is the same as for a small body.
    *[
        (f"large-body-{case}", "/predict", JSON, body, status, words, column, row)
        for case, body, status, words, column, row in [
            (
                "key-missing-in-one-row",
                _rows(*[_row()] * 70, _without(_row(), "hue"), *[_row()] * 29),
                422,
                ["rows[70]", "'hue'", "missing"],
                "hue",
                70,
            ),
            (
                "key-missing-after-a-null",  # a written null is a value, a missing key is not
                _rows(*[_row()] * 70, _row(hue=None), _without(_row(), "hue"), *[_row()] * 28),
                422,
                ["rows[71]", "'hue'", "missing"],
                "hue",
                71,
            ),
            (
                "bad-value",
                _rows(*[_row()] * 70, _row(ash="n/a"), *[_row()] * 29),
                422,
                ["rows[70]", "n/a"],
                "ash",
                70,
            ),
            (
                "list-value",
                _rows(*[_row()] * 70, _row(hue=[1, 2]), *[_row()] * 29),
                422,
                ["rows[70]", "a list"],
                "hue",
                70,
            ),
            (
                "lone-surrogate",
                _rows(*[_row()] * 70, _row(alcohol="\ud800"), *[_row()] * 29),
                422,
                ["rows[70]", "lone surrogate"],
                "alcohol",
                70,
            ),
            (
                "row-not-object",
                json.dumps({"rows": [_row()] * 70 + [None] + [_row()] * 29}).encode(),
                400,
                ["rows[70] must be an object"],
                None,
                None,
            ),
            (
                "duplicate-key",
                _rows(*[_row()] * 100).replace(b'{"alcohol"', b'{"alcohol": 99.0, "alcohol"', 71),
                400,
                ["'alcohol' appears twice"],
                None,
                None,
            ),
        ]
    ],
    (
        "columnar-bad-value",  # a columnar body's error points into its columns, not rows[i]
        "/predict",
        JSON,
        json.dumps({"columns": {**{c: [v, v] for c, v in _row().items()}, "ash": [1.0, "n/a"]}}).encode(),
        422,
        ["columns['ash'][1]: ", "n/a"],
        "ash",
        1,
    ),
    (
        "columnar-list-value",
        "/predict_proba?model_type=onnx",
        JSON,
        json.dumps({"columns": {**{c: [v, v, v] for c, v in _row().items()}, "hue": [1, 2, [3]]}}).encode(),
        422,
        ["columns['hue'][2]: ", "a list"],
        "hue",
        2,
    ),
    (
        "bad-csv-value",
        "/predict?model_type=onnx",
        CSV,
        WINE_CSV.read_bytes().replace(b"\n2,13.2,", b"\n2,oops,", 1),
        422,
        ["row 1", "'alcohol'", "oops"],
        "alcohol",
        1,
    ),
]


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "words", "column", "row"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_errors_have_their_status_and_name_the_problem(
    shipped: Server,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    words: list[str],
    column: str | None,
    row: int | None,
) -> None:
    answer = httpx.post(f"{shipped.url}{path}", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert "\n" not in payload["error"]
    if b'"columns"' in body[:20]:
        assert "rows[" not in payload["error"]
    for word in words:
        assert word in payload["error"]
    assert payload.get("column") == column
    if row is not None:
        assert payload["row"] == row


def test_csv_bodies_convert_only_the_columns_used_and_answer_like_output_files(shipped: Server) -> None:
    wine = wine_rows(5)
    frame = wine.assign(note=["ok", "a,b", 'say "hi"', "y", "x"], other=["", "", "", "plain", ""])
    plain = frame.to_csv(index=False).encode()
    # Latin-1 bytes (not UTF-8) in a column no model uses: predict reads the file, so must serve.
    latin = plain.replace(b"plain", "caf\u00e9".encode("latin-1"))
    # A header column without a name (Excel's trailing empty column): named 'Unnamed: <i>'.
    nameless = b"\n".join(line + b"," for line in plain.splitlines()) + b"\n"
    expected = None
    for body in (plain, latin, nameless):
        answer = httpx.post(f"{shipped.url}/predict?keep=id&keep=note", content=body, headers=CSV)
        assert answer.status_code == 200, answer.text
        expected = expected or answer.text
        assert answer.text == expected
    assert expected is not None
    lines = expected.splitlines()
    assert lines[0] == "id,note,prediction"  # quoted only where CSV needs it
    assert lines[1].startswith("1,ok,") and lines[2].startswith('2,"a,b",')
    assert lines[3].startswith('3,"say ""hi""",')
    # A kept nameless column keeps its position's name.
    kept = httpx.post(f"{shipped.url}/predict?keep=Unnamed: 16", content=nameless, headers=CSV)
    assert kept.status_code == 200, kept.text
    assert kept.text.splitlines()[0] == "Unnamed: 16,prediction"


def test_docs_page_loads_nothing_from_another_host(shipped: Server) -> None:
    page = httpx.get(f"{shipped.url}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    links = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert links and not [link for link in links if "//" in link]  # no CDN, no other host
    for link in links:
        asset = httpx.get(f"{shipped.url}{link}")
        assert asset.status_code == 200, link
        assert len(asset.content) > 100
    assert httpx.get(f"{shipped.url}/redoc").status_code == 404  # ReDoc has no offline assets


def test_keep_on_a_json_body_is_refused(shipped: Server) -> None:
    answer = httpx.post(f"{shipped.url}/predict?keep=id", json=json_body(wine_rows(2)))
    assert answer.status_code == 400
    assert "keep applies to CSV and Parquet bodies" in answer.json()["error"]


def test_colons_inside_strings_are_not_taken_for_repeated_keys(shipped: Server) -> None:
    body = {"rows": [{**_row(), "note": "at 12:30: checked"}, {**_row(), "t:ime": "a:b:c"}]}
    answer = httpx.post(f"{shipped.url}/predict", json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2


def test_a_client_leaving_mid_body_is_not_a_server_error(shipped: Server) -> None:
    parts = urlsplit(shipped.url)
    assert parts.hostname is not None and parts.port is not None
    before = _requests_by_status(shipped)
    body = _rows(*[_row()] * 20)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    clients = [socket.create_connection((parts.hostname, parts.port), timeout=10) for _ in range(3)]
    try:
        for sock in clients:
            sock.sendall(head.encode() + body[: len(body) // 2])
        wait_in_flight(shipped, 3)  # the app is reading each body (it has the head) ...
    finally:
        for sock in clients:
            sock.close()  # ... when its client goes
    deadline = time.monotonic() + 10
    while _requests_by_status(shipped).get("499", 0) < before.get("499", 0) + 3:
        assert time.monotonic() < deadline, _requests_by_status(shipped)
        time.sleep(0.05)
    after = _requests_by_status(shipped)
    assert after.get("500", 0) == before.get("500", 0)
    log = "".join(shipped.stderr)
    assert "internal error" not in log and "Traceback" not in log


def _requests_by_status(server: Server) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text):
        if family.name == "modelrouter_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["endpoint"] == "/predict":
                    status = sample.labels["status"]
                    counts[status] = counts.get(status, 0) + sample.value
    return counts


def test_a_model_failing_on_valid_input_is_a_500(tmp_path: Path) -> None:
    """The values converted and passed the model's checks; its own code raised (ValueError):
    a fault of the served model (500, exit 4 in predict), not of the client (422, exit 3)."""
    from tests.slow_estimators import FaultyForest

    frame = wine_rows(178)
    model = FaultyForest(n_estimators=3, max_depth=2, random_state=0).fit(frame[FEATURES], frame["id"] % 3)
    joblib.dump(model, tmp_path / "faulty.pkl")
    config = tmp_path / "modelrouter.toml"
    config.write_text('enable_onnx = false\n[sklearn]\npath = "faulty.pkl"\npool_size = 1\n')
    env = {"PYTHONPATH": str(ROOT)}
    server = start_server(["-c", str(config)], cwd=tmp_path, env=env)
    try:
        for path in ("/predict", "/predict_proba"):
            answer = httpx.post(f"{server.url}{path}", json=json_body(wine_rows(2)), timeout=30)
            assert answer.status_code == 500, answer.text
            error = answer.json()["error"]
            assert "the model failed while predicting" in error and "thresholds is inconsistent" in error
        # A value that does not convert stays the client's fault.
        bad = httpx.post(f"{server.url}/predict", json={"rows": [_row(ash="n/a")]}, timeout=30)
        assert bad.status_code == 422, bad.text
    finally:
        assert server.stop() == 0
    wine = tmp_path / "wine.csv"
    shutil.copy(WINE_CSV, wine)
    done = subprocess.run(
        [str(MODELROUTER), "predict", str(wine), "-c", str(config), "-o", str(tmp_path / "out.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert done.returncode == 4, done.stderr
    assert "the model failed while predicting" in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_wrong_method_is_a_json_error(shipped: Server) -> None:
    answer = httpx.get(f"{shipped.url}/predict")
    assert answer.status_code == 405
    assert answer.json() == {"error": "Method Not Allowed"}


# -- concurrency: 200 parallel requests on pools of 2 ----------------------------------------


def test_200_parallel_requests_add_up(shipped: Server) -> None:
    before = stats(shipped)["pools"]
    frame = wine_rows(5)
    expected = sklearn_oracle(frame)[0].tolist()
    body = json_body(frame)

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(client.post(f"{shipped.url}/predict", json=body) for _ in range(200))
            )

    answers = asyncio.run(fire())
    assert [a.status_code for a in answers] == [200] * 200
    assert all(a.json()["predictions"] == expected for a in answers)
    after = stats(shipped)["pools"]["sklearn"]
    # Adaptive batching (on by default) scores waiting requests together: one borrow per
    # model call, so between 1 and 200 of them; every row is counted once.
    assert 1 <= after["borrows"] - before["sklearn"]["borrows"] <= 200
    assert after["rows"] - before["sklearn"]["rows"] == 1000
    assert after["errors"] == before["sklearn"]["errors"]
    assert (after["in_use"], after["available"], after["size"]) == (0, 2, 2)


@pytest.mark.matrix
@pytest.mark.parametrize("folder", ["missing", "existing"])
def test_another_programs_prometheus_multiproc_dir_is_ignored(tmp_path: Path, folder: str) -> None:
    """Set for another program (a container's gunicorn set-up), it made serve fail with an
    internal error (folder missing) or write its metrics into that program's folder."""
    shared = tmp_path / "prometheus"
    if folder == "existing":
        shared.mkdir()
    server = start_server(
        ["-m", str(SHIPPED / "classifier.onnx")], cwd=tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    )
    try:
        assert httpx.post(f"{server.url}/predict", json=json_body(wine_rows(2))).status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
        assert (
            'modelrouter_http_requests_total{endpoint="/predict",model_type="onnx",status="200"} 1.0' in text
        )
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.wait()
    assert not shared.exists() if folder == "missing" else not list(shared.iterdir())


def test_metrics_count_requests_and_show_the_pools(shipped: Server) -> None:
    httpx.post(f"{shipped.url}/predict", params={"model_type": "onnx"}, json=json_body(wine_rows(2)))
    httpx.post(f"{shipped.url}/predict", params={"model_type": "nope"}, json={"rows": []})
    text = httpx.get(f"{shipped.url}/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = ("endpoint", "/predict"), ("model_type", "onnx"), ("status", "200")
    assert samples[("modelrouter_http_requests_total", ok)] >= 1
    missing = ("endpoint", "/predict"), ("model_type", ""), ("status", "404")
    assert samples[("modelrouter_http_requests_total", missing)] >= 1
    assert (
        samples[
            (
                "modelrouter_http_request_duration_seconds_count",
                (("endpoint", "/predict"), ("model_type", "onnx")),
            )
        ]
        >= 1
    )
    pool = stats(shipped)["pools"]["onnx"]
    assert samples[("modelrouter_pool_borrows", (("model_type", "onnx"),))] == pool["borrows"]
    assert samples[("modelrouter_pool_in_use", (("model_type", "onnx"),))] == 0
    # The names overlap the batch --metrics-textfile's.
    from modelrouter.batch.prometheus import POOL_GAUGES

    names = {name for name, _ in samples}
    assert {f"modelrouter_{name}" for _, name, _ in POOL_GAUGES} <= names


def test_healthz_and_stats(shipped: Server) -> None:
    assert httpx.get(f"{shipped.url}/healthz").json() == {
        "status": "ok",
        "model_types": ["sklearn", "onnx", "skops"],
    }
    answer = stats(shipped)
    assert answer["default_model_type"] == "sklearn"
    assert set(answer["pools"]["sklearn"]) >= {
        "size",
        "available",
        "in_use",
        "borrows",
        "wait_total",
        "wait_mean",
        "wait_max",
        "busy_time",
        "utilisation",
        "chunks",
        "rows",
        "errors",
    }
    assert httpx.get(f"{shipped.url}/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]


# -- README: the curl examples run as written ------------------------------------------------


def readme_examples() -> list[tuple[str, list[str]]]:
    """The curl examples of docs/serving.md with the answers it shows (its ``text`` block)."""
    text = (ROOT / "docs" / "serving.md").read_text()
    block = text.split("```text\n$ curl", 1)[1].split("```", 1)[0]
    block = "$ curl" + block
    examples: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            examples.append((line[2:], []))
        else:
            examples[-1][1].append(line)
    return examples


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_examples_run(shipped: Server, tmp_path: Path) -> None:
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    examples = readme_examples()
    assert len(examples) >= 6
    for command, shown in examples:
        real = command.replace("localhost:8000", shipped.url.removeprefix("http://"))
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", real], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        output = done.stdout.splitlines()
        if shown and "…" not in "".join(shown):
            assert output == shown, command
        elif shown:
            assert output and output[0].startswith(shown[0].split("…")[0])
    scored = pq.read_table(tmp_path / "wine.scored.parquet")
    assert scored.num_rows == 178 and scored.column_names[0] == "id"


# -- a slow model: 503 with Retry-After, graceful stop ----------------------------------------


@pytest.fixture(scope="module")
def slow_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.slow_estimators import SlowForest

    folder = tmp_path_factory.mktemp("slow")
    frame = wine_rows(178)
    model = SlowForest(n_estimators=5, max_depth=3, random_state=0).fit(frame[FEATURES], frame["id"] % 3)
    model.delay_ = 0.6
    joblib.dump(model, folder / "slow.pkl")
    config = folder / "modelrouter.toml"
    config.write_text(
        'enable_onnx = false\n[sklearn]\npath = "slow.pkl"\npool_size = 1\n[onnx]\npath = "none.onnx"\n'
    )
    return config


def _slow_server(config: Path, *args: str) -> Server:
    return start_server(["-c", str(config), *args], cwd=config.parent, env={"PYTHONPATH": str(ROOT)})


# Adaptive batching (serve --max-batch-rows) keeps both guarantees: the wait for an instance
# is bounded by --timeout, and a stop answers every request in flight.
BATCHING = pytest.mark.parametrize(
    "batching",
    [
        pytest.param(["--max-batch-rows", "100"], id="batching"),
        # make test runs the default; per-request in make test-slow (tests/tiers.py).
        pytest.param(["--max-batch-rows", "0"], id="per-request", marks=pytest.mark.slow),
    ],
)


@BATCHING
def test_busy_pool_answers_503_with_retry_after(slow_config: Path, batching: list[str]) -> None:
    server = _slow_server(slow_config, "--timeout", "0.2", *batching)
    try:
        body = json_body(wine_rows(1))
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, f"{server.url}/predict", json=body, timeout=30)
            while stats(server)["pools"]["sklearn"]["in_use"] == 0:
                time.sleep(0.02)
            started = time.monotonic()
            second = httpx.post(f"{server.url}/predict", json=body, timeout=30)
            waited = time.monotonic() - started
            assert first.result().status_code == 200
        assert second.status_code == 503, second.text
        assert second.headers["Retry-After"] == "1"
        assert "no sklearn model instance became free within 0.2 s: 1 of 1 in use" in second.json()["error"]
        # A 503 proves it did not wait for the instance (busy 0.6 s); the bound is load slack.
        assert 0.15 < waited < 5
        # The refused request is the pool's timeout; the first found the instance free.
        pool = stats(server)["pools"]["sklearn"]
        assert (pool["borrows"], pool["waits"], pool["timeouts"], pool["in_use"]) == (1, 0, 1, 0)
        disabled = httpx.post(f"{server.url}/predict", params={"model_type": "onnx"}, json=body)
        assert disabled.status_code == 404 and "available: sklearn" in disabled.json()["error"]
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("signum", "batching"),
    [
        # make test: the default (batching) and the supervisors' signal; the other three
        # cells of signal x batching in make test-slow (tests/tiers.py).
        pytest.param(signal.SIGTERM, ["--max-batch-rows", "100"], id="SIGTERM-batching"),
        pytest.param(
            signal.SIGTERM, ["--max-batch-rows", "0"], id="SIGTERM-per-request", marks=pytest.mark.slow
        ),
        pytest.param(
            signal.SIGINT, ["--max-batch-rows", "100"], id="SIGINT-batching", marks=pytest.mark.slow
        ),
        pytest.param(
            signal.SIGINT, ["--max-batch-rows", "0"], id="SIGINT-per-request", marks=pytest.mark.slow
        ),
    ],
)
def test_stop_signal_answers_requests_in_flight_and_exits_0(
    slow_config: Path, signum: int, batching: list[str]
) -> None:
    server = _slow_server(slow_config, "--pool-size", "2", "--timeout", "30", *batching)
    body = json_body(wine_rows(2))
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(httpx.post, f"{server.url}/predict", json=body, timeout=30) for _ in range(6)]
        wait_in_flight(server, 6)
        # Batching may put every waiting request in one call: one instance busy is enough.
        while stats(server)["pools"]["sklearn"]["in_use"] < (1 if batching else 2):
            time.sleep(0.02)
        # A load balancer's health check on a connection made before the stop, sent during
        # it: the service is stopping, so 503 (not "ok") while the requests above finish.
        host, port = urlsplit(server.url).netloc.split(":")
        with socket.create_connection((host, int(port)), timeout=30) as late:
            time.sleep(0.1)  # accepted by the server before the signal
            server.process.send_signal(signum)
            time.sleep(0.1)
            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            health = b"".join(iter(lambda: late.recv(65536), b"")).decode(errors="replace")  # "close"
        answers = [f.result() for f in futures]
    assert health.startswith("HTTP/1.1 503"), health
    assert "not ready (starting or stopping)" in health
    assert [a.status_code for a in answers] == [200] * 6
    assert server.wait() == 0
    log = "".join(server.stderr)
    assert f"stopped by {signal.Signals(signum).name}" in log
    assert "Traceback" not in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz")


def test_start_up_errors_are_one_line_with_exit_codes(tmp_path: Path, slow_config: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sklearn]\npath = 'x.pkl'\nsize = 2\n")
    done = subprocess.run(
        [str(MODELROUTER), "serve", "-c", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 4
    assert done.stderr.startswith("error: ") and "'size'" in done.stderr and "Traceback" not in done.stderr
    empty = tmp_path / "empty.toml"
    empty.write_text("enable_onnx = false\n[onnx]\npath = 'x.onnx'\n")
    done = subprocess.run(
        [str(MODELROUTER), "serve", "-c", str(empty)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (
        4,
        f"error: {empty}: no model type is configured; there is nothing to serve\n",
    )
    with socket.create_server(("127.0.0.1", 0)) as taken_by_another:
        port = taken_by_another.getsockname()[1]
        taken = subprocess.run(
            [str(MODELROUTER), "serve", "-c", str(slow_config), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert taken.returncode == 5
    assert f"error: cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert taken.stdout == ""


# -- in-process: the app factory on its own --------------------------------------------------

# Starlette 1.x asks for its httpx fork in TestClient; httpx works and is what the rest uses.
_TESTCLIENT_ON_HTTPX = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@_TESTCLIENT_ON_HTTPX
def test_predict_proba_on_a_regressor_is_422(models_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from modelrouter import ModelRouter
    from modelrouter.serve import ServeConfig, create_app

    config = tmp_path / "regressor.toml"
    config.write_text(f'[sklearn]\npath = "{models_dir / "regressor.pkl"}"\npool_size = 1\n')
    router = ModelRouter()
    with TestClient(create_app(ServeConfig(config=config), router=router)) as client:
        body = json_body(wine_rows(3).drop(columns=["id"]))
        answer = client.post("/predict_proba", json=body)
        assert answer.status_code == 422
        assert "regressor" in answer.json()["error"]
        values = client.post("/predict", json=body)
        assert values.status_code == 200 and len(values.json()["predictions"]) == 3
    assert router.types == ()  # the app closed and unregistered its pools


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)
_CELL = _SCALARS | st.lists(_SCALARS, max_size=2) | st.sampled_from(["1.5", " 2", "1e400", "nan", "-inf", ""])


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["rows", "columns", "anything", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "anything":
        return json.dumps(draw(_JSON)).encode()
    columns = draw(st.lists(st.sampled_from([*FEATURES[:4], "x"]), max_size=5, unique=True))
    if kind == "columns":  # the columnar form, ragged or not, with every feature or not
        length = draw(st.integers(0, 4))
        names = FEATURES if draw(st.booleans()) else columns
        return json.dumps(
            {
                "columns": {
                    name: [draw(_CELL) for _ in range(length + draw(st.sampled_from([0, 0, 0, 1])))]
                    for name in names
                }
            }
        ).encode()
    base = _row()
    rows = [
        {**base, **{c: draw(_CELL) for c in columns}}
        if draw(st.booleans())
        else {c: draw(_CELL) for c in columns}
        for _ in range(draw(st.integers(0, 4)))
    ]
    return json.dumps({"rows": rows}).encode()


@pytest.fixture(scope="module")
def in_process() -> Iterator[Any]:
    from fastapi.testclient import TestClient
    from modelrouter import ModelRouter
    from modelrouter.serve import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(pool_size=1, max_rows=3), router=ModelRouter())) as client:
        yield client


@_TESTCLIENT_ON_HTTPX
# A value beyond float32 (3.5e38) overflows when the forest casts its input: a RuntimeWarning,
# then the model's own "too large" refusal (422). As an error the warning would be a 500 here.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_bodies(),
    path=st.sampled_from(["/predict", "/predict_proba"]),
    kind=st.sampled_from(["sklearn", "onnx"]),
)
def test_no_body_gives_a_500(in_process: Any, body: bytes, path: str, kind: str) -> None:
    answer = in_process.post(path, params={"model_type": kind}, content=body, headers=JSON)
    assert answer.status_code in {200, 400, 413, 422}, answer.text
    if answer.status_code != 200:
        assert set(answer.json()) <= {"error", "column", "row"} and answer.json()["error"]


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_a_csv_body_of_a_header_alone_is_zero_rows_with_or_without_its_line_end(ending: str) -> None:
    from modelrouter.serve.bodies import csv_table

    header = ",".join(["id", *FEATURES])
    table = csv_table((header + ending).encode(), 10)
    assert table.num_rows == 0 and table.column_names == ["id", *FEATURES]
    one = csv_table((header + "\n" + ",".join(["7"] + ["1.5"] * len(FEATURES)) + ending).encode(), 10)
    assert one.num_rows == 1 and one.column("id").to_pylist() == ["7"]
