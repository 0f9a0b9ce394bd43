"""The files users bring and the files others read back (issue 12, items 6-10).

Compressed CSV in and out, delimiters, labels and probabilities in one pass with a threshold,
CSV quoting only where needed, Parquet provenance metadata and page compression, pandas index
columns, datasets that match nothing. End-to-end: the real ``modelrouter`` in a subprocess on
real files; exact exit codes, the file named on stderr, nothing partial left behind; what we
write is read back by pandas/pyarrow and compared.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelrouter.storage.csv_writer import CsvWriter
from modelrouter.storage.formats import parse_delimiter, sniff_compression, split_name
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SAMPLE = ROOT / "sample_data" / "wine.csv"
ONNX = ["-t", "onnx", "--no-stats"]  # no scikit-learn import: half the start-up


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    command = [str(MODELROUTER), *map(str, args)]
    return subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=120, check=False)


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stderr.decode()


def failed(result: subprocess.CompletedProcess[bytes], code: int, *needles: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def compress(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "bz2":
        return bz2.compress(data)
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return bytes(sink.getvalue())


def read_csv_any(path: Path, codec: str | None = None, delimiter: str = ",") -> pd.DataFrame:
    """pyarrow reads what we wrote (pandas has no zstd here), every column as text."""
    source = pa.input_stream(str(path), compression=codec)
    table = pacsv.read_csv(
        source,
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={"note": pa.string(), "code": pa.string()},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    frame: pd.DataFrame = table.to_pandas()
    return frame


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The reference: the sample scored from plain CSV to CSV."""
    out = tmp_path_factory.mktemp("ref") / "out.csv"
    ok(run("predict", SAMPLE, "-o", out, "-k", "id", *ONNX))
    return out.read_bytes()


# -- 6. compressed CSV ---------------------------------------------------------------------------


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("suffix", "codec"), [(".csv.gz", "gzip"), (".csv.bz2", "bz2"), (".csv.zst", "zstd")]
)
def test_compressed_csv_in_and_out_by_suffix(tmp_path: Path, plain: bytes, suffix: str, codec: str) -> None:
    source = tmp_path / f"day{suffix}"
    source.write_bytes(compress(SAMPLE.read_bytes(), codec))
    ok(run("predict", source, "-k", "id", *ONNX))  # default output: day.predictions.csv.gz
    written = tmp_path / f"day.predictions{suffix}"
    assert sniff_compression(written.read_bytes()[:10]) == codec
    with pa.input_stream(str(written), compression=codec) as stream:
        assert stream.read() == plain
    # Also to Parquet, and from a file whose name says nothing (the bytes say it).
    anonymous = tmp_path / "export.gz"
    anonymous.write_bytes(source.read_bytes())
    ok(run("predict", anonymous, "--input-format", "csv", "-o", tmp_path / "o.parquet", "-k", "id", *ONNX))
    expected = pd.read_csv(io.BytesIO(plain))  # a kept CSV id is typed int64 (docs/formats.md)
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "o.parquet").to_pandas(), expected)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_csv_on_stdin(plain: bytes, codec: str) -> None:
    result = run("predict", "-", "-o", "-", "-k", "id", *ONNX, stdin=compress(SAMPLE.read_bytes(), codec))
    ok(result)
    assert result.stdout == plain


def test_a_compressed_name_without_a_format_says_how(tmp_path: Path) -> None:
    source = tmp_path / "export.gz"
    source.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    failed(run("predict", source, *ONNX), 3, "export.gz", "--input-format")
    # A usage error (exit 2), as any output name no writer has: nothing is read or written.
    failed(run("predict", SAMPLE, "-o", tmp_path / "o.parquet.gz", *ONNX), 2, "o.parquet.gz", "--compression")
    assert not (tmp_path / "o.parquet.gz").exists()


