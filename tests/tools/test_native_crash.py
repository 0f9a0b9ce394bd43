"""Booster files that pass the structure checks but crash XGBoost or LightGBM natively are
model errors (exit 4 naming the file), found by loading them in a child process first; a
file that passed is not checked again (docs/security.md).

The crashing files are real: found by mutating what the structure checks do not read (an
XGBoost node's ``parents`` entry, a LightGBM tree's ``leaf_weight`` line, the number of
classes in LightGBM's ``objective`` line). Each crashed the process (139/134) before.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from modelrouter import ModelLoadError, ModelPool, ModelType
from modelrouter.backends import backend_for, booster_probe
from modelrouter.backends.booster_files import checked_lightgbm_text, checked_xgboost_document

from tests.tiers import cross
from tests.tools.test_native_model_files import (
    KIND,
    MODELROUTER,
    MUTATIONS,
    _json_edit,
    _lgb_line,
    _set,
    booster_files,
    mutated,
)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return booster_files(tmp_path_factory.mktemp("boosters"))


EXIT_MODEL = 4


def _with_true_tree_sizes(mutate: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """A LightGBM edit, with ``tree_sizes`` rewritten to the trees' new sizes (so the
    structure check finds nothing wrong)."""

    def edit(data: bytes) -> bytes:
        text = mutate(data).decode()
        body = text[text.index("\nTree=") + 1 : text.index("\nend of trees") + 1]
        sizes = [len(s.encode()) for s in re.split(r"(?=^Tree=)", body, flags=re.MULTILINE) if s]
        return re.sub(r"tree_sizes=.*", "tree_sizes=" + " ".join(map(str, sizes)), text, count=1).encode()

    return edit


#: name → (suffix, mutation, the step that crashes).
CRASHERS: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {
    "xgb-parent-out-of-range": ("json", _json_edit(_set("parents", 3, 10**6)), "loading it"),
    "lgb-short-leaf-weight": (
        "txt",
        _with_true_tree_sizes(_lgb_line("leaf_weight", lambda v: v[:1])),
        "loading it",
    ),
    "lgb-objective-classes": (
        "txt",
        lambda data: data.replace(
            b"objective=multiclass num_class:3", b"objective=multiclass num_class:99999"
        ),
        "predicting a probe row",
    ),
}

#: Crashers whose damage overwrites memory: the child faults on almost every run (in the
#: probe, or when the model's memory is freed); on the others the library or the output
#: count refuses the file, or the child hangs and its watchdog ends it.
CORRUPTS_OR_CRASHES = {"lgb-objective-classes"}


@pytest.fixture
def crashers(originals: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "crashers"
    folder.mkdir()
    return {
        name: mutated(originals, folder, suffix, name, edit) for name, (suffix, edit, _) in CRASHERS.items()
    }


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own cache folder, and a process with nothing verified yet."""
    folder = tmp_path / "verified"
    monkeypatch.setenv(booster_probe.CACHE_ENV, str(folder))
    monkeypatch.setattr(booster_probe, "_VERIFIED", {})
    return folder


def run(*args: str | Path, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", booster_probe.CACHE_ENV: str(cache)}
    env.pop("MODELROUTER_CONFIG", None)
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )


def test_the_crashers_pass_the_structure_checks(crashers: dict[str, Path]) -> None:
    for path in crashers.values():
        if path.suffix == ".json":
            checked_xgboost_document(path.read_bytes(), path)
        else:
            checked_lightgbm_text(path.read_text(), path)


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("crasher", "command"),
    cross(
        [(name,) for name in CRASHERS],
        ["predict", "predict-proba", "inspect", "convert", "compare", "serve"],
        fast_column="predict",
        fast_row=("xgb-parent-out-of-range",),
    ),
)
def test_a_native_crash_is_exit_4_naming_the_file(
    originals: dict[str, Path],
    crashers: dict[str, Path],
    tmp_path: Path,
    crasher: str,
    command: str,
) -> None:
    path = crashers[crasher]
    out = tmp_path / ("out.onnx" if command == "convert" else "out.csv")
    kind = KIND[path.suffix.lstrip(".")].value
    config = tmp_path / "compare.toml"
    # compare: a good model of the other library first, the reference.
    other = "txt" if kind == "xgboost" else "json"
    config.write_text(f'[{KIND[other].value}]\npath = "{originals[other]}"\n[{kind}]\npath = "{path}"\n')
    commands: dict[str, list[str | Path]] = {
        "predict": ["predict", originals["csv"], "-m", path, "-o", out],
        "predict-proba": ["predict-proba", originals["csv"], "-m", path, "-o", out],
        "inspect": ["inspect", path],
        "convert": ["convert", path, "-o", out, "--sample", originals["csv"]],
        "compare": ["compare", originals["csv"], "-c", config],
        "serve": ["serve", "--port", "0", "-m", path],
    }
    result = run(*commands[command], cwd=tmp_path, cache=tmp_path / "verified")
    assert result.returncode == EXIT_MODEL, (result.returncode, result.stderr[-2000:])
    library = "XGBoost" if path.suffix == ".json" else "LightGBM"
    step = CRASHERS[crasher][2]
    crashed = f"{path.name}: the {library} library crashed (SIG" in result.stderr and step in result.stderr
    refused = re.search(
        rf"{re.escape(path.name)}: the "
        rf"(model gives 99999 outputs per row|{library} library (hung|cannot load))",
        result.stderr,
    )
    assert crashed or (refused and crasher in CORRUPTS_OR_CRASHES), result.stderr
    assert "Traceback" not in result.stderr
    if command != "inspect":
        assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) <= 2
        assert result.stdout == ""
    assert not out.exists()
    assert not (tmp_path / "verified" / hashlib.sha256(path.read_bytes()).hexdigest()).exists()


