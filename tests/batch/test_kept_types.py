"""Kept CSV columns in a Parquet output: typed where their text round-trips, text otherwise,
and widened to text (never a failure, never a changed value) when a later chunk says so
(docs/formats.md, "Kept CSV columns in Parquet")."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.batch.kept_types import as_text
from modelrouter.cli.main import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pd.read_csv(ROOT / "sample_data" / "wine.csv", dtype=str, keep_default_na=False)
ONNX = ["-m", str(ROOT / "models" / "classifier.onnx"), "-t", "onnx", "--no-stats", "-q"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def wine_with(folder: Path, columns: dict[str, list[str]], name: str = "in.csv") -> Path:
    """The first rows of the wine sample, one per value, with ``columns`` added as text."""
    rows = len(next(iter(columns.values())))
    frame = pd.concat([WINE] * (rows // len(WINE) + 1), ignore_index=True).head(rows)
    for column, values in columns.items():
        frame[column] = values
    path = folder / name
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return path


def scored(path: Path) -> pa.Table:
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    return pq.read_table(path)


def test_csv_id_is_int64_as_from_parquet(tmp_path: Path) -> None:
    from_csv, from_parquet = tmp_path / "csv.parquet", tmp_path / "parquet.parquet"
    result = run("predict", ROOT / "sample_data" / "wine.csv", "-k", "id", "-o", from_csv, *ONNX)
    assert result.returncode == 0, result.stderr
    result = run("predict", ROOT / "sample_data" / "wine.parquet", "-k", "id", "-o", from_parquet, *ONNX)
    assert result.returncode == 0, result.stderr
    assert scored(from_csv).schema.field("id").type == pa.int64()
    assert scored(from_csv).equals(pq.read_table(from_parquet))


def test_exact_texts_stay_text_and_round_tripping_ones_are_typed(tmp_path: Path) -> None:
    n = 6
    source = wine_with(
        tmp_path,
        {
            "code": ["007", "12", "3", "40", "5", "6"],  # a leading zero: text
            "signed": ["+1", "2", "3", "4", "5", "6"],  # '+': text
            "note": ["1", "NA", "3", "4", "5", "6"],  # a null spelling: text
            "amount": ["0.1", "2.5", "", "-3", "0.00001", "2.5e-7"],  # floats that round-trip
            "rounded": ["1.0", "2.5", "3.25", "4", "5", "6"],  # '1.0' reads back '1': text
            "small": ["1e-05", "2.5", "3.25", "4", "5", "6"],  # '1e-05' reads back '0.00001': text
            "flag": ["true", "false", "", "true", "true", "false"],
            "count": ["1", "", "-20", "0", "9223372036854775807", "6"],
        },
    )
    out = tmp_path / "out.parquet"
    keep = [
        a
        for c in ("code", "signed", "note", "amount", "rounded", "small", "flag", "count")
        for a in ("-k", c)
    ]
    result = run("predict", source, *keep, "-o", out, *ONNX)
    assert result.returncode == 0, result.stderr
    table = scored(out)
    types = {f.name: f.type for f in table.schema}
    assert {types[c] for c in ("code", "signed", "note", "rounded", "small")} == {pa.string()}
    assert types["amount"] == pa.float64() and types["flag"] == pa.bool_() and types["count"] == pa.int64()
    assert table.column("code").to_pylist()[0] == "007"
    assert table.column("note").to_pylist()[1] == "NA"
    assert table.column("amount").to_pylist() == [0.1, 2.5, None, -3.0, 1e-05, 2.5e-7]
    assert table.column("count").to_pylist() == [1, None, -20, 0, 2**63 - 1, 6]
    assert table.num_rows == n


def test_text_in_a_later_chunk_widens_the_column_without_failing(tmp_path: Path) -> None:
    # Integers (with an empty cell) and floats in chunks 1 and 2, text in chunk 3 of 4 rows each.
    ids = ["1", "2", "", "4", "5", "6", "7", "8", "A-9", "10", "011", "12", "13"]
    amounts = ["0.5", "1", "2.25", "", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    source = wine_with(tmp_path, {"id": ids, "amount": amounts})
    out = tmp_path / "out.parquet"
    out.write_bytes(b"an earlier output")
    result = run("predict", source, "-k", "id", "-k", "amount", "-o", out, "--chunk-size", "4", *ONNX)
    assert result.returncode == 0, result.stderr
    table = scored(out)
    assert table.schema.field("id").type == pa.string()
    assert table.column("id").to_pylist() == ids  # every value its exact text, the empty one too
    assert table.schema.field("amount").type == pa.float64()  # never contradicted
    assert table.column("prediction").null_count == 0 and table.num_rows == len(ids)
    assert pq.read_metadata(out).metadata[b"modelrouter.command"] == b"predict"  # provenance kept


def test_csv_and_jsonl_outputs_and_datasets_keep_the_text(tmp_path: Path) -> None:
    source = wine_with(tmp_path, {"id": ["1", "2", "3"]})
    folder = tmp_path / "day"
    folder.mkdir()
    wine_with(folder, {"id": ["1", "2", "3"]}, "a.csv")
    wine_with(folder, {"id": ["x", "2", "3"]}, "b.csv")
    result = run("predict", source, "-k", "id", "-o", tmp_path / "out.jsonl", *ONNX)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.jsonl").read_text().startswith('{"id":"1",')
    result = run("predict", folder, "-k", "id", "-o", tmp_path / "parts", "--output-format", "parquet", *ONNX)
    assert result.returncode == 0, result.stderr
    for part in ("a.parquet", "b.parquet"):  # every part alike: the parts read as one table
        assert pq.read_schema(tmp_path / "parts" / part).field("id").type == pa.string()


INTEGER = re.compile(r"0|-?[1-9][0-9]*")
CELLS = st.one_of(
    st.just(""),
    st.sampled_from(["NA", "null", "nan", "inf", "007", "-0", "+3", "1.0", "1e5", "true", "false", "True"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.integers(min_value=2**63, max_value=2**70).map(str),  # beyond int64
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\x00"), max_size=8),
)
#: A column of one kind of value, then (sometimes) others: the later chunks contradict the first.
COLUMNS = st.tuples(
    st.sampled_from(
        [
            st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
            st.floats(allow_nan=False, allow_infinity=False).map(repr),
            st.sampled_from(["true", "false"]),
            CELLS,
        ]
    ).flatmap(lambda first: st.lists(st.one_of(first, st.just("")), min_size=1, max_size=12)),
    st.lists(CELLS, max_size=12),
).map(lambda parts: parts[0] + parts[1])


@pytest.mark.parametrize("chunk_size", [1, 3, 50])
@settings(
    max_examples=int(os.environ.get("MODELROUTER_FUZZ_EXAMPLES", "8")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(columns=st.lists(COLUMNS, min_size=1, max_size=3))
def test_every_kept_text_reads_back_exactly(
    tmp_path: Path, chunk_size: int, columns: list[list[str]]
) -> None:
    rows = max(len(c) for c in columns)
    padded = {f"k{i}": c + [""] * (rows - len(c)) for i, c in enumerate(columns)}
    source = wine_with(tmp_path, padded)
    out = tmp_path / "out.parquet"
    keep = [a for c in padded for a in ("-k", c)]
    args = ["predict", str(source), *keep, "-o", str(out), "--chunk-size", str(chunk_size), *ONNX]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = scored(out)
    for name, texts in padded.items():
        field = table.schema.field(name)
        assert as_text(table.column(name), field.type).to_pylist() == texts, field
        # An oracle of the integer rule: canonical int64 texts throughout, some in the first chunk.
        values = [t for t in texts if t]
        integers = all(INTEGER.fullmatch(t) and -(2**63) <= int(t) < 2**63 for t in values)
        assert (field.type == pa.int64()) == (integers and any(texts[:chunk_size])), field
