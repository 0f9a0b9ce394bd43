"""End-to-end error handling of the installed ``modelrouter`` command (docs/specification.md §5).

Every case runs the real console script in a subprocess on real files in a temporary
folder and checks what a cron job relies on: the exact exit code, a plain ``error:`` line
on stderr that names the file / column / key (and the 1-based data row for bad values), no
traceback, nothing on stdout, no output file and no ``.<name>.*.tmp`` temporary left
behind, and a pre-existing output file left byte for byte as it was.

A run costs 1-2 s of interpreter start-up and imports, so the cases are independent
scenarios started together by one module fixture (only those the selected tests need) and
checked by parametrized tests; the signal tests run on their own because they measure time.
"""

from __future__ import annotations

import csv
import functools
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LinearRegression

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SHIPPED_PICKLE = ROOT / "models" / "classifier.pkl"
PREVIOUS = b"id,prediction\n1,from an earlier run\n"  # a pre-existing output file's bytes
RUN_TIMEOUT = 60.0

EXIT_OK, EXIT_USAGE, EXIT_DATA, EXIT_MODEL, EXIT_OUTPUT = 0, 2, 3, 4, 5
# File-level failures route to the ONNX pool: half the start-up cost of scikit-learn's imports,
# and the second backend gets the same checks.
ONNX = ["-t", "onnx"]
TEMP_NAME = re.compile(r"^\..+\.tmp$")  # ".<name>.<host>.<pid>.<random>.tmp" (outputs.TEMP_PATTERN)


# -- data ------------------------------------------------------------------------------------


@functools.cache
def _wine_base() -> pd.DataFrame:
    frame: pd.DataFrame = load_wine(as_frame=True).data.copy()
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def wine(rows: int = 10) -> pd.DataFrame:
    """``rows`` wine rows (the data set repeated as needed): ``id`` then the 13 features."""
    base = _wine_base()
    repeats = max(1, -(-rows // len(base)))
    frame = pd.concat([base] * repeats, ignore_index=True).head(rows).copy()
    frame["id"] = np.arange(1, rows + 1, dtype=np.int64)
    return frame


def with_text(frame: pd.DataFrame, data_row: int, column: str, value: str) -> pd.DataFrame:
    """A copy whose 1-based data row ``data_row`` holds ``value`` (text) in ``column``."""
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[data_row - 1, column] = value
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def write_parquet(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


def random_bytes(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


def temp_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if TEMP_NAME.match(p.name))


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without MODELROUTER_* (so a developer's settings cannot leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    env.update(extra or {})
    return env


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELROUTER), *args],
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


# -- scenarios -------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One run: arguments, the output path it targets and what stderr must name."""

    args: list[str]
    output: Path
    code: int
    needles: list[str | re.Pattern[str]] = field(default_factory=list)
    row: int | None = None  # the 1-based data row the error must name
    preexisting: bool = False  # put PREVIOUS at the output path first; it must survive
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    scenario: Scenario
    folder: Path
    proc: subprocess.CompletedProcess[str]
    output_was_dir: bool  # a directory stood at the output path before the run
    folder_existed: bool  # the output's folder existed before the run


Builder = Callable[[Path], Scenario]
CASES: dict[str, Builder] = {}


def case(builder: Builder) -> Builder:
    CASES[builder.__name__] = builder
    return builder


# Input data errors (exit 3).


@case
def missing_feature_columns(d: Path) -> Scenario:
    src = write_csv(wine().drop(columns=["alcohol", "ash", "proline"]), d / "partial.csv")
    # No -o: the default output beside the input must not appear either.
    return Scenario(
        ["predict", str(src)],
        d / "partial.predictions.csv",
        EXIT_DATA,
        ["partial.csv", "'alcohol'", "'ash'", "'proline'"],
    )


@case
def parquet_truncated(d: Path) -> Scenario:
    whole = write_parquet(wine(), d / "whole.parquet").read_bytes()
    src = d / "truncated.parquet"
    src.write_bytes(whole[: len(whole) // 2])  # an interrupted copy: no footer
    out = d / "out.parquet"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_DATA, ["truncated.parquet"], preexisting=True
    )


@case
def parquet_corrupt_column_chunk(d: Path) -> Scenario:
    """Footer intact, one column chunk of the 3rd row group garbled: fails mid-run."""
    src = write_parquet(wine(178), d / "garbled.parquet", row_group_size=50)
    column = pq.ParquetFile(src).metadata.row_group(2).column(5)
    data = bytearray(src.read_bytes())
    start = column.data_page_offset
    for i in range(start, start + column.total_compressed_size):
        data[i] ^= 0xFF
    src.write_bytes(bytes(data))
    out = d / "out.csv"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out), "--chunk-size", "10"],
        out,
        EXIT_DATA,
        ["garbled.parquet"],
    )


