"""Malformed XGBoost and LightGBM files are model errors (exit 4 naming the file), never a
native crash (134/139) or an internal error (1), in predict, inspect and convert.

Each mutation is one class of damage seen in hostile trials: zero bytes, truncation,
child indices out of range, cycles, short arrays, sizes that lie, split features that do
not exist, an objective the trees do not fit, repeated input names. The library check runs
over every mutation in-process (a native crash would kill the test process); the commands
run over one mutation of each class in subprocesses.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pytest
import xgboost as xgb
from modelrouter import ModelLoadError, ModelType
from modelrouter.backends import backend_for
from sklearn.datasets import load_wine

from tests.tiers import cross

MODELROUTER = Path(sys.executable).parent / "modelrouter"
EXIT_MODEL = 4


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return booster_files(tmp_path_factory.mktemp("boosters"))


def booster_files(folder: Path) -> dict[str, Path]:
    """Small valid boosters fitted on wine in ``folder`` (json, ubj, txt) and the data (csv)."""
    frame, target = load_wine(return_X_y=True, as_frame=True)
    frame.to_csv(folder / "wine.csv", index=False)
    booster = xgb.XGBClassifier(n_estimators=4, max_depth=3, n_jobs=1).fit(frame, target).get_booster()
    booster.save_model(folder / "wine.json")
    booster.save_model(folder / "wine.ubj")
    lgb.LGBMClassifier(n_estimators=4, num_leaves=8, verbose=-1, n_jobs=1).fit(
        frame, target
    ).booster_.save_model(folder / "wine.txt")
    return {
        "json": folder / "wine.json",
        "ubj": folder / "wine.ubj",
        "txt": folder / "wine.txt",
        "csv": folder / "wine.csv",
    }


def _json_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        document = copy.deepcopy(json.loads(data))
        edit(document)
        return json.dumps(document).encode()

    return mutate


def _tree(document: dict[str, Any], i: int = 0) -> dict[str, Any]:
    tree: dict[str, Any] = document["learner"]["gradient_booster"]["model"]["trees"][i]
    return tree


def _set(key: str, index: int, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: _tree(d)[key].__setitem__(index, value)


def _lgb_line(key: str, edit: Callable[[list[str]], list[str]], tree: int = 0) -> Callable[[bytes], bytes]:
    """Edit the ``key=`` line of one LightGBM tree (its values as a list of strings)."""

    def mutate(data: bytes) -> bytes:
        text = data.decode()
        start = text.index(f"Tree={tree}\n")
        line = re.compile(rf"^{key}=(.*)$", re.MULTILINE).search(text, start)
        assert line is not None
        values = edit(line.group(1).split())
        return (text[: line.start()] + f"{key}=" + " ".join(values) + text[line.end() :]).encode()

    return mutate


def _replace(items: list[str], index: int, value: str) -> list[str]:
    return [*items[:index], value, *items[index + 1 :]]


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


XGB_JSON: dict[str, Callable[[bytes], bytes]] = {
    "zero-bytes": lambda data: b"",
    "truncated-10": _truncate(0.1),
    "truncated-50": _truncate(0.5),
    "truncated-99": _truncate(0.99),
    "child-out-of-range": _json_edit(_set("left_children", 0, 10**6)),
    "child-negative": _json_edit(_set("right_children", 0, -7)),
    "cycle-to-root": _json_edit(_set("left_children", 1, 0)),
    "cycle-to-self": _json_edit(lambda d: _tree(d)["left_children"].__setitem__(1, 1)),
    "shared-node": _json_edit(
        lambda d: _tree(d)["right_children"].__setitem__(0, _tree(d)["left_children"][0])
    ),
    "short-leaf-array": _json_edit(
        lambda d: _tree(d).__setitem__("base_weights", _tree(d)["base_weights"][:2])
    ),
    "lying-num-nodes": _json_edit(lambda d: _tree(d)["tree_param"].__setitem__("num_nodes", "1000")),
    "lying-num-trees": _json_edit(
        lambda d: d["learner"]["gradient_booster"]["model"]["gbtree_model_param"].__setitem__(
            "num_trees", "99"
        )
    ),
    "split-feature-out-of-range": _json_edit(_set("split_indices", 0, 10**6)),
    "tree-info-out-of-range": _json_edit(
        lambda d: d["learner"]["gradient_booster"]["model"]["tree_info"].__setitem__(0, 50)
    ),
    "objective-edited": _json_edit(
        lambda d: d["learner"]["objective"].__setitem__("name", "binary:logistic")
    ),
    "repeated-feature-names": _json_edit(
        lambda d: d["learner"].__setitem__("feature_names", ["alcohol"] * len(d["learner"]["feature_names"]))
    ),
}
XGB_UBJ: dict[str, Callable[[bytes], bytes]] = {
    "zero-bytes": lambda data: b"",
    **{f"truncated-{p}": _truncate(p / 100) for p in (1, 10, 30, 50, 70, 90, 99)},
    "lying-array-length": lambda data: data.replace(b"#L", b"#L\x7f", 1),
}
LGB_TXT: dict[str, Callable[[bytes], bytes]] = {
    "zero-bytes": lambda data: b"",
    **{f"truncated-{p}": _truncate(p / 100) for p in (1, 10, 30, 50, 70, 90, 99)},
    "no-end-of-trees": lambda data: data.replace(b"end of trees", b"end of tree"),
    "lying-tree-sizes": lambda data: re.sub(
        rb"tree_sizes=(\d+)", lambda m: b"tree_sizes=" + str(int(m.group(1)) + 40).encode(), data
    ),
    "child-out-of-range": _lgb_line("left_child", lambda v: _replace(v, 0, "1000000")),
    "leaf-out-of-range": _lgb_line("right_child", lambda v: _replace(v, 0, "-1000000")),
    "cycle": _lgb_line("left_child", lambda v: _replace(v, 1, "0")),
    "split-feature-out-of-range": _lgb_line("split_feature", lambda v: _replace(v, 0, "999")),
    "short-leaf-values": _lgb_line("leaf_value", lambda v: v[:2]),
    "lying-num-leaves": _lgb_line("num_leaves", lambda v: ["60"]),
    "repeated-feature-names": lambda data: re.sub(
        rb"feature_names=(\S+) (\S+)",
        lambda m: b"feature_names=" + m.group(1) + b" " + m.group(1),
        data,
        count=1,
    ),
}
MUTATIONS = [("json", k, f) for k, f in XGB_JSON.items()]
MUTATIONS += [("ubj", k, f) for k, f in XGB_UBJ.items()]
MUTATIONS += [("txt", k, f) for k, f in LGB_TXT.items()]
KIND = {"json": ModelType.XGBOOST, "ubj": ModelType.XGBOOST, "txt": ModelType.LIGHTGBM}


def mutated(
    originals: dict[str, Path], folder: Path, suffix: str, name: str, mutate: Callable[[bytes], bytes]
) -> Path:
    path = folder / f"{name}.{suffix}"
    data = mutate(originals[suffix].read_bytes())
    assert data != originals[suffix].read_bytes(), f"the mutation {name} changed nothing"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("suffix", "name", "mutate"), MUTATIONS, ids=[f"{s}-{n}" for s, n, _ in MUTATIONS])
def test_every_mutation_is_a_model_error_naming_the_file(
    originals: dict[str, Path], tmp_path: Path, suffix: str, name: str, mutate: Callable[[bytes], bytes]
) -> None:
    path = mutated(originals, tmp_path, suffix, name, mutate)
    with pytest.raises(ModelLoadError, match=re.escape(str(path))):
        backend_for(KIND[suffix]).load(path, threads=1)


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )


# One mutation per class of damage, through every command that loads a model.
END_TO_END = [
    ("txt", "truncated-50"),
    ("txt", "lying-tree-sizes"),
    ("txt", "cycle"),
    ("json", "zero-bytes"),
    ("json", "child-out-of-range"),
    ("json", "objective-edited"),
    ("json", "repeated-feature-names"),
    ("ubj", "truncated-30"),
]
TABLES = {"json": XGB_JSON, "ubj": XGB_UBJ, "txt": LGB_TXT}


@pytest.mark.parametrize(
    ("suffix", "name", "command"),
    cross(
        END_TO_END,
        ["predict", "inspect", "convert"],
        fast_column="predict",
        fast_row=("json", "zero-bytes"),
        ids=[f"{s}-{n}" for s, n in END_TO_END],
    ),
)
def test_commands_exit_4_naming_the_file(
    originals: dict[str, Path], tmp_path: Path, suffix: str, name: str, command: str
) -> None:
    path = mutated(originals, tmp_path, suffix, name, TABLES[suffix][name])
    out = tmp_path / ("out.onnx" if command == "convert" else "out.csv")
    commands: dict[str, list[str | Path]] = {
        "predict": ["predict", originals["csv"], "-m", path, "-o", out],
        "inspect": ["inspect", path],
        "convert": ["convert", path, "-o", out, "--sample", originals["csv"]],
    }
    args = commands[command]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == EXIT_MODEL, (result.returncode, result.stderr[-2000:])
    lines = (
        result.stderr.strip().splitlines()
        if command != "inspect"
        else [result.stderr.strip() or result.stdout]
    )
    assert path.name in "\n".join(lines)
    if command != "inspect":
        assert len(lines) <= 2 and lines[0].startswith("error:"), result.stderr
    assert not out.exists()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_crlf_lightgbm_model_scores_like_the_original(originals: dict[str, Path], tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(originals["txt"].read_bytes().replace(b"\n", b"\r\n"))
    outputs = {}
    for model in (originals["txt"], crlf):
        out = tmp_path / f"{model.stem}.out.csv"
        result = run("predict-proba", originals["csv"], "-m", model, "-o", out, "--no-stats", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs[model.stem] = out.read_text()
    assert outputs["crlf"] == outputs["wine"]
