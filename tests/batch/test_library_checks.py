"""``score_file`` called from Python refuses what the command refuses, before anything is
read or written, and writes the side files its options name (docs/library.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from modelrouter import InvalidOptionError
from modelrouter.batch import RunOptions, score_file

ROOT = Path(__file__).resolve().parents[2]
WINE = ROOT / "sample_data" / "wine.csv"


@pytest.fixture
def wine(tmp_path: Path) -> Path:
    return Path(shutil.copy(WINE, tmp_path / "wine.csv"))


@pytest.mark.parametrize(
    ("fields", "option"),
    [
        ({"output": "{input}"}, "--output"),
        ({"output": "{dir}/out.csv", "rejects": "{input}", "on_error": "skip"}, "--rejects"),
        ({"output": "{dir}/out.csv", "rejects": "{dir}/out.csv", "on_error": "skip"}, "--rejects"),
        ({"output": "{dir}/out.csv", "stats_json": "{dir}/out.csv"}, "--stats-json"),
        ({"output": "{dir}/out.csv", "compression": "zstd"}, "--compression"),
        ({"output": "{dir}/out.csv", "allow_empty": True}, "--allow-empty"),
        ({"output": "{dir}/out.csv", "keep_going": True}, "--keep-going"),
    ],
)
def test_what_the_command_refuses_the_library_refuses_before_writing(
    wine: Path, fields: dict[str, object], option: str
) -> None:
    before = wine.read_bytes()
    given = {k: v.format(input=wine, dir=wine.parent) if isinstance(v, str) else v for k, v in fields.items()}
    with pytest.raises(InvalidOptionError) as caught:
        score_file(RunOptions(input=str(wine), **given))  # type: ignore[arg-type]
    assert str(caught.value).startswith(option)
    assert wine.read_bytes() == before
    assert sorted(p.name for p in wine.parent.iterdir()) == ["wine.csv"]


def test_the_library_writes_the_stats_json_and_metrics_it_is_given(wine: Path) -> None:
    stats, metrics = wine.parent / "stats.json", wine.parent / "run.prom"
    summary = score_file(
        RunOptions(
            input=str(wine),
            output=str(wine.parent / "out.csv"),
            stats_json=str(stats),
            metrics_textfile=str(metrics),
            keep="id",  # one name, not its letters
        )
    )
    assert summary.rows_out == 178
    report = json.loads(stats.read_text())
    assert report["summary"]["rows_out"] == 178 and report["pools"]
    assert "modelrouter_rows_out" in metrics.read_text()
    assert (wine.parent / "out.csv").read_text().splitlines()[0] == "id,prediction"


@pytest.mark.parametrize("option", ["output", "stats_json", "metrics_textfile", "rejects"])
def test_an_empty_path_is_refused_naming_the_option(wine: Path, option: str) -> None:
    with pytest.raises(InvalidOptionError, match="an empty path"):
        RunOptions(input=str(wine), **{option: ""})  # type: ignore[arg-type]
