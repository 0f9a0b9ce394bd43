"""European spreadsheet exports (``;`` between fields, ``14,23`` in numbers) and output names,
end to end through the real command: the exact flags in the error, the input's decimal mark
in the output, an unknown output suffix as a usage error."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pd.read_csv(ROOT / "sample_data" / "wine.csv")


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


def _export(tmp_path: Path, sep: str, decimal: str, name: str = "wine.excel.csv") -> Path:
    source = tmp_path / name
    WINE.to_csv(source, sep=sep, decimal=decimal, index=False)
    return source


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("sep", "decimal", "given", "flags"),
    [
        # Excel in de-DE/fr-FR: both flags are missing.
        (";", ",", [], "--delimiter ';' --decimal ','"),
        # The delimiter given, the decimal comma not.
        (";", ",", ["--delimiter", ";"], "--decimal ','"),
        # ';' with dot decimals (some exports): only the delimiter.
        (";", ".", [], "--delimiter ';'"),
        # Tabs with decimal commas.
        ("\t", ",", [], "--delimiter tab --decimal ','"),
    ],
)
def test_an_export_in_another_dialect_names_the_exact_flags(
    tmp_path: Path, sep: str, decimal: str, given: list[str], flags: str
) -> None:
    source = _export(tmp_path, sep, decimal)
    out = tmp_path / "scored.csv"
    done = run_cli("predict", source, "-o", out, "--no-stats", "-k", "id", *given)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}: "), done.stderr
    assert lines[0].endswith(f": pass {flags}"), done.stderr
    assert not out.exists()
    # The flags the message names read the file: the predictions are those of the plain file.
    argv = [a.strip("'") for a in flags.split()]
    done = run_cli("predict", source, "-o", out, "--no-stats", "-k", "id", *given, *argv)
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference.csv"
    assert (
        run_cli(
            "predict", ROOT / "sample_data" / "wine.csv", "-o", reference, "--no-stats", "-k", "id"
        ).returncode
        == 0
    )
    scored = pd.read_csv(out, sep=None, engine="python")
    assert scored["prediction"].tolist() == pd.read_csv(reference)["prediction"].tolist()


def test_a_plain_file_read_with_decimal_comma_is_told_to_drop_it(tmp_path: Path) -> None:
    done = run_cli(
        "predict", ROOT / "sample_data" / "wine.csv", "-o", tmp_path / "o.csv", "-k", "id", "--decimal", ","
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.rstrip().endswith("pass --delimiter ',' --decimal '.'"), done.stderr


@pytest.mark.parametrize("output", ["scored.csv", "-"])
def test_with_decimal_comma_numbers_are_written_with_a_decimal_comma(tmp_path: Path, output: str) -> None:
    source = _export(tmp_path, ";", ",")
    target = output if output == "-" else tmp_path / output
    done = run_cli(
        "predict", source, "-o", target, "--no-stats", "-k", "id", "-k", "alcohol",
        "--with-proba", "--delimiter", ";", "--decimal", ",",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout if output == "-" else Path(target).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "id;alcohol;prediction;proba_class_0;proba_class_1;proba_class_2"
    # Kept cells as read; probabilities with the input's decimal comma, never a point.
    assert lines[1].startswith("1;14,23;class_0;0,99")
    body = "\n".join(lines[1:])
    assert "." not in body
    frame = pd.read_csv(io.StringIO(text), sep=";", decimal=",")
    assert frame["proba_class_0"].between(0, 1).all() and len(frame) == len(WINE)


@pytest.mark.parametrize("name", ["out.xlsx", "out.json", "out"])
def test_an_unknown_output_suffix_is_a_usage_error_naming_the_supported_ones(
    tmp_path: Path, name: str
) -> None:
    done = run_cli("predict", ROOT / "sample_data" / "wine.csv", "-o", tmp_path / name, "--no-stats")
    assert done.returncode == 2, done.stderr
    assert "Invalid value for --output" in done.stderr
    assert "known: .csv, .jsonl, .ndjson, .parquet, .pq, .tsv; csv and jsonl also compressed" in done.stderr
    assert "pass --output-format" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_compare_takes_the_same_input_options_as_predict(tmp_path: Path) -> None:
    source = _export(tmp_path, ";", ",")
    done = run_cli("compare", source, "--json")
    assert done.returncode == 3, done.stderr
    assert done.stderr.rstrip().endswith("pass --delimiter ';' --decimal ','")
    done = run_cli("compare", source, "--json", "--delimiter", ";", "--decimal", ",")
    assert done.returncode == 0, done.stderr
    plain = run_cli("compare", ROOT / "sample_data" / "wine.csv", "--json")
    assert plain.returncode == 0, plain.stderr
    import json

    ours, theirs = json.loads(done.stdout), json.loads(plain.stdout)
    assert ours["comparisons"] == theirs["comparisons"] and ours["passed"]
    done = run_cli("compare", source, "--delimiter", ";;")
    assert done.returncode == 2 and "Invalid value for --delimiter" in done.stderr
