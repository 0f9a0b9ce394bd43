"""Hostile-tester pass on batch scoring: cases found broken, each run through the real command.

- models that take some columns as text wherever the encoder sits (a pipeline in a
  pipeline, a ColumnTransformer selecting by index, HistGradientBoosting's categorical
  features, an imputer before the encoder, a text vectorizer, meta-estimators), and an
  encoder over a text and an integer column, which was fed the integers as text and gave
  other probabilities than the model called directly, with exit 0; a large vocabulary does
  not slow loading;
- CSV as spreadsheets and pandas write it: nameless header columns (Excel's trailing empty
  columns, pandas' index), blank lines before the header, numbers with spaces, True/False in
  a numeric feature, decimal commas (``--decimal ','``), cp1252 and UTF-16 text named;
- ``--with-proba`` on a multi-output classifier (was exit 1); a kept column clashing with a
  prediction column names the file; extension columns (UUID, JSON) written to CSV as text;
  datasets skip ``_temporary/`` and hidden folders locally as on object stores.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_cli(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        env=env,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    rows = 120
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows).astype(object),
            "size": rng.integers(1, 4, size=rows),
            "note": rng.choice(["fine wine", "bad cork", "great value", "too sweet"], size=rows).astype(
                object
            ),
        }
    )
    target = np.where((frame["x"] > 0) ^ (frame["colour"] == "red") ^ (frame["size"] == 2), "yes", "no")
    return frame, target


def _mixed_encoder() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("oh", OneHotEncoder(handle_unknown="ignore"), ["colour", "size"])], remainder="drop"
    )
    return make_pipeline(encode, LogisticRegression())


def _pipeline_in_pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    inner = make_pipeline(
        ColumnTransformer([("oh", OneHotEncoder(), ["colour"]), ("n", "passthrough", ["x"])])
    )
    return make_pipeline(inner, LogisticRegression())


def _selected_by_index() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    return make_pipeline(
        ColumnTransformer([("oh", OneHotEncoder(), [1]), ("n", "passthrough", [0])]), LogisticRegression()
    )


def _hgb_categorical_names() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(categorical_features=["colour"], max_iter=10, random_state=0)


def _imputer_then_encoder() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    text = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
    return make_pipeline(
        ColumnTransformer([("t", text, ["colour", "size"]), ("n", "passthrough", ["x"])]),
        LogisticRegression(),
    )


def _text_vectorizer() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        ColumnTransformer([("t", TfidfVectorizer(), "note"), ("n", "passthrough", ["x"])]),
        LogisticRegression(),
    )


def _calibrated_pipeline() -> Any:
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(_mixed_encoder(), cv=3)


def _searched_pipeline() -> Any:
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(_pipeline_in_pipeline(), {"logisticregression__C": [0.1, 1.0]}, cv=3)


MODELS: dict[str, Callable[[], Any]] = {
    "mixed_encoder": _mixed_encoder,
    "pipeline_in_pipeline": _pipeline_in_pipeline,
    "selected_by_index": _selected_by_index,
    "hgb_categorical_names": _hgb_categorical_names,
    "imputer_then_encoder": _imputer_then_encoder,
    "text_vectorizer": _text_vectorizer,
    "calibrated_pipeline": _calibrated_pipeline,
    "searched_pipeline": _searched_pipeline,
}


#: The placements make test scores (an encoder at the top of a pipeline, one inside a search
#: over a nested pipeline, a model with named categorical features); the other placements, and
#: every one from Parquet, run in make test-slow (tests/tiers.py).
_FAST_KINDS = ("mixed_encoder", "searched_pipeline", "hgb_categorical_names")


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [
        pytest.param(
            kind,
            suffix,
            id=f"{kind}-{suffix}",
            marks=() if kind in _FAST_KINDS and suffix == ".csv" else (pytest.mark.slow,),
        )
        for kind in sorted(MODELS)
        for suffix in (".csv", ".parquet")
    ],
)
def test_text_columns_are_fed_as_text_wherever_the_encoder_sits(
    tmp_path: Path, kind: str, suffix: str
) -> None:
    frame, target = _frame()
    if kind.startswith("hgb"):  # it fits on numbers and categories only
        frame = frame.drop(columns="note")
    fitted = MODELS[kind]().fit(frame, target)
    joblib.dump(fitted, tmp_path / "model.pkl")
    data = tmp_path / f"data{suffix}"
    frame.to_csv(data, index=False) if suffix == ".csv" else frame.to_parquet(data)
    out = tmp_path / "out.parquet"
    result = run_cli("predict", data, "-m", tmp_path / "model.pkl", "-o", out, "--with-proba", "-q")
    assert result.returncode == 0, result.stderr.decode()
    written = pd.read_parquet(out)
    assert written["prediction"].tolist() == fitted.predict(frame).tolist()
    np.testing.assert_allclose(
        written[["proba_no", "proba_yes"]].to_numpy(), fitted.predict_proba(frame), rtol=1e-12
    )


def test_hgb_with_pandas_categorical_features(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, target = _frame()
    frame = frame.drop(columns="note").astype({"colour": "category"})
    fitted = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=10).fit(frame, target)
    joblib.dump(fitted, tmp_path / "model.pkl")
    frame.to_parquet(tmp_path / "data.parquet")  # a dictionary-encoded column
    out = tmp_path / "out.parquet"
    result = run_cli(
        "predict-proba", tmp_path / "data.parquet", "-m", tmp_path / "model.pkl", "-o", out, "-q"
    )
    assert result.returncode == 0, result.stderr.decode()
    np.testing.assert_allclose(pd.read_parquet(out).to_numpy(), fitted.predict_proba(frame), rtol=1e-12)


@pytest.fixture(scope="module")
def numeric_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A logistic regression on columns a..d, with names and without (fitted on an array)."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("numeric")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(80, 4)), columns=list("abcd"))
    target = (frame["a"] + frame["b"] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(frame, target), folder / "named.pkl")
    joblib.dump(LogisticRegression().fit(frame.to_numpy(), target), folder / "nameless.pkl")
    return {"named": folder / "named.pkl", "nameless": folder / "nameless.pkl"}


EXCEL_EXPORT = (
    b'\xef\xbb\xbf"a","b","c","d","id",,\r\n'
    b"0.5,1.5,2.5,3.5,7,,\r\n"
    b"-1.5,-0.5,0.5,1.5,8,,\r\n"
    b"\r\n\r\n"  # blank lines at the end
)


@pytest.mark.matrix
@pytest.mark.parametrize("model", ["named", "nameless"])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_excel_trailing_empty_columns_are_named_and_never_features(
    tmp_path: Path, numeric_models: dict[str, Path], model: str, source: str
) -> None:
    data = tmp_path / "export.csv"
    data.write_bytes(EXCEL_EXPORT)
    where: str | Path = data if source == "file" else "-"
    stdin = EXCEL_EXPORT if source == "stdin" else None
    keep = run_cli("predict", where, "-m", numeric_models[model], "-o", "-", "-k", "id", "-q", stdin=stdin)
    assert keep.returncode == 0, keep.stderr.decode()
    assert keep.stdout.decode().splitlines()[0] == "id,prediction"
    assert [line.split(",")[0] for line in keep.stdout.decode().splitlines()[1:]] == ["7", "8"]
    every = run_cli(
        "predict", where, "-m", numeric_models[model], "-o", "-", "--keep-all", "-k", "id", "-q", stdin=stdin
    )
    assert every.returncode == 0, every.stderr.decode()
    lines = every.stdout.decode().splitlines()
    assert lines[0] == "a,b,c,d,id,Unnamed: 5,Unnamed: 6,prediction"
    assert [line.rsplit(",", 1)[0] for line in lines[1:]] == ["0.5,1.5,2.5,3.5,7,,", "-1.5,-0.5,0.5,1.5,8,,"]


@pytest.mark.matrix
@pytest.mark.parametrize("source", ["file", "stdin", "gzip"])
def test_text_in_another_encoding_is_named_by_row_and_column(
    tmp_path: Path, numeric_models: dict[str, Path], source: str
) -> None:
    raw = b"a,b,c,d,id,city\n0.5,1.5,2.5,3.5,7,Paris\n0.5,1.5,2.5,3.5,8,K\xf6ln\n"  # cp1252 'ö'
    data = tmp_path / ("export.csv.gz" if source == "gzip" else "export.csv")
    data.write_bytes(gzip.compress(raw) if source == "gzip" else raw)
    out = tmp_path / "out.csv"
    where: str | Path = "-" if source == "stdin" else data
    name = "<stdin>" if source == "stdin" else str(data)
    result = run_cli(
        "predict",
        where,
        "-m",
        numeric_models["named"],
        "-o",
        out,
        "-k",
        "city",
        "-q",
        stdin=raw if source == "stdin" else None,
    )
    assert result.returncode == 3
    assert result.stderr.decode().startswith(f"error: {name}: row 2: column 'city': the text is not UTF-8")
    assert "Traceback" not in result.stderr.decode()
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_numbers_with_spaces_around_them_are_read_as_numbers(
    tmp_path: Path, numeric_models: dict[str, Path]
) -> None:
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("a,b,c,d,id\n 0.5, 1.5,2.5 ,\t3.5\t,7\n-1.5 ,-0.5, 0.5, 1.5,8\n")
    clean = tmp_path / "clean.csv"
    clean.write_text("a,b,c,d,id\n0.5,1.5,2.5,3.5,7\n-1.5,-0.5,0.5,1.5,8\n")
    results = [
        run_cli("predict-proba", f, "-m", numeric_models["named"], "-o", "-", "-k", "id", "-q")
        for f in (spaced, clean)
    ]
    assert [r.returncode for r in results] == [0, 0], results[0].stderr.decode()
    assert results[0].stdout == results[1].stdout
    # A space inside a number is still not a number: named with its row and column.
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,d,id\n 0.5,1.5,2.5,3.5,7\n1 5,1.5,2.5,3.5,8\n")
    refused = run_cli("predict", bad, "-m", numeric_models["named"], "-o", tmp_path / "o.csv", "-q")
    assert refused.returncode == 3
    assert refused.stderr.decode().startswith(f"error: {bad}: row 2: column 'a': cannot convert '1 5'")


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_decimal_commas_in_a_semicolon_export(tmp_path: Path, numeric_models: dict[str, Path]) -> None:
    european = tmp_path / "export.csv"
    european.write_bytes(
        b"a;b;c;d;id\r\n0,5;1,5;2,5;3,5;7,0\r\n-1,5;-0,5;0,5;1,5;8,0\r\n3;-2;1e-1;1,5e1;9,0\r\n"
    )
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b,c,d,id\n0.5,1.5,2.5,3.5,7\n-1.5,-0.5,0.5,1.5,8\n3,-2,1e-1,1.5e1,9\n")
    read = run_cli(
        "predict-proba", european, "-m", numeric_models["named"], "--delimiter", ";", "--decimal", ",",
        "-k", "id", "-o", tmp_path / "eu.parquet", "-q",
    )  # fmt: skip
    assert read.returncode == 0, read.stderr.decode()
    expected = run_cli(
        "predict-proba", plain, "-m", numeric_models["named"], "-o", tmp_path / "plain.parquet", "-q"
    )
    assert expected.returncode == 0
    eu, reference = pd.read_parquet(tmp_path / "eu.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    assert eu["id"].tolist() == ["7,0", "8,0", "9,0"]  # kept columns stay as written
    pd.testing.assert_frame_equal(eu.drop(columns="id"), reference)
    # --decimal ',' alone: the delimiter is then a semicolon (a comma cannot be both).
    implied = run_cli(
        "predict-proba", european, "-m", numeric_models["named"], "--decimal", ",",
        "-k", "id", "-o", tmp_path / "implied.parquet", "-q",
    )  # fmt: skip
    assert implied.returncode == 0, implied.stderr.decode()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "implied.parquet"), eu)
    # Without --decimal the comma is refused before any row is scored, naming the column, the
    # value and the flag that reads it.
    refused = run_cli("predict", european, "-m", numeric_models["named"], "--delimiter", ";", "-o", "-", "-q")
    assert refused.returncode == 3
    assert "column 'a' holds numbers with a decimal comma ('0,5')" in refused.stderr.decode()
    assert refused.stderr.decode().rstrip().endswith("pass --decimal ','")


def test_decimal_comma_refuses_a_point_rather_than_guessing(
    tmp_path: Path, numeric_models: dict[str, Path]
) -> None:
    thousands = tmp_path / "thousands.csv"
    thousands.write_text("a;b;c;d\n0,5;1,5;2,5;3,5\n1.500;1,5;2,5;3,5\n")
    out = tmp_path / "out.csv"
    args = (
        "predict",
        thousands,
        "-m",
        numeric_models["named"],
        "--delimiter",
        ";",
        "--decimal",
        ",",
        "-o",
        out,
    )
    refused = run_cli(*args, "-q")
    assert refused.returncode == 3
    assert refused.stderr.decode().startswith(
        f"error: {thousands}: row 2: column 'a': cannot convert \"1.500 (a '.'"
    )
    assert not out.exists()
    skipped = run_cli(*args, "-q", "--on-error", "skip", "--rejects", tmp_path / "bad.csv")
    assert skipped.returncode == 0, skipped.stderr.decode()
    assert len(out.read_text().splitlines()) == 2
    rejected = pd.read_csv(tmp_path / "bad.csv", sep=";", dtype=str)
    assert rejected[["row", "column", "a"]].values.tolist() == [["2", "a", "1.500"]]
    usage = run_cli("predict", thousands, "-m", numeric_models["named"], "--decimal", "x", "-o", out)
    assert usage.returncode == 2


def test_a_kept_column_that_clashes_names_the_file(tmp_path: Path, numeric_models: dict[str, Path]) -> None:
    data = tmp_path / "scored.csv"
    data.write_text("a,b,c,d,prediction\n0.5,1.5,2.5,3.5,1\n")
    result = run_cli("predict", data, "-m", numeric_models["named"], "-o", tmp_path / "o.csv", "--keep-all")
    assert result.returncode == 3
    assert result.stderr.decode().startswith(f"error: {data}: kept column 'prediction' clashes")


def test_with_proba_on_a_multi_output_classifier(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    frame, target = _frame()
    frame = frame[["x", "size"]]
    labels = np.c_[target, np.where(frame["size"] > 1, "big", "small")]
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, labels)
    joblib.dump(forest, tmp_path / "multi.pkl")
    frame.to_parquet(tmp_path / "data.parquet")
    out = tmp_path / "out.parquet"
    result = run_cli(
        "predict", tmp_path / "data.parquet", "-m", tmp_path / "multi.pkl", "--with-proba", "-o", out, "-q"
    )
    assert result.returncode == 0, result.stderr.decode()
    written = pd.read_parquet(out)
    assert list(written.columns) == [
        "prediction_0", "prediction_1", "proba_0_no", "proba_0_yes", "proba_1_big", "proba_1_small",
    ]  # fmt: skip
    assert written[["prediction_0", "prediction_1"]].to_numpy().tolist() == forest.predict(frame).tolist()
    np.testing.assert_allclose(written.iloc[:, 2:].to_numpy(), np.hstack(forest.predict_proba(frame)))


def test_extension_columns_are_written_to_csv_as_their_text(
    tmp_path: Path, numeric_models: dict[str, Path]
) -> None:
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [uuid.UUID(int=7), uuid.UUID(int=2**128 - 1), None]
    documents = ['{"a": 1, "b": "x,y"}', "[1,2]", None]
    table = pa.table(
        {
            **{c: pa.array([0.5, -1.0, 2.0]) for c in "abcd"},
            "uuid": pa.array([None if u is None else u.bytes for u in ids], pa.uuid()),
            "doc": pa.array(documents, pa.json_()),
        }
    )
    pq.write_table(table, tmp_path / "ext.parquet")
    out = tmp_path / "out.csv"
    result = run_cli(
        "predict",
        tmp_path / "ext.parquet",
        "-m",
        numeric_models["named"],
        "-o",
        out,
        "-k",
        "uuid",
        "-k",
        "doc",
        "-q",
    )
    assert result.returncode == 0, result.stderr.decode()
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert back["uuid"].tolist() == [str(ids[0]), str(ids[1]), ""]
    assert back["doc"].tolist() == [documents[0], documents[1], ""]


@pytest.mark.parametrize("form", ["directory", "glob"])
def test_a_dataset_skips_hidden_and_underscore_folders(
    tmp_path: Path, numeric_models: dict[str, Path], form: str
) -> None:
    data = tmp_path / "landing"
    rows = "a,b,c,d\n0.5,1.5,2.5,3.5\n"
    for name in ("part-1.csv", "day/part-2.csv", "_temporary/0/part-3.csv", ".spark-staging/part-4.csv"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(rows)
    source = str(data) if form == "directory" else f"{data}/**/*.csv"
    result = run_cli("predict", source, "-m", numeric_models["named"], "-o", tmp_path / "scored", "-q")
    assert result.returncode == 0, result.stderr.decode()
    written = sorted(
        str(p.relative_to(tmp_path / "scored"))
        for p in (tmp_path / "scored").rglob("*")
        if p.is_file() and not p.name.startswith(".")  # (the CSV outputs' provenance sidecars)
    )
    assert written == ["_SUCCESS", "day/part-2.csv", "part-1.csv"]


@pytest.mark.matrix
@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_a_bool_feature_written_by_pandas_to_csv(tmp_path: Path, policy: str) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, target = _frame()
    frame = frame[["x"]].assign(flag=frame["size"] > 1, other=frame["x"] > 0.5)
    fitted = LogisticRegression().fit(frame, target)
    joblib.dump(fitted, tmp_path / "model.pkl")
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)  # True / False
    text = data.read_text().replace("True\n", " TRUE \n", 1)  # as hand-edited, in another spelling
    data.write_text(text)
    out = tmp_path / "out.parquet"
    result = run_cli(
        "predict-proba", data, "-m", tmp_path / "model.pkl", "-o", out, "-q", "--on-error", policy,
        "--rejects", tmp_path / "bad.csv",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    np.testing.assert_allclose(pd.read_parquet(out).to_numpy(), fitted.predict_proba(frame), rtol=1e-12)
    if policy == "skip":
        assert len(pd.read_csv(tmp_path / "bad.csv")) == 0
    # A value that is neither a number nor a boolean is named, also among booleans.
    data.write_text(text.replace("False", "maybe", 1))
    refused = run_cli("predict", data, "-m", tmp_path / "model.pkl", "-o", out, "-q")
    assert refused.returncode == 3 and "cannot convert 'maybe'" in refused.stderr.decode()


def test_a_utf16_export_is_named_as_such(tmp_path: Path, numeric_models: dict[str, Path]) -> None:
    data = tmp_path / "unicode.txt.tsv"
    data.write_bytes("a\tb\tc\td\n0.5\t1.5\t2.5\t3.5\n".encode("utf-16"))
    result = run_cli("predict", data, "-m", numeric_models["named"], "-o", tmp_path / "o.csv", "-q")
    assert result.returncode == 3
    assert (
        result.stderr.decode()
        == f"error: {data}: the file is UTF-16 text; save it as CSV UTF-8 (or iconv -f utf-16 -t utf-8)\n"
    )


@pytest.mark.matrix
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_blank_lines_before_the_header_are_skipped(
    tmp_path: Path, numeric_models: dict[str, Path], source: str
) -> None:
    raw = b"\xef\xbb\xbf\r\n\r\na,b,c,d,id\r\n0.5,1.5,2.5,3.5,7\r\n-1.5,-0.5,0.5,1.5\r\n"
    data = tmp_path / "lead.csv"
    data.write_bytes(raw)
    where: str | Path = data if source == "file" else "-"
    name = str(data) if source == "file" else "<stdin>"
    stdin = raw if source == "stdin" else None
    refused = run_cli(
        "predict", where, "-m", numeric_models["named"], "-o", "-", "-k", "id", "-q", stdin=stdin
    )
    assert refused.returncode == 3  # the second data row is short, and named as row 2
    assert refused.stderr.decode().startswith(f"error: {name}: row 2: malformed CSV record")
    data.write_bytes(raw.replace(b"0.5,1.5\r\n", b"0.5,1.5,8\r\n"))
    stdin = data.read_bytes() if source == "stdin" else None
    result = run_cli(
        "predict", where, "-m", numeric_models["named"], "-o", "-", "-k", "id", "-q", stdin=stdin
    )
    assert result.returncode == 0, result.stderr.decode()
    assert [line.split(",")[0] for line in result.stdout.decode().splitlines()] == ["id", "7", "8"]


def test_a_large_vocabulary_does_not_slow_loading(tmp_path: Path) -> None:
    """The walk over a model's parts skips containers that hold none (7 s for 776k words)."""
    import time

    from modelrouter.backends.sklearn_backend import SklearnModel

    fitted = _text_vectorizer().fit(*_frame())
    vectorizer = fitted[0].named_transformers_["t"]
    vectorizer.vocabulary_ = {f"w{i}": i for i in range(2_000_000)}  # as a big corpus gives
    started = time.perf_counter()
    model = SklearnModel(tmp_path / "model.pkl", fitted)
    assert time.perf_counter() - started < 1.0
    assert model.schema.dtypes[model.schema.names.index("note")] == "string"  # type: ignore[union-attr]
