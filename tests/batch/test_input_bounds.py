"""Inputs stay within bounds whatever their shape (docs/reliability.md).

- A gzip file of a header and hundreds of MiB of blank lines: Arrow parses it block by block
  and hands back no rows, so the run never trims memory; glibc's growing mmap threshold made
  the peak grow with the blank lines (2.35 GB for 2 GiB). It must stay flat.
- A quoted field with embedded line breaks of several MiB scores the same on stdin (a pipe)
  as by path (it was refused as "longer than 32 MiB" on stdin).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_wine

from tests.measured_run import run

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_ONNX = ROOT / "models" / "classifier.onnx"

pytestmark = pytest.mark.timeout(300)


def _header() -> str:
    return "id," + ",".join(load_wine(as_frame=True).data.columns)


def test_blank_lines_in_a_gzip_do_not_grow_memory(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text(_header() + "\n")
    blank = tmp_path / "blank.csv.gz"
    with gzip.open(blank, "wb", compresslevel=1) as handle:
        handle.write((_header() + "\n").encode())
        lines = b"\n" * (1 << 20)
        for _ in range(384):  # 384 MiB of blank lines: 2.3 MB compressed
            handle.write(lines)
    args: list[str | Path] = ["-m", SHIPPED_ONNX, "--no-stats", "--no-progress"]
    baseline = run(["predict", tiny, "-o", tmp_path / "t.csv", *args], tmp_path)
    measured = run(["predict", blank, "-o", tmp_path / "b.csv", *args], tmp_path)
    assert baseline.code == 0 and measured.code == 0, (baseline, measured)
    assert (tmp_path / "b.csv").read_text().count("\n") == 1  # the header: no rows
    # Measured: +15 MiB over the header-only run (before: +430 MiB, linear in the lines).
    assert measured.peak_rss_mib - baseline.peak_rss_mib < 60, (baseline, measured)


@pytest.mark.parametrize("megabytes", [2, 5])
def test_a_multiline_quoted_field_scores_alike_from_a_pipe_and_by_path(
    tmp_path: Path, megabytes: int
) -> None:
    wine = load_wine(as_frame=True).data
    values = ",".join(str(v) for v in wine.iloc[0].to_numpy(dtype=np.float64))
    field = "a line of the note\n" * ((megabytes << 20) // 19)
    text = _header() + ",note\n"
    text += f"1,{values},short\n"
    text += f'2,{values},"{field}"\n'
    text += f'3,{values},"a ""quoted"" word, and a comma"\n'
    text += f'4,{values},"two\r\nlines"\n'
    source = tmp_path / "notes.csv"
    source.write_text(text, newline="")
    args: list[str | Path] = ["-m", SHIPPED_ONNX, "-k", "id", "-k", "note", "--no-stats", "--no-progress"]
    by_path = run(["predict", source, "-o", tmp_path / "path.parquet", *args], tmp_path)
    by_pipe = run(["predict", "-", "-o", tmp_path / "pipe.parquet", *args], tmp_path, stdin=text.encode())
    assert by_path.code == 0, by_path
    assert by_pipe.code == 0, by_pipe
    columns = ["id", "note", "prediction"]
    expected = pq.read_table(tmp_path / "path.parquet").select(columns)
    assert pq.read_table(tmp_path / "pipe.parquet").select(columns).equals(expected)
    assert expected.column("note").to_pylist() == [
        "short",
        field,
        'a "quoted" word, and a comma',
        "two\r\nlines",
    ]
