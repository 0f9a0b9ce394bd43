"""The distribution as users get it: a wheel, installed into a fresh venv outside the repo.

One import name (`modelrouter`), the library API at the top, and a working `modelrouter`
command that scores a file with `-m` (a wheel ships no sample models or built-in config).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCES = (
    ".git",
    ".venv",
    "build",
    "site",
    "*.egg-info",
    ".*_cache",
    ".hypothesis",
    "__pycache__",
    "benchmarks",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the fresh venv it is installed into)."""
    folder = tmp_path_factory.mktemp("dist")
    # Built from a copy without the checkout's build/ folder: setuptools would add what an
    # earlier build left in build/lib, and a module missing from the package list would not show.
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCES))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(folder / "wheels"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (folder / "wheels").glob("modelrouter-*.whl")
    env = folder / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # The package comes only from the wheel, installed by pip as a user would; its
    # dependencies from the test environment (no network needed).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return wheel, env


def test_the_wheel_has_one_top_level_import_name(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert {t for t in tops if not t.endswith(".dist-info")} == {"modelrouter"}
    assert "modelrouter = modelrouter.cli.entry:main" in scripts
    assert "modelrouter/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_the_wheel_holds_every_module_of_the_source_tree(installed: tuple[Path, Path]) -> None:
    # setuptools lists packages by name (pyproject.toml): a subpackage left out of that list
    # is silently missing from the wheel, and only its users' imports fail.
    wheel, _ = installed
    sources = {
        f"modelrouter/{path.relative_to(ROOT / 'router').as_posix()}"
        for path in (ROOT / "router").rglob("*.py")
    } | {
        f"modelrouter/cli/{path.relative_to(ROOT / 'cli').as_posix()}"
        for path in (ROOT / "cli").rglob("*.py")
    }
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert sorted(sources - shipped) == []


def test_the_installed_package_scores_a_file_from_outside_the_repo(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, env = installed
    python = env / "bin" / "python"
    imported = subprocess.run(
        [str(python), "-c",
         "import modelrouter, sys; from modelrouter import get_router, ModelType, ModelPool; "
         "print(modelrouter.__file__); print('cli' in sys.modules, 'router' in sys.modules)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.splitlines()  # fmt: skip
    assert str(env) in imported[0] and str(ROOT) not in imported[0]
    assert imported[1] == "False False"  # no top-level `cli` or `router` module
    (tmp_path / "in.csv").write_bytes((ROOT / "sample_data" / "wine.csv").read_bytes())
    (tmp_path / "model.pkl").write_bytes((ROOT / "models" / "classifier.pkl").read_bytes())
    scored = subprocess.run(
        [str(env / "bin" / "modelrouter"), "predict", "in.csv", "-m", "model.pkl", "-o", "out.csv",
         "-k", "id", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].replace('"', "") == "id,prediction" and len(lines) == 179
    # No sample models ship in a wheel: with nothing configured, the error says what to pass.
    bare = subprocess.run(
        [str(env / "bin" / "modelrouter"), "predict", "in.csv", "-o", "out2.csv", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert bare.returncode == 4 and "pass --model-type or --model" in bare.stderr