def test_the_library_pool_refuses_a_crashing_file(crashers: dict[str, Path], cache: Path) -> None:
    """In-process: the pytest process itself would have died (SIGSEGV) before."""
    path = crashers["xgb-parent-out-of-range"]
    with pytest.raises(
        ModelLoadError, match=rf"{re.escape(str(path))}: the XGBoost library crashed \(SIGSEGV\)"
    ):
        ModelPool.load(ModelType.XGBOOST, path, size=2)


def test_a_crlf_lightgbm_model_is_normalised_before_the_child_sees_it(
    originals: dict[str, Path],
    tmp_path: Path,
    cache: Path,
) -> None:
    """The raw CRLF text crashes LightGBM (the child says so); the model loads as its LF text,
    one digest for both spellings."""
    crlf = originals["txt"].read_bytes().replace(b"\n", b"\r\n")
    with pytest.raises(ModelLoadError, match="the LightGBM library crashed"):
        booster_probe.verified_natively(ModelType.LIGHTGBM, crlf, "raw.txt", "test")
    path = tmp_path / "crlf.txt"
    path.write_bytes(crlf)
    backend_for(ModelType.LIGHTGBM).load(path, threads=1)
    assert [entry.name for entry in cache.iterdir()] == [
        hashlib.sha256(originals["txt"].read_bytes()).hexdigest()
    ]


# The library tolerates these (no crash, and a prediction that works): only the structure
# checks refuse them. A LightGBM text cut inside its parameters block makes LightGBM read past
# the end of the buffer, which faults on some runs and not on others: a child cannot catch
# what does not happen in it (the structure check refuses the file every time).
TOLERATED = {
    ("json", "shared-node"),
    ("json", "tree-info-out-of-range"),
    ("txt", "no-end-of-trees"),
    ("txt", "truncated-90"),
}
NET = [(s, n, f) for s, n, f in MUTATIONS if (s, n) not in TOLERATED]
NET_FAST = {("json", "child-out-of-range"), ("ubj", "zero-bytes"), ("txt", "lying-tree-sizes")}


def _refused_by_the_child(
    models: dict[str, Path], cases: list[tuple[str, str, Callable[[bytes], bytes]]]
) -> None:
    def attempt(case: tuple[str, str, Callable[[bytes], bytes]]) -> str:
        suffix, name, mutate = case
        try:
            booster_probe._check_in_child(
                KIND[suffix], mutate(models[suffix].read_bytes()), f"{suffix}-{name}"
            )
        except ModelLoadError as exc:
            return str(exc)
        return f"{name}: PASSED"

    with ThreadPoolExecutor(4) as workers:
        outcomes = list(workers.map(attempt, cases))
    assert [o for o in outcomes if o.endswith("PASSED")] == []
    assert [o.split(":")[0] for o in outcomes] == [f"{suffix}-{name}" for suffix, name, _ in cases]


def test_the_child_is_a_net_under_the_structure_checks(originals: dict[str, Path]) -> None:
    """Mutations the structure checks refuse, given to the child directly: each is a crash or
    a refusal there, never a load that passes."""
    _refused_by_the_child(originals, [case for case in NET if case[:2] in NET_FAST])


@pytest.mark.slow
def test_the_child_is_a_net_under_every_structure_check(originals: dict[str, Path]) -> None:
    _refused_by_the_child(originals, NET)


# -- a child that does not end -------------------------------------------------------------


def _child(script: str, payload: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run ``script`` (which ends by calling the probe's ``main``) as the child is run."""
    return subprocess.run(
        [sys.executable, "-P", "-c", script], input=payload, capture_output=True, timeout=60
    )


def test_a_probe_that_hangs_ends_the_child_and_names_the_file(originals: dict[str, Path]) -> None:
    """A corrupt heap can deadlock instead of faulting: the child's watchdog (a C thread) ends
    it, and the parent says the library hung, naming the file."""
    script = (
        "import time\n"
        "from modelrouter.backends import booster_probe as p\n"
        "p._PROBE_SECONDS = 0.5\n"
        "p._probe = lambda model: time.sleep(60)\n"
        "raise SystemExit(p.main(['lightgbm', 'wine.txt']))\n"
    )
    child = _child(script, originals["txt"].read_bytes())
    assert child.returncode == 1
    with pytest.raises(ModelLoadError) as caught:
        booster_probe._verdict(child.returncode, child.stdout.decode(), child.stderr, "wine.txt", "LightGBM")
    assert str(caught.value).startswith("wine.txt: the LightGBM library hung predicting a probe row")


def test_a_hang_at_the_childs_exit_is_a_hang(originals: dict[str, Path]) -> None:
    """An exit handler that waits for ever (a lock the probe's damage left taken, as
    ``logging.shutdown`` once did) is caught by the same watchdog: the exit, where the
    model's memory is freed, is part of the check."""
    script = (
        "import atexit, threading\n"
        "lock = threading.Lock(); lock.acquire(); atexit.register(lock.acquire)\n"
        "from modelrouter.backends import booster_probe as p\n"
        "p._PROBE_SECONDS = 0.5\n"
        "raise SystemExit(p.main(['lightgbm', 'wine.txt']))\n"
    )
    child = _child(script, originals["txt"].read_bytes())
    assert (child.returncode, child.stdout) == (1, b"loaded\n")
    with pytest.raises(
        ModelLoadError, match=r"^wine.txt: the LightGBM library hung .* \(no answer in 30 s\)"
    ):
        booster_probe._verdict(child.returncode, child.stdout.decode(), child.stderr, "wine.txt", "LightGBM")