def test_corrupt_compressed_input_is_a_data_error_and_writes_nothing(tmp_path: Path) -> None:
    body = (SAMPLE.read_text() * 40).encode()  # long enough to fail after the header
    for name, data in {
        "cut.csv.gz": gzip.compress(body)[:-2000],
        "flipped.csv.gz": gzip.compress(body)[:5000] + b"\x00" * 64 + gzip.compress(body)[5064:],
    }.items():
        source = tmp_path / name
        source.write_bytes(data)
        out = tmp_path / f"{name}.out.csv"
        failed(run("predict", source, "-o", out, *ONNX), 3, name, "gzip")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            p.name
            for p in tmp_path.iterdir()
            if not p.name.endswith(".out.csv") and not p.name.startswith(".")
        )


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_parquet_page_compression(tmp_path: Path) -> None:
    for codec in ("zstd", "gzip", "none"):
        out = tmp_path / f"{codec}.parquet"
        ok(run("predict", SAMPLE, "-o", out, "--compression", codec, *ONNX))
        column = pq.read_metadata(out).row_group(0).column(0)
        assert column.compression == ("UNCOMPRESSED" if codec == "none" else codec.upper())
    ok(run("predict", SAMPLE, "-o", tmp_path / "default.parquet", *ONNX))
    assert pq.read_metadata(tmp_path / "default.parquet").row_group(0).column(0).compression == "SNAPPY"
    result = run("predict", SAMPLE, "-o", tmp_path / "x.csv", "--compression", "zstd", *ONNX)
    failed(result, 2, "--compression", ".csv.gz")
    failed(run("predict-proba", SAMPLE, "-o", "-", "--compression", "bogus", *ONNX), 2, "--compression")
    assert not (tmp_path / "x.csv").exists()


def test_dataset_lists_compressed_and_tab_files_and_names_outputs(tmp_path: Path, plain: bytes) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.csv.gz").write_bytes(gzip.compress(SAMPLE.read_bytes()))
    (root / "b.tsv").write_text(SAMPLE.read_text().replace(",", "\t"))
    (root / "c.csv.zst").write_bytes(compress(SAMPLE.read_bytes(), "zstd"))
    ok(run("predict", root, "-o", tmp_path / "out", "-k", "id", *ONNX))
    # (hidden: each CSV output's provenance sidecar, for --resume)
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert names == ["_SUCCESS", "a.csv.gz", "b.tsv", "c.csv.zst"]
    assert gzip.decompress((tmp_path / "out" / "a.csv.gz").read_bytes()) == plain
    assert (tmp_path / "out" / "b.tsv").read_bytes() == plain.replace(b",", b"\t")
    ok(run("predict", root, "-o", tmp_path / "pq", "--output-format", "parquet", *ONNX))
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == [
        "_SUCCESS",
        "a.parquet",
        "b.parquet",
        "c.parquet",
    ]


def test_names_keep_the_whole_data_suffix() -> None:
    assert split_name("x/day.2024.csv.gz") == ("day.2024", ".csv", ".gz")
    assert split_name("notes.gz") == ("notes", ".gz", "")
    from modelrouter.batch.run import default_output, default_rejects

    assert default_output("in/day.csv.bz2") == "in/day.predictions.csv.bz2"
    assert default_rejects("out/day.tsv.gz") == "out/day.rejects.csv"


# -- 7. delimiters ----------------------------------------------------------------------------------


def test_delimiter_for_input_and_output(tmp_path: Path, plain: bytes) -> None:
    semi = tmp_path / "semi.csv"
    semi.write_text(SAMPLE.read_text().replace(",", ";"))
    out = tmp_path / "out.csv"
    ok(run("predict", semi, "--delimiter", ";", "-o", out, "-k", "id", *ONNX))
    assert out.read_bytes() == plain.replace(b",", b";")
    tabbed = tmp_path / "t.txt"
    tabbed.write_text(SAMPLE.read_text().replace(",", "\t"))
    for spelling in ("tab", "\\t", "\t"):
        result = run(
            "predict", tabbed, "--input-format", "csv", "--delimiter", spelling, "-o", "-", "-k", "id", *ONNX
        )
        ok(result)
        assert result.stdout == plain.replace(b",", b"\t")
    for bad in (";;", '"', "", "é"):
        failed(run("predict", semi, "--delimiter", bad, *ONNX), 2, "--delimiter")


