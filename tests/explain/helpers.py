"""Tiny models and data for the explanation tests, and the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

COLUMNS = ["a", "b", "c", "d"]


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((rows, len(COLUMNS))), columns=COLUMNS)


def target(data: pd.DataFrame, classes: int) -> np.ndarray:
    """A regression target (classes 0) or balanced class labels from a non-linear score."""
    score = data["a"] + data["b"] * data["c"] + 0.5 * np.sin(2 * data["d"])
    if classes == 0:
        return np.asarray(score.to_numpy(), dtype=np.float64)
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    return np.asarray(np.digitize(score, edges))


def save(model: Any, folder: Path, name: str = "model.pkl") -> Path:
    path = folder / name
    joblib.dump(model, path)
    return path


ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def modelrouter(*args: str | Path | int, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it (no config from the environment)."""
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def shap_values(model: Any, data: pd.DataFrame, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: ``shap.TreeExplainer(model)`` for each row's explained output column."""
    import shap

    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(data))
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    rows = np.arange(len(data))
    if values.ndim == 3:  # (rows, features, outputs)
        return values[rows, :, column], expected[column]
    return values, np.full(len(data), expected[0])
