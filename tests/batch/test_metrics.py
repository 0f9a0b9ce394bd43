"""--metrics-textfile: Prometheus text format, parsed by prometheus_client's strict parser."""

from __future__ import annotations

from pathlib import Path

from modelrouter.cli.main import app
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def families(path: Path) -> dict[str, dict[str, float]]:
    parsed: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge"
        assert family.documentation
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[sample.labels.get("model_type", "")] = sample.value
    return parsed


def test_successful_run_metrics(tmp_path: Path) -> None:
    prom = tmp_path / "modelrouter.prom"
    args = ["predict", str(ROOT / "sample_data" / "wine.parquet"), "-o", str(tmp_path / "o.parquet")]
    args += ["-t", "onnx", "--chunk-size", "50", "-q", "--metrics-textfile", str(prom)]
    assert CliRunner().invoke(app, args).exit_code == 0
    metrics = families(prom)
    assert metrics["modelrouter_rows_in"] == {"onnx": 178}
    assert metrics["modelrouter_rows_out"] == {"onnx": 178}
    assert metrics["modelrouter_chunks"] == {"onnx": 4}
    assert metrics["modelrouter_pool_borrows"] == {"onnx": 4}
    assert metrics["modelrouter_pool_available"] == metrics["modelrouter_pool_size"]
    assert metrics["modelrouter_last_run_success"] == {"onnx": 1}
    assert metrics["modelrouter_last_run_exit_code"] == {"onnx": 0}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_failed_run_writes_success_zero_and_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,alcohol\n1,2\n")
    prom = tmp_path / "modelrouter.prom"
    args = [
        "predict",
        str(bad),
        "-o",
        str(tmp_path / "o.csv"),
        "-t",
        "sklearn",
        "--metrics-textfile",
        str(prom),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3
    metrics = families(prom)
    assert metrics["modelrouter_last_run_success"] == {"sklearn": 0}
    assert metrics["modelrouter_last_run_exit_code"] == {"sklearn": 3}
    assert not (tmp_path / "o.csv").exists()