@pytest.mark.parametrize(
    ("separator", "hint"),
    [(";", "';'-separated: pass --delimiter ';'"), ("\t", "tab-separated: pass --delimiter tab")],
)
def test_one_column_header_names_the_delimiter_it_looks_like(
    tmp_path: Path, separator: str, hint: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(SAMPLE.read_text().replace(",", separator))
    failed(run("predict", source, *ONNX), 3, "in.csv", "missing feature columns", hint)
    failed(run("predict", source, "-k", "id", *ONNX), 3, "--keep", hint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    # The other way round: a comma file read with ';'.
    failed(
        run("predict", SAMPLE, "--delimiter", ";", "-o", tmp_path / "o.csv", *ONNX), 3, "pass --delimiter ','"
    )


def test_parse_delimiter() -> None:
    assert parse_delimiter("TAB") == "\t" and parse_delimiter("|") == "|"
    with pytest.raises(ValueError, match="one ASCII character"):
        parse_delimiter("ab")


# -- 8. --with-proba and --threshold --------------------------------------------------------------


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, LogisticRegression, pd.DataFrame]:
    """A binary classifier with string classes on the breast-cancer data, and its input."""
    folder = tmp_path_factory.mktemp("binary")
    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, :6]
    labels = np.asarray(data.target_names)[data.target.to_numpy()]  # ['malignant', 'benign']
    model = LogisticRegression(max_iter=5000).fit(frame, labels)
    joblib.dump(model, folder / "binary.pkl")
    source = folder / "in.csv"
    frame.assign(id=np.arange(len(frame))).to_csv(source, index=False)
    return folder / "binary.pkl", source, model, frame


def test_with_proba_equals_the_model_called_directly(
    binary: tuple[Path, Path, LogisticRegression, pd.DataFrame], tmp_path: Path
) -> None:
    path, source, model, frame = binary
    out = tmp_path / "out.parquet"
    ok(run("predict", source, "-m", path, "--with-proba", "-k", "id", "-o", out, "--no-stats"))
    got = pq.read_table(out).to_pandas()
    assert list(got.columns) == ["id", "prediction", *(f"proba_{c}" for c in model.classes_)]
    reread = pd.read_csv(source)[frame.columns]
    np.testing.assert_array_equal(got["prediction"].to_numpy(), model.predict(reread))
    np.testing.assert_allclose(got.iloc[:, 2:].to_numpy(), model.predict_proba(reread), rtol=0, atol=1e-12)


@pytest.mark.matrix
@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_threshold_labels_the_positive_class(
    binary: tuple[Path, Path, LogisticRegression, pd.DataFrame], tmp_path: Path, threshold: float
) -> None:
    path, source, model, frame = binary
    result = run("predict", source, "-m", path, "--threshold", str(threshold), "-o", "-", "--no-stats")
    ok(result)
    got = pd.read_csv(io.BytesIO(result.stdout))
    assert list(got.columns) == ["prediction"]
    positive = model.predict_proba(pd.read_csv(source)[frame.columns])[:, 1] >= threshold
    np.testing.assert_array_equal(got["prediction"].to_numpy(), model.classes_[positive.astype(int)])


