"""Injected faults: a failing model, a full disk, signals at each stage, tampered models.

These run the CLI in-process (typer's CliRunner) so a fault can be planted exactly where it
must strike; the signal handler's hard exit is replaced by SystemExit for the same reason.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import modelrouter.batch.chunk_loop
import modelrouter.batch.dataio
import modelrouter.batch.output_columns
import modelrouter.batch.run
import modelrouter.cli.exits
import numpy as np
import pandas as pd
import pytest
from modelrouter import ModelPool, ModelType, PoolTimeoutError, get_router
from modelrouter.backends.base import Prediction, RawOutput
from modelrouter.backends.sklearn_backend import SklearnModel
from modelrouter.cli.exits import Interrupted
from modelrouter.cli.main import app
from modelrouter.features import Frame, frame_length
from typer.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CSV = ROOT / "sample_data" / "wine.csv"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def _no_hard_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    def soft_exit(code: int) -> NoReturn:
        raise SystemExit(code)

    monkeypatch.setattr(modelrouter.cli.exits, "hard_exit", soft_exit)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    frame = pd.read_csv(SAMPLE_CSV)
    big = pd.concat([frame] * 20, ignore_index=True)  # 3,560 rows
    big["id"] = np.arange(len(big))
    path = tmp_path / "in.csv"
    big.to_csv(path, index=False)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


class FailingOnChunk(SklearnModel):
    """The real sklearn backend, except that scoring a frame holding id 1234 raises."""

    calls = 0
    lock = threading.Lock()

    def _infer(
        self, frame: Frame, features: Sequence[str], *, labels: bool, probabilities: bool
    ) -> Prediction | RawOutput:
        with FailingOnChunk.lock:
            FailingOnChunk.calls += 1
        if frame_length(frame) > 1000:
            raise RuntimeError("GPU fell off the bus")
        return super()._infer(frame, features, labels=labels, probabilities=probabilities)


@pytest.fixture
def failing_backend(monkeypatch: pytest.MonkeyPatch) -> list[ModelPool]:
    from modelrouter import load_pool as real_load

    pools: list[ModelPool] = []

    def load_failing(*args: Any, **kwargs: Any) -> ModelPool:
        pool = real_load(*args, **kwargs)
        instances = [FailingOnChunk(m.path, m.estimator) for m in pool._instances]  # type: ignore[attr-defined]
        wrapped = ModelPool(ModelType.SKLEARN, instances)
        pools.append(wrapped)
        return wrapped

    monkeypatch.setattr("modelrouter.batch.run.load_pool", load_failing)
    return pools


def test_model_raising_on_one_chunk_exits_4_pool_intact(
    data: Path, tmp_path: Path, failing_backend: list[ModelPool]
) -> None:
    out = tmp_path / "out.parquet"
    result = invoke("predict", data, "-o", out, "--chunk-size", "500", "-w", "2")
    # The last chunk (60 rows) is fine, a 500-row one is fine: make one chunk big.
    assert result.exit_code == 0, result.output
    out.unlink()
    result = invoke("predict", data, "-o", out, "--chunk-size", "2000", "-w", "2")
    assert result.exit_code == 4
    assert "the model failed while predicting (RuntimeError: GPU fell off the bus)" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert leftovers(tmp_path) == []
    # A worker already scoring another chunk finishes it before returning its instance (the
    # run does not wait for it: modelrouter.batch.scoring); the failing chunk itself is narrowed
    # down to a row first (halves of it scored again), so that can take a moment.
    deadline = time.monotonic() + 10
    stats = failing_backend[-1].stats()
    while stats.available != stats.size and time.monotonic() < deadline:
        time.sleep(0.02)
        stats = failing_backend[-1].stats()
    assert stats.available == stats.size
    assert stats.errors >= 1


def test_disk_full_mid_run(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.csv"
    out.write_text("yesterday's predictions\n")
    real_open = modelrouter.batch.dataio.AtomicOutput._open

    class FillingDisk:
        """Wraps pyarrow's writer: the third batch finds the disk full."""

        def __init__(self, inner: Any) -> None:
            self.inner, self.batches = inner, 0

        def write_batch(self, batch: Any) -> None:
            self.batches += 1
            if self.batches == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.inner.write_batch(batch)

        def close(self) -> None:
            self.inner.close()

    def open_filling(self: modelrouter.batch.dataio.AtomicOutput) -> None:
        real_open(self)
        self._writer = FillingDisk(self._writer)

    monkeypatch.setattr(modelrouter.batch.dataio.AtomicOutput, "_open", open_filling)
    result = invoke("predict", data, "-o", out, "--chunk-size", "300")
    assert result.exit_code == 5
    assert f"error: {out}: write failed (no space left on device)" in result.output
    assert out.read_text() == "yesterday's predictions\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("stage", ["read", "score", "rename"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_each_stage_cleans_up(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, signum: int
) -> None:
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous")

    def interrupt(*args: Any, **kwargs: Any) -> NoReturn:
        raise Interrupted(signum)

    if stage == "read":
        real_rechunk = modelrouter.batch.dataio.rechunk

        def rechunk(batches: Any, size: int, schema: Any) -> Iterator[Any]:
            for i, batch in enumerate(real_rechunk(batches, size, schema)):
                if i == 2:
                    interrupt()
                yield batch

        monkeypatch.setattr(modelrouter.batch.dataio, "rechunk", rechunk)
    elif stage == "score":
        real_consume_target = modelrouter.batch.output_columns.output_batch
        calls = {"n": 0}

        def output_batch(*args: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 3:
                interrupt()
            return real_consume_target(*args)

        monkeypatch.setattr(modelrouter.batch.chunk_loop, "output_batch", output_batch)
    else:
        monkeypatch.setattr("modelrouter.storage.commit.os.replace", interrupt)

    result = invoke("predict", data, "-o", out, "--chunk-size", "300", "-w", "1")
    assert result.exit_code == 128 + signum
    assert f"interrupted by {signal.Signals(signum).name}" in result.output
    assert out.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_model_replaced_after_configuration_is_refused(tmp_path: Path, data: Path) -> None:
    model = tmp_path / "model.pkl"
    shutil.copy(ROOT / "models" / "classifier.pkl", model)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    config = tmp_path / "modelrouter.toml"
    config.write_text(f'[sklearn]\npath = "model.pkl"\nsha256 = "{digest}"\n')
    assert invoke("predict", data, "-c", config, "-o", tmp_path / "ok.csv", "-q").exit_code == 0
    # Someone swaps the file for another model after the config was written.
    from sklearn.dummy import DummyClassifier

    frame = pd.read_csv(SAMPLE_CSV)
    import joblib

    joblib.dump(DummyClassifier().fit(frame.drop(columns="id"), frame["id"] % 2), model)
    out = tmp_path / "out.csv"
    result = invoke("predict", data, "-c", config, "-o", out)
    assert result.exit_code == 4
    assert f"{model}: sha256 is " in result.output
    assert f"expected {digest}; refusing to load" in result.output
    assert not out.exists()


def test_sha256_flag_pins_a_model_given_with_m(tmp_path: Path, data: Path) -> None:
    model = ROOT / "models" / "classifier.onnx"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    ok = invoke("predict", data, "-m", model, "--sha256", digest, "-o", tmp_path / "ok.csv", "-q")
    assert ok.exit_code == 0
    bad = invoke("predict", data, "-m", model, "--sha256", "f" * 64, "-o", tmp_path / "bad.csv")
    assert bad.exit_code == 4
    assert "refusing to load a model that differs from the pinned one" in bad.output
    usage = invoke("predict", data, "-m", model, "--sha256", "xyz", "-o", tmp_path / "bad.csv")
    assert usage.exit_code == 2


def test_pool_timeout_is_an_error_not_a_hang() -> None:
    pool = ModelPool.load(ModelType.SKLEARN, ROOT / "models" / "classifier.pkl", size=2)
    router = get_router()
    router.register(ModelType.SKLEARN, pool)
    with (
        router.acquire_model(),
        router.acquire_model(),
        pytest.raises(PoolTimeoutError, match="2 of 2 in use"),
        router.acquire_model(timeout=0.2),
    ):
        pass
    assert pool.stats().available == 2
