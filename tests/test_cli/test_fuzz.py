"""Fuzzing the CLI with hostile files: never exit 1, never a traceback, never a partial file.

Runs in-process (a subprocess per example would take minutes); the CLI's error mapping is
the same code either way, and an unexpected exception would surface as exit 1.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.cli.app import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
WINE = pd.read_csv(ROOT / "sample_data" / "wine.csv")
FEATURES = list(WINE.columns[1:])
ALLOWED = {0, 3, 4, 5}  # success, data error, model error, output error: never 1 (a bug)
HOSTILE = st.one_of(
    st.just(""),
    st.just("NaN"),
    st.just("inf"),
    st.just("-inf"),
    st.just("1e999"),
    st.just("9" * 400),
    st.just('"quoted, comma"'),
    st.just("x" * 5000),
    st.text(max_size=20),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_run(tmp_path: Path, source: Path, *extra: str) -> None:
    for existing in tmp_path.iterdir():
        if existing != source:
            existing.unlink()
    out = tmp_path / "out.csv"
    args = ["predict", str(source), "-o", str(out), "-q", "--chunk-size", "7", *extra]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code in ALLOWED, result.output
    assert "Traceback" not in result.output
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    if result.exit_code != 0:
        assert not out.exists()
        assert result.output.startswith("error: ")


@FUZZ
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".parquet"]))
def test_random_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    source = tmp_path / f"in{suffix}"
    source.write_bytes(data)
    check_run(tmp_path, source)


@FUZZ
@given(
    header=st.lists(st.sampled_from([*FEATURES, "id", "", "alcohol", "x y/z", "é"]), max_size=16),
    rows=st.lists(st.lists(HOSTILE, max_size=16), max_size=12),
    policy=st.sampled_from(["fail", "skip"]),
)
def test_hostile_csv(tmp_path: Path, header: list[str], rows: list[list[str]], policy: str) -> None:
    # Ragged rows, missing and duplicated headers, unquoted commas and newlines: as typed.
    text = ",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    source = tmp_path / "in.csv"
    source.write_text(text, encoding="utf-8", errors="replace")
    check_run(tmp_path, source, "--on-error", policy, "--rejects", str(tmp_path / "rej.csv"))


@FUZZ
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()), min_size=13, max_size=13 * 9
    ),
    as_text=st.booleans(),
    model=st.sampled_from(["classifier.pkl", "classifier.onnx"]),
)
def test_hostile_parquet_values(
    tmp_path: Path, values: list[float | None], as_text: bool, model: str
) -> None:
    rows = len(values) // len(FEATURES)
    matrix = np.array([np.nan if v is None else v for v in values[: rows * len(FEATURES)]], dtype=np.float64)
    frame = pd.DataFrame(matrix.reshape(rows, len(FEATURES)), columns=FEATURES)
    if as_text:
        frame = frame.astype(str)
    source = tmp_path / "in.parquet"
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    source.write_bytes(sink.getvalue())
    check_run(tmp_path, source, "-m", str(ROOT / "models" / model))