def test_threshold_and_with_proba_refusals(
    binary: tuple[Path, Path, LogisticRegression, pd.DataFrame], tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    # Three classes: not binary (a model property: exit 4, like predict-proba on a regressor).
    failed(
        run("predict", SAMPLE, "--threshold", "0.5", "-o", out, *ONNX),
        4,
        "classifier.onnx",
        "binary",
        "3 classes",
    )
    regressor = tmp_path / "reg.pkl"
    _, source, _, frame = binary
    from sklearn.linear_model import LinearRegression

    joblib.dump(LinearRegression().fit(frame, frame.iloc[:, 0]), regressor)
    failed(
        run("predict", source, "-m", regressor, "--with-proba", "-o", out),
        4,
        "reg.pkl",
        "regressor",
        "--with-proba",
    )
    failed(
        run("predict", source, "-m", regressor, "--threshold", "0.5", "-o", out), 4, "reg.pkl", "--threshold"
    )
    # Usage errors: out of range, NaN, and on predict-proba.
    for value in ("1.5", "-0.1", "nan"):
        failed(run("predict", SAMPLE, "--threshold", value, "-o", out, *ONNX), 2, "--threshold")
    failed(run("predict-proba", SAMPLE, "--threshold", "0.5", "-o", out, *ONNX), 2, "--threshold")
    failed(run("predict-proba", SAMPLE, "--with-proba", "-o", out, *ONNX), 2, "--with-proba")
    assert not out.exists()


def test_with_proba_on_a_header_only_input(tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text(SAMPLE.read_text().splitlines()[0] + "\n")
    result = run("predict", source, "--with-proba", "-o", "-", "-k", "id", *ONNX)
    ok(result)
    assert result.stdout == b"id,prediction,proba_class_0,proba_class_1,proba_class_2\n"


# -- 9. output others can read back ---------------------------------------------------------------


TRICKY = ["1", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "", " padded ", "NA", "x;y", "tab\there", "ünï"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_quotes_only_where_needed_and_reads_back(tmp_path: Path, delimiter: str) -> None:
    source = tmp_path / "in.parquet"
    table = pq.read_table(ROOT / "sample_data" / "wine.parquet").slice(0, len(TRICKY))
    table = table.append_column("note", pa.array(TRICKY)).append_column(
        "code", pa.array([str(i) for i in range(len(TRICKY))])
    )
    pq.write_table(table, source)
    out = tmp_path / "out.csv"
    ok(
        run(
            "predict",
            source,
            "-o",
            out,
            "-k",
            "id",
            "-k",
            "note",
            "-k",
            "code",
            "--delimiter",
            delimiter,
            *ONNX,
        )
    )
    text = out.read_bytes().decode()  # no newline translation: "\r" stays
    lines = text.split("\n")
    assert lines[0] == delimiter.join(["id", "note", "code", "prediction"])
    assert lines[1] == delimiter.join(["1", "1", "0", "class_0"])  # an id 1 is written 1
    back = read_csv_any(out, delimiter=delimiter)
    assert back["note"].tolist() == TRICKY
    assert back["code"].tolist() == [str(i) for i in range(len(TRICKY))]
    quoted = {v for v in TRICKY if any(c in v for c in (delimiter, '"', "\n", "\r"))}
    for value in filter(None, TRICKY):  # (an empty cell is written empty: checked by reading back)
        escaped = '"' + value.replace('"', '""') + '"'
        assert (escaped in text) == (value in quoted), value
    if delimiter == ",":
        read = pd.read_csv(out, keep_default_na=False, dtype=str)
        assert read["note"].tolist() == TRICKY


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.text(max_size=12),
            st.one_of(st.none(), st.floats(allow_nan=False, width=32)),
            st.integers(-(2**40), 2**40),
        ),
        max_size=30,
    ),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_property_csv_writer_round_trips(rows: list[tuple[str, float | None, int]], delimiter: str) -> None:
    """Whatever text, float32 and integers: pyarrow reads back exactly what was written, and a
    value is quoted only when it holds the delimiter, a quote or a line break."""
    texts = [r[0].replace("\x00", "") for r in rows]
    batch = pa.record_batch(
        [
            pa.array(texts, pa.string()),
            pa.array([r[1] for r in rows], pa.float32()),
            pa.array([r[2] for r in rows], pa.int64()),
        ],
        names=["text", "f32", "n"],
    )
    sink = pa.BufferOutputStream()
    writer = CsvWriter(sink, batch.schema, delimiter)
    writer.write_batch(batch.slice(0, len(rows) // 2))
    writer.write_batch(batch.slice(len(rows) // 2))
    writer.close()
    data = sink.getvalue()
    back = pacsv.read_csv(
        pa.BufferReader(data),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={"text": pa.string(), "f32": pa.float32(), "n": pa.int64()},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    assert back.num_rows == len(rows)
    assert back.column("text").to_pylist() == texts
    assert back.column("f32").to_pylist() == batch.column("f32").to_pylist()
    assert back.column("n").to_pylist() == batch.column("n").to_pylist()
    if not any(any(c in t for c in (delimiter, '"', "\n", "\r")) for t in texts):
        assert b'"' not in data.to_pybytes()


def test_parquet_output_says_where_it_came_from(tmp_path: Path) -> None:
    out = tmp_path / "scored.parquet"
    ok(run("predict", SAMPLE, "-o", out, "-k", "id", *ONNX))
    meta = {
        k.decode(): v.decode()
        for k, v in pq.read_schema(out).metadata.items()
        if k.startswith(b"modelrouter.")
    }
    model = ROOT / "models" / "classifier.onnx"
    assert meta["modelrouter.model_type"] == "onnx"
    assert meta["modelrouter.model_path"] == str(model)
    assert meta["modelrouter.model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert meta["modelrouter.command"] == "predict"
    assert meta["modelrouter.input"] == str(SAMPLE)
    from importlib.metadata import version

    assert meta["modelrouter.version"] == version("modelrouter")
    assert meta["modelrouter.created_at"].endswith("+00:00")
    shown = run("inspect", out, "--json")
    ok(shown)
    described = json.loads(shown.stdout)
    assert described["provenance"]["model_sha256"] == meta["modelrouter.model_sha256"]
    assert described["rows"] == 178 and described["columns"][0] == {"name": "id", "type": "int64"}
    table = run("inspect", out)
    ok(table)
    assert (
        b"modelrouter.model_sha256" in table.stdout
        and meta["modelrouter.model_sha256"].encode() in table.stdout
    )
    failed(run("inspect", tmp_path / "nothing.parquet"), 3, "nothing.parquet", "not found")


@pytest.mark.parametrize("kind", ["named", "unnamed", "range"])
def test_pandas_index_is_a_column_for_keep(tmp_path: Path, kind: str) -> None:
    frame = pd.read_parquet(ROOT / "sample_data" / "wine.parquet").drop(columns=["id"])
    name = "id" if kind == "named" else "index"
    if kind == "named":
        frame.index = pd.Index(np.arange(len(frame)) * 7, name="id")
    elif kind == "unnamed":
        frame.index = pd.Index(np.arange(len(frame)) * 7)
    else:
        frame = frame.iloc[5:]  # a RangeIndex from 5: kept in pandas metadata only
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    result = run("predict", source, "-o", "-", "-k", name, *ONNX)
    ok(result)
    got = pd.read_csv(io.BytesIO(result.stdout))
    assert list(got.columns) == [name, "prediction"]
    np.testing.assert_array_equal(got[name].to_numpy(), frame.index.to_numpy())


# -- 10. --allow-empty -------------------------------------------------------------------------------


def test_allow_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    pattern = str(tmp_path / "in" / "*.csv.gz")
    failed(run("predict", pattern, "-o", out, *ONNX), 3, "no .csv", "--allow-empty")
    assert not (out / "_SUCCESS").exists()
    err = ok(run("predict", pattern, "-o", out, "--allow-empty", *ONNX))
    assert "0 files" in err
    assert (out / "_SUCCESS").read_bytes() == b""
    stats = tmp_path / "stats.json"
    ok(run("predict", tmp_path / "in", "-o", out, "--allow-empty", "--stats-json", stats, "-q", *ONNX))
    assert json.loads(stats.read_text())["summary"]["files"] == 0
    failed(run("predict", SAMPLE, "-o", tmp_path / "x.csv", "--allow-empty", *ONNX), 2, "--allow-empty")


def test_with_proba_of_a_float32_model_stays_float32(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    ok(run("predict", SAMPLE, "--with-proba", "-o", out, *ONNX))
    schema = pq.read_schema(out)
    assert [str(schema.field(n).type) for n in schema.names[1:]] == ["float"] * 3
    as_csv = run("predict", SAMPLE, "--with-proba", "-o", "-", *ONNX)
    ok(as_csv)
    cells = [c for line in as_csv.stdout.decode().splitlines()[1:] for c in line.split(",")[1:]]
    assert all(len(c) <= 12 for c in cells), max(cells, key=len)  # no widening noise digits
    np.testing.assert_array_equal(
        np.array(cells, dtype=np.float32).reshape(-1, 3),
        pq.read_table(out).to_pandas().iloc[:, 1:].to_numpy(),
    )


@pytest.mark.parametrize(
    ("first", "message"),
    [
        (b"", "empty file (no header row)"),
        (b"   \n\n", "empty file (no header row)"),
        (b"\n  \n" + SAMPLE.read_bytes(), "the header row (line 2) names no columns"),
        (b",,,\n" + SAMPLE.read_bytes(), "the header row (line 1) names no columns"),
    ],
    ids=["empty", "blank-lines", "spaces-line", "delimiters-line"],
)
def test_a_header_that_names_no_columns_is_not_called_empty(
    tmp_path: Path, first: bytes, message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(first)
    failed(run("predict", source, "-o", tmp_path / "out.csv", *ONNX), 3, message)
    assert not (tmp_path / "out.csv").exists()
