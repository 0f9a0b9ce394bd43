"""The format asked for, or a refusal; class labels that name one class each.

- ``-o - --output-format parquet`` writes Parquet to stdout (never CSV in its place);
- a model whose classes repeat a label (``("a", "a")``) is a model error (exit 4) naming
  the label, from a pickle and from an ONNX graph alike, before anything is read.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import onnx
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SHIPPED_ONNX = ROOT / "models" / "classifier.onnx"


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [str(MODELROUTER), *args, "--no-stats", "--no-progress"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    frame = load_wine(as_frame=True).data.head(25).copy()
    frame.insert(0, "id", np.arange(1, 26))
    frame.to_csv(tmp_path / "wine.csv", index=False)
    return tmp_path / "wine.csv"


@pytest.mark.parametrize("command", ["predict", "predict-proba"])
def test_parquet_to_stdout_is_parquet(wine_csv: Path, command: str) -> None:
    args = [command, "wine.csv", "-m", str(SHIPPED_ONNX), "-k", "id", "-o", "-", "--output-format", "parquet"]
    result = run_cli(args, wine_csv.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout[:4] == b"PAR1" and result.stdout[-4:] == b"PAR1"
    table = pq.read_table(io.BytesIO(result.stdout))
    assert table.num_rows == 25
    assert table.schema.metadata[b"modelrouter.command"] == command.encode()
    # The same table as the run writes to a .parquet file, but for the kept CSV column: a
    # stream cannot be rewritten, so it stays text there (docs/formats.md).
    by_path = run_cli([*args[:-4], "-o", "out.parquet"], wine_csv.parent)
    assert by_path.returncode == 0, by_path.stderr
    written = pq.read_table(wine_csv.parent / "out.parquet")
    assert written.drop_columns(["id"]).equals(table.drop_columns(["id"]))
    assert table.column("id").to_pylist() == [str(i) for i in written.column("id").to_pylist()]
    same_as_csv = run_cli(
        [command, "wine.csv", "-m", str(SHIPPED_ONNX), "-k", "id", "-o", "-"], wine_csv.parent
    )
    assert same_as_csv.stdout.startswith(b"id,"), "CSV stays the default on stdout"


def test_parquet_to_stdout_with_page_compression(wine_csv: Path) -> None:
    args = [
        "predict",
        "wine.csv",
        "-m",
        str(SHIPPED_ONNX),
        "-o",
        "-",
        "--output-format",
        "parquet",
        "--compression",
        "zstd",
    ]
    result = run_cli(args, wine_csv.parent)
    assert result.returncode == 0, result.stderr
    metadata = pq.ParquetFile(io.BytesIO(result.stdout)).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def _repeated_pickle(folder: Path) -> Path:
    data = load_wine(as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(data.data, np.where(data.target == 0, "a", "b"))
    model.classes_ = np.array(["a", "a"], dtype=object)
    joblib.dump(model, folder / "repeated.pkl")
    return folder / "repeated.pkl"


def _repeated_graph(folder: Path) -> Path:
    graph = onnx.load(SHIPPED_ONNX)
    for node in graph.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings":
                del attribute.strings[:]
                attribute.strings.extend([b"a", b"a", b"b"][:3])
            if attribute.name in ("classlabels_int64s", "classlabels_ints"):
                del attribute.ints[:]
                attribute.ints.extend([1, 1, 2])
    for entry in graph.metadata_props:
        if entry.key == "class_labels":
            entry.value = '["a", "a", "b"]'
    onnx.save(graph, folder / "repeated.onnx")
    return folder / "repeated.onnx"


@pytest.mark.matrix
@pytest.mark.parametrize("kind", ["pkl", "onnx"])
@pytest.mark.parametrize("command", ["predict", "predict-proba"])
def test_repeated_class_labels_are_a_model_error(wine_csv: Path, kind: str, command: str) -> None:
    folder = wine_csv.parent
    model = _repeated_pickle(folder) if kind == "pkl" else _repeated_graph(folder)
    (folder / "out.csv").write_bytes(b"previous\n")
    result = run_cli([command, "wine.csv", "-m", model.name, "-k", "id", "-o", "out.csv"], folder)
    assert result.returncode == 4, result.stderr
    stderr = result.stderr.decode()
    assert stderr.startswith(f"error: {model.name}: the model's classes repeat the label "), stderr
    assert "clashes" not in stderr
    assert (folder / "out.csv").read_bytes() == b"previous\n"


# -- the metrics label on idle days (--resume with everything done, --allow-empty) ----------------


def _success_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("modelrouter_last_run_success")]


def test_the_metrics_label_is_the_model_type_on_idle_days(wine_csv: Path) -> None:
    folder = wine_csv.parent
    (folder / "in").mkdir()
    (folder / "empty").mkdir()
    wine_csv.rename(folder / "in" / "a.csv")
    model = ["-m", str(SHIPPED_ONNX), "-k", "id"]
    scored = run_cli(["predict", "in", "-o", "out", *model, "--metrics-textfile", "scored.prom"], folder)
    resumed = run_cli(
        ["predict", "in", "-o", "out", *model, "--resume", "--metrics-textfile", "resumed.prom"], folder
    )
    empty = run_cli(
        ["predict", "empty", "-o", "none", *model, "--allow-empty", "--metrics-textfile", "empty.prom"],
        folder,
    )
    for result in (scored, resumed, empty):
        assert result.returncode == 0, result.stderr
    expected = ['modelrouter_last_run_success{model_type="onnx"} 1']
    for name in ("scored.prom", "resumed.prom", "empty.prom"):
        assert _success_lines(folder / name) == expected, name
