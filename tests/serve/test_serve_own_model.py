"""``serve -m mine.pkl [--sha256 …] [-t …]`` as ``predict`` takes a model, ``-q`` keeping the
listening line (stdout), and client errors kept out of the pool's ``errors``."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import joblib
import pytest

from tests.serve.test_serve import (
    FEATURES,
    MODELROUTER,
    _requests_by_status,
    _row,
    json_body,
    start_server,
    stats,
    wine_rows,
)


@pytest.fixture(scope="module")
def mine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.tree import DecisionTreeClassifier

    folder = tmp_path_factory.mktemp("mine")
    frame = wine_rows(178)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(frame[FEATURES], frame["id"] % 2)
    path = folder / "mine.model"  # no known suffix: -t says the type
    joblib.dump(model, path)
    return path


def test_serve_own_model_quietly_with_pin(mine: Path, tmp_path: Path) -> None:
    digest = hashlib.sha256(mine.read_bytes()).hexdigest()
    server = start_server(["-m", str(mine), "-t", "sklearn", "--sha256", digest, "-q"], cwd=tmp_path)
    try:
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["model_types"] == ["sklearn"]  # that model alone
        frame = wine_rows(6)
        answer = httpx.post(f"{server.url}/predict", json=json_body(frame))
        assert answer.status_code == 200, answer.text
        model = joblib.load(mine)
        assert answer.json()["predictions"] == model.predict(frame[FEATURES]).tolist()
        # A bad value is the client's error: a 422 in /metrics, not a pool error.
        before = stats(server)["pools"]["sklearn"]["errors"]
        bad = httpx.post(f"{server.url}/predict", json={"rows": [_row(ash="n/a")]})
        assert bad.status_code == 422
        assert stats(server)["pools"]["sklearn"]["errors"] == before
        assert _requests_by_status(server).get("422") == 1
    finally:
        assert server.stop() == 0
    assert "".join(server.stderr) == ""  # -q: nothing on stderr, the URL was on stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--sha256", "0" * 64], 4, ["sha256"]),
        (["--sha256", "xyz"], 2, ["--sha256", "64 hexadecimal"]),
    ],
)
def test_serve_own_model_refusals(mine: Path, args: list[str], code: int, words: list[str]) -> None:
    done = subprocess.run(
        [str(MODELROUTER), "serve", "--port", "0", "-m", str(mine), "-t", "sklearn", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    for word in words:
        assert word in done.stderr


@pytest.mark.parametrize(
    "env",
    [{"MODELROUTER_SKLEARN_PATH": "MINE"}, {"MODELROUTER_SKLEARN_SHA256": ""}],
    ids=["path-drops-the-builtin-pin", "empty-digest-clears-it"],
)
def test_environment_overrides_of_the_builtin_pin(mine: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """The built-in config pins the shipped files: a user's own file through the environment is
    not refused by that pin, and an empty MODELROUTER_<TYPE>_SHA256 is "no pin", not an error."""
    import os
    import shutil

    from tests.serve.test_serve import WINE_CSV

    own = tmp_path / "own.pkl"
    shutil.copy(mine, own)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    environment.update({k: str(own) if v == "MINE" else v for k, v in env.items()})
    done = subprocess.run(
        [str(MODELROUTER), "predict", str(WINE_CSV), "-o", "-", "--no-stats", "-t", "sklearn"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    labels = done.stdout.splitlines()[1:]
    assert len(labels) == 178
    if "MODELROUTER_SKLEARN_PATH" in env:
        assert set(labels) <= {"0", "1"}  # the user's two-class model, not the shipped one