@case
def csv_empty_file(d: Path) -> Scenario:
    src = d / "empty.csv"
    src.write_bytes(b"")
    return Scenario(["predict", *ONNX, str(src)], d / "empty.predictions.csv", EXIT_DATA, ["empty.csv"])


@case
def csv_header_not_utf8(d: Path) -> Scenario:
    src = d / "latin1.csv"
    text = wine().rename(columns={"alcohol": "alcoöl"}).to_csv(index=False)
    src.write_bytes(text.encode("latin-1"))
    out = d / "out.csv"
    return Scenario(["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_DATA, ["latin1.csv"])


@case
def csv_unconvertible_row5(d: Path) -> Scenario:
    src = write_csv(with_text(wine(), 5, "alcohol", "abc"), d / "typo.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out)], out, EXIT_DATA, ["typo.csv", "'alcohol'", "abc"], row=5
    )


@case
def csv_unconvertible_row1234_later_chunk(d: Path) -> Scenario:
    src = write_csv(with_text(wine(3000), 1234, "color_intensity", "oops"), d / "long.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "--chunk-size", "500", "--workers", "2"],
        out,
        EXIT_DATA,
        ["long.csv", "'color_intensity'", "oops"],
        row=1234,
        preexisting=True,
    )


@case
def parquet_unconvertible_row8(d: Path) -> Scenario:
    frame = wine()
    frame["proline"] = frame["proline"].map(str)
    frame = with_text(frame, 8, "proline", "n/a")
    src = write_parquet(frame, d / "text.parquet", row_group_size=3)
    out = d / "out.parquet"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out), "--chunk-size", "2"],
        out,
        EXIT_DATA,
        ["text.parquet", "'proline'", "n/a"],
        row=8,
    )


@case
def csv_infinite_value_rejected(d: Path) -> Scenario:
    frame = wine()
    frame.loc[6, "hue"] = np.inf  # data row 7
    src = write_csv(frame, d / "inf.csv")
    out = d / "out.csv"
    return Scenario(["predict", str(src), "-o", str(out)], out, EXIT_DATA, ["inf.csv", "'hue'"], row=7)


