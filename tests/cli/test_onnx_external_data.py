"""ONNX external data is read from the model's own folder, never from the working directory,
never from outside that folder, and a sha256 pin (which covers the .onnx bytes only) refuses
a model with external data instead of vouching for weights it never saw."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

MODELROUTER = Path(sys.executable).parent / "modelrouter"
EXIT_MODEL = 4


def save_scaler(folder: Path, weight: float, location: str = "weights.bin") -> Path:
    """``y = x * w`` with ``w`` kept in the external file ``location``."""
    w = numpy_helper.from_array(np.full((1, 1), weight, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location=location, size_threshold=0)
    return path


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The model (weights 1245.0) in ``model/``, a decoy ``weights.bin`` (1245000.0) in ``decoy/``."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model = save_scaler(model_dir, 1245.0)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    save_scaler(decoy, 1245000.0)  # its own weights.bin, same layout
    data = tmp_path / "x.csv"
    data.write_text("x\n1\n2\n")
    return model, decoy, data


def test_external_data_is_read_beside_the_model_from_any_working_directory(
    layout: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    model, decoy, data = layout
    outputs = []
    for cwd in (decoy, tmp_path):  # one folder holds another weights.bin, one holds none
        out = tmp_path / f"out-{cwd.name}.csv"
        result = run("predict", data, "-m", model, "-o", out, "--no-stats", cwd=cwd)
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == "prediction\n1245\n2490\n"


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path, location: str) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    if location.startswith(".."):
        save_scaler(tmp_path, 7.0, "outside.bin")  # a real file there, so only the rule refuses
    model = save_scaler(model_dir, 1.0)
    proto = onnx.load_model(model, load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    model.write_bytes(proto.SerializeToString())
    data = tmp_path / "x.csv"
    data.write_text("x\n1\n")
    out = tmp_path / "out.csv"
    result = run("predict", data, "-m", model, "-o", out, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL, result.stderr
    assert "outside the model's folder" in result.stderr and "model.onnx" in result.stderr
    assert not out.exists()


def test_a_pin_refuses_external_data_saying_why(layout: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, _, data = layout
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    out = tmp_path / "out.csv"
    result = run("predict", data, "-m", model, "--sha256", digest, "-o", out, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL, result.stderr
    assert "external data (weights.bin)" in result.stderr and "pin does not cover" in result.stderr
    assert not out.exists()
    config = tmp_path / "modelrouter.toml"
    config.write_text(f'[onnx]\npath = "model/model.onnx"\nsha256 = "{digest}"\n')
    result = run("inspect", model, "-c", config, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL
    assert "pin does not cover" in result.stderr + result.stdout
