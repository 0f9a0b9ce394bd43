"""JSON Lines in and out (``.jsonl``, ``.jsonl.gz``, stdin, datasets), end to end through the
real command: the same predictions as CSV, streamed, the same exit codes."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE_CSV = ROOT / "sample_data" / "wine.csv"
WINE = pd.read_csv(WINE_CSV)


def run_cli(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, env=env, timeout=120, input=stdin
    )


def _jsonl(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", lines=True).encode()


def _rows(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    done = run_cli("predict-proba", WINE_CSV, "-o", out, "--no-stats")
    assert done.returncode == 0, done.stderr
    return pd.read_csv(out)


@pytest.mark.matrix
@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz", "in.ndjson", "-"])
def test_json_lines_in_scores_like_csv(tmp_path: Path, reference: pd.DataFrame, name: str) -> None:
    data = _jsonl(WINE)
    if name == "-":
        done = run_cli("predict-proba", "-", "--input-format", "jsonl", "-o", "-", "--no-stats", stdin=data)
    else:
        source = tmp_path / name
        source.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        done = run_cli("predict-proba", source, "-o", "-", "--no-stats")
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(io.BytesIO(done.stdout))
    pd.testing.assert_frame_equal(scored, reference)


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz"])
def test_json_lines_out_one_object_per_row(tmp_path: Path, reference: pd.DataFrame, name: str) -> None:
    out = tmp_path / name
    done = run_cli("predict-proba", WINE_CSV, "-o", out, "--no-stats", "-k", "id")
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    rows = _rows(gzip.decompress(data) if name.endswith(".gz") else data)
    assert len(rows) == len(WINE)
    assert list(rows[0]) == ["id", "proba_class_0", "proba_class_1", "proba_class_2"]
    assert rows[0]["id"] == "1"  # a kept CSV cell is the text read
    got = pd.DataFrame(rows).drop(columns="id")
    pd.testing.assert_frame_equal(got, reference, check_exact=False, rtol=0, atol=0)


def test_json_lines_to_json_lines_keeps_json_types_and_parquet_keeps_them(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(_jsonl(WINE))
    out = tmp_path / "out.jsonl"
    done = run_cli("predict", source, "-o", out, "--no-stats", "-k", "id", "-k", "alcohol")
    assert done.returncode == 0, done.stderr
    first = _rows(out.read_bytes())[0]
    assert first == {"id": 1, "alcohol": 14.23, "prediction": "class_0"}
    done = run_cli("predict", source, "-o", tmp_path / "out.parquet", "--no-stats", "-k", "id")
    assert done.returncode == 0, done.stderr
    assert str(pq.read_schema(tmp_path / "out.parquet").field("id").type) == "int64"


def test_a_dataset_of_json_lines(tmp_path: Path) -> None:
    folder = tmp_path / "day"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(_jsonl(WINE.head(100)))
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(_jsonl(WINE.tail(78))))
    done = run_cli("predict", folder, "-o", tmp_path / "scored", "--output-format", "jsonl", "--no-stats")
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "scored").iterdir())
    # Each with its provenance sidecar, which --resume reads (docs/datasets.md).
    assert written == [
        ".a.jsonl.provenance.json",
        ".b.jsonl.provenance.json",
        "_SUCCESS",
        "a.jsonl",
        "b.jsonl",
    ]
    assert len(_rows((tmp_path / "scored" / "b.jsonl").read_bytes())) == 78


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty file (no JSON object)"),
        (b"[1, 2]\n", "row 1: not a JSON object"),
        (b'{"alcohol": {"x": 1}}\n', "row 1: column 'alcohol' holds a JSON object; values must be scalars"),
        (b'{"alcohol": 1}\n{"alcohol": "x"}\n', "row 2: column 'alcohol' mixes int and str values"),
        (b'{"alcohol": 1}\n{"alcohol": \n', "row 2: not a JSON object"),
    ],
)
def test_unreadable_json_lines_are_input_errors(tmp_path: Path, body: bytes, message: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(body)
    out = tmp_path / "out.csv"
    done = run_cli("predict", source, "-o", out, "--no-stats")
    assert done.returncode == 3, done.stderr
    assert done.stderr.decode().startswith(f"error: {source}: {message}"), done.stderr
    assert not out.exists()


def test_a_later_row_of_another_type_is_an_input_error_with_nothing_written(tmp_path: Path) -> None:
    frame = pd.concat([WINE] * 40, ignore_index=True)  # 7,120 rows: past the typed sample
    lines = _jsonl(frame).decode().splitlines()
    lines[5000] = lines[5000].replace('"alcohol":', '"alcohol":"x","was":', 1)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    done = run_cli("predict", source, "-o", out, "--no-stats")
    assert done.returncode == 3, done.stderr
    assert b"Column(/alcohol) changed from number to string" in done.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_json_lines_to_stdout(tmp_path: Path) -> None:
    done = run_cli("predict", WINE_CSV, "-o", "-", "--output-format", "jsonl", "--no-stats", "-k", "id")
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert len(rows) == len(WINE) and rows[0] == {"id": "1", "prediction": "class_0"}