@case
def csv_ragged_row(d: Path) -> Scenario:
    lines = wine().to_csv(index=False).splitlines()
    lines[4] += ",1,2"  # data row 4 has two fields too many
    src = d / "ragged.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = d / "out.csv"
    return Scenario(["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_DATA, ["ragged.csv"])


@case
def csv_duplicate_column(d: Path) -> Scenario:
    frame = wine()
    src = write_csv(pd.concat([frame, frame[["hue"]]], axis=1), d / "twice.csv")
    out = d / "out.csv"
    return Scenario(["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_DATA, ["twice.csv", "'hue'"])


@case
def input_not_found(d: Path) -> Scenario:
    out = d / "out.csv"
    return Scenario(["predict", *ONNX, str(d / "absent.csv"), "-o", str(out)], out, EXIT_DATA, ["absent.csv"])


@case
def input_unknown_format(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.txt")
    out = d / "out.csv"
    return Scenario(["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_DATA, ["wine.txt", ".txt"])


@case
def keep_column_not_in_input(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out), "-k", "id", "-k", "customer"],
        out,
        EXIT_DATA,
        ["wine.csv", "'customer'"],
    )


# Model and configuration errors (exit 4).


@case
def model_file_missing(d: Path) -> Scenario:
    assert not Path("/nonexistent.pkl").exists()
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-m", "/nonexistent.pkl"], out, EXIT_MODEL, ["/nonexistent.pkl"]
    )


@case
def model_pickle_random_bytes(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    model = d / "garbage.pkl"
    model.write_bytes(random_bytes(2))
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-m", str(model)],
        out,
        EXIT_MODEL,
        ["garbage.pkl"],
        preexisting=True,
    )


@case
def model_onnx_random_bytes(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    model = d / "garbage.onnx"
    model.write_bytes(random_bytes(3))
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-m", str(model)], out, EXIT_MODEL, ["garbage.onnx"]
    )


@case
def model_pickle_not_an_estimator(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    model = d / "settings.pkl"
    joblib.dump({"threshold": 0.5}, model)
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-m", str(model)], out, EXIT_MODEL, ["settings.pkl"]
    )


@case
def model_sha256_mismatch(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-m", str(SHIPPED_PICKLE), "--sha256", "0" * 64],
        out,
        EXIT_MODEL,
        ["classifier.pkl", re.compile("sha256", re.IGNORECASE)],
        preexisting=True,
    )


@case
def config_unknown_top_level_key(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    config = d / "typo.toml"
    config.write_text(
        f'default_model_typ = "sklearn"\n\n[sklearn]\npath = "{SHIPPED_PICKLE.as_posix()}"\n',
        encoding="utf-8",
    )
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-c", str(config)],
        out,
        EXIT_MODEL,
        ["typo.toml", "'default_model_typ'"],
        preexisting=True,
    )


@case
def config_unknown_section_key(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    config = d / "typo.toml"
    config.write_text(f'[sklearn]\npath = "{SHIPPED_PICKLE.as_posix()}"\npoolsize = 4\n', encoding="utf-8")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out)],
        out,
        EXIT_MODEL,
        ["typo.toml", "poolsize"],
        env={"MODELROUTER_CONFIG": str(config)},  # the environment variable is the same as -c
    )


@case
def config_not_found(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-c", str(d / "absent.toml")], out, EXIT_MODEL, ["absent.toml"]
    )


@case
def config_not_toml(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    config = d / "broken.toml"
    config.write_text("[sklearn\npath = 'x.pkl'\n", encoding="utf-8")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-c", str(config)], out, EXIT_MODEL, ["broken.toml"]
    )


@case
def onnx_disabled_by_environment(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-t", "onnx"],
        out,
        EXIT_MODEL,
        [re.compile("enable_onnx", re.IGNORECASE)],
        env={"MODELROUTER_ENABLE_ONNX": "0"},
    )


@case
def predict_proba_on_regressor(d: Path) -> Scenario:
    features = wine(178).drop(columns=["id"])
    model = d / "regressor.pkl"
    joblib.dump(LinearRegression().fit(features, features["alcohol"] * 2), model)
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict-proba", str(src), "-o", str(out), "-m", str(model)], out, EXIT_MODEL, ["regressor.pkl"]
    )


# Output errors (exit 5).


@case
def output_folder_missing(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "no_such_folder" / "out.csv"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_OUTPUT, ["no_such_folder", "out.csv"]
    )


@case
def output_unknown_format(d: Path) -> Scenario:
    # The command line's mistake, found before anything is read: a usage error naming the
    # supported formats.
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.txt"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out)],
        out,
        EXIT_USAGE,
        ["out.txt", ".txt", ".parquet"],
        preexisting=True,
    )


@case
def output_xlsx(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.xlsx"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out)], out, EXIT_USAGE, ["out.xlsx", "'.xlsx'", ".csv"]
    )


@case
def output_folder_with_trailing_slash_missing(d: Path) -> Scenario:
    # An existing folder as -o gets the default file name inside it (like cp); a folder
    # that does not exist is an output error naming it.
    src = write_csv(wine(), d / "wine.csv")
    out = d / "scored"
    return Scenario(["predict", *ONNX, str(src), "-o", f"{out}/"], out, EXIT_OUTPUT, ["scored/"])


@case
def stats_json_folder_missing(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    stats = d / "no_such_folder" / "stats.json"
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out), "--stats-json", str(stats)],
        out,
        EXIT_OUTPUT,
        ["stats.json"],
    )


@case
def stats_json_path_is_a_directory(d: Path) -> Scenario:
    """The folder exists, yet the JSON cannot be written: the scored output must not stay."""
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    stats = d / "stats.json"
    stats.mkdir()
    return Scenario(
        ["predict", *ONNX, str(src), "-o", str(out), "--stats-json", str(stats)],
        out,
        EXIT_OUTPUT,
        ["stats.json"],
    )


# Usage errors (exit 2).


@case
def unknown_option(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(["predict", str(src), "-o", str(out), "--bogus"], out, EXIT_USAGE, ["--bogus"])


@case
def chunk_size_zero(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "--chunk-size", "0"], out, EXIT_USAGE, ["--chunk-size"]
    )


@case
def sha256_not_hex(d: Path) -> Scenario:
    src = write_csv(wine(), d / "wine.csv")
    out = d / "out.csv"
    return Scenario(
        ["predict", str(src), "-o", str(out), "-m", str(SHIPPED_PICKLE), "--sha256", "xyz"],
        out,
        EXIT_USAGE,
        ["--sha256"],
        preexisting=True,
    )


# Not errors, or checked differently.


@case
def header_only_csv(d: Path) -> Scenario:
    src = write_csv(wine(0), d / "header.csv")
    out = d / "out.csv"
    return Scenario(["predict", str(src), "-o", str(out), "-k", "id"], out, EXIT_OK)


@case
def header_only_parquet_proba(d: Path) -> Scenario:
    src = write_parquet(wine(0), d / "header.parquet")
    return Scenario(["predict-proba", str(src), "-k", "id"], d / "header.predictions.parquet", EXIT_OK)


@case
def debug_data_error(d: Path) -> Scenario:
    scenario = csv_unconvertible_row5(d)
    scenario.args.append("--debug")
    return scenario


ERROR_CASES = [name for name in CASES if not name.startswith(("header_only", "debug_"))]


# -- running ---------------------------------------------------------------------------------


def _selected_cases(request: pytest.FixtureRequest) -> set[str]:
    """The cases the selected tests of this module ask for (all when none can be told)."""
    wanted: set[str] = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is not request.module or callspec is None:
            continue
        for value in callspec.params.values():
            names = value if isinstance(value, tuple) else (value,)
            wanted.update(n for n in names if isinstance(n, str) and n in CASES)
    return wanted or set(CASES)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run the needed scenarios, a few at a time (each run is mostly interpreter start-up)."""
    names = sorted(_selected_cases(request))
    # Build every scenario's files here (pandas, sklearn), then only the runs go in parallel.
    prepared: dict[str, tuple[Path, Scenario, bool, bool]] = {}
    for name in names:
        folder = tmp_path_factory.mktemp(name)
        scenario = CASES[name](folder)
        if scenario.preexisting:
            scenario.output.write_bytes(PREVIOUS)
        prepared[name] = (folder, scenario, scenario.output.is_dir(), scenario.output.parent.is_dir())

    def run(name: str) -> Outcome:
        folder, scenario, output_was_dir, folder_existed = prepared[name]
        proc = run_cli(scenario.args, folder, scenario.env)
        return Outcome(scenario, folder, proc, output_was_dir, folder_existed)

    with ThreadPoolExecutor(max_workers=max(2, 2 * (os.cpu_count() or 1))) as pool:
        return dict(zip(names, pool.map(run, names), strict=True))


def _report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def assert_nothing_written(outcome: Outcome) -> None:
    """No output file at the output path (or the old one untouched), no temporary left."""
    output = outcome.scenario.output
    if outcome.scenario.preexisting:
        assert output.read_bytes() == PREVIOUS, "the existing output file was modified"
    elif outcome.output_was_dir:
        assert output.is_dir(), "the directory at the output path was replaced"
        assert list(output.iterdir()) == [], "something was written into the directory at the output path"
    else:
        assert not os.path.lexists(output), f"{output} was left after a failed run"
    if outcome.folder_existed:
        assert temp_files(output.parent) == [], "a temporary file was left in the output folder"
    else:
        assert not output.parent.exists(), "the missing output folder was created"
    assert temp_files(outcome.folder) == [], "a temporary file was left in the run folder"


def assert_clean_error(outcome: Outcome) -> None:
    scenario, proc = outcome.scenario, outcome.proc
    details = _report(proc)
    assert proc.returncode == scenario.code, details
    assert "Traceback" not in proc.stderr, details
    assert proc.stdout == "", details
    if scenario.code == EXIT_USAGE:
        assert "Usage:" in proc.stderr, details
        assert "Error:" in proc.stderr, details
    else:
        assert proc.stderr.startswith("error:"), details
        assert 1 <= len(proc.stderr.strip().splitlines()) <= 2, details
    for needle in scenario.needles:
        if isinstance(needle, re.Pattern):
            assert needle.search(proc.stderr), f"stderr does not match {needle.pattern!r}\n{details}"
        else:
            assert needle in proc.stderr, f"stderr does not name {needle!r}\n{details}"
    if scenario.row is not None:
        assert re.search(rf"\brow {scenario.row}\b", proc.stderr), f"row {scenario.row} not named\n{details}"
    assert_nothing_written(outcome)


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ERROR_CASES)
def test_error_case(name: str, outcomes: dict[str, Outcome]) -> None:
    assert_clean_error(outcomes[name])


@pytest.mark.parametrize("name", ["header_only_csv"])
def test_header_only_csv_gives_header_only_output(name: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[name]
    assert outcome.proc.returncode == EXIT_OK, _report(outcome.proc)
    assert "error:" not in outcome.proc.stderr
    with outcome.scenario.output.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["id", "prediction"]]
    assert temp_files(outcome.folder) == []


@pytest.mark.parametrize("name", ["header_only_parquet_proba"])
def test_header_only_parquet_gives_empty_table(name: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[name]
    assert outcome.proc.returncode == EXIT_OK, _report(outcome.proc)
    table = pq.read_table(outcome.scenario.output)
    assert table.num_rows == 0
    assert table.column_names == ["id", "proba_class_0", "proba_class_1", "proba_class_2"]
    assert temp_files(outcome.folder) == []


@pytest.mark.parametrize("names", [("debug_data_error", "csv_unconvertible_row5")], ids=["row5"])
def test_debug_shows_traceback_only_when_asked(names: tuple[str, str], outcomes: dict[str, Outcome]) -> None:
    debug, plain = (outcomes[n] for n in names)
    assert debug.proc.returncode == plain.proc.returncode == EXIT_DATA, _report(debug.proc)
    assert "Traceback (most recent call last)" in debug.proc.stderr, _report(debug.proc)
    assert "Traceback" not in plain.proc.stderr, _report(plain.proc)
    last = debug.proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:"), _report(debug.proc)
    assert re.search(r"\brow 5\b", last), _report(debug.proc)
    assert_nothing_written(debug)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_output_folder_read_only(tmp_path: Path) -> None:
    src = write_csv(wine(), tmp_path / "wine.csv")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        out = folder / "out.csv"
        proc = run_cli(["predict", str(src), "-o", str(out)], tmp_path)
        assert proc.returncode == EXIT_OUTPUT, _report(proc)
        assert proc.stderr.startswith("error:"), _report(proc)
        assert "out.csv" in proc.stderr, _report(proc)
        assert "Traceback" not in proc.stderr
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


# -- interruption ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~1.5 M wine rows in small row groups: scoring takes several seconds."""
    base = _wine_base()
    repeats = -(-1_500_000 // len(base))
    columns = {"id": pa.array(np.arange(1, repeats * len(base) + 1, dtype=np.int64))}
    for name in base.columns[1:]:
        columns[name] = pa.array(np.tile(base[name].to_numpy(dtype=np.float64), repeats))
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=10_000)
    return path


@pytest.fixture
def popen_cleanup() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(
    ("signum", "code", "preexisting"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)],
    ids=["SIGTERM", "SIGINT-existing-output"],
)
def test_signal_while_scoring(
    signum: signal.Signals,
    code: int,
    preexisting: bool,
    big_parquet: Path,
    tmp_path: Path,
    popen_cleanup: list[subprocess.Popen[str]],
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "scored.parquet"
    if preexisting:
        out.write_bytes(PREVIOUS)
    args = ["predict", str(big_parquet), "-o", str(out), "--chunk-size", "2000", "--workers", "2"]
    proc = subprocess.Popen(
        [str(MODELROUTER), *args],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    popen_cleanup.append(proc)
    # The temporary file appears once the model is loaded and scoring starts; signal then, so
    # the signal lands mid-run (not during interpreter start-up, before any handler exists).
    deadline = time.monotonic() + 10.0
    while not temp_files(folder) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        stdout, stderr = proc.communicate(timeout=5.0)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 5 s after {signum.name}")
    elapsed = time.monotonic() - sent
    details = f"exit {proc.returncode} after {elapsed:.2f} s\n--- stderr ---\n{stderr}"
    assert proc.returncode == code, details
    assert elapsed < 5.0, details
    assert stdout == "", details
    assert stderr.startswith("error:"), details
    assert signum.name in stderr, details
    assert "Traceback" not in stderr, details
    if preexisting:
        assert out.read_bytes() == PREVIOUS, "the existing output file was modified"
    else:
        assert not os.path.lexists(out), "an output file was left after the interruption"
    assert temp_files(folder) == [], "a temporary file was left after the interruption"
