"""All outputs of a run are committed, or none (docs/specification.md §5).

A side file (``--stats-json``, ``--metrics-textfile``) or a rejects file that cannot be
written fails the run before anything is read (exit 5, naming it), leaving the previous
predictions and rejects byte for byte; and should a rename still fail at the commit, what
the commit already renamed is put back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from modelrouter.errors import OutputError
from modelrouter.storage.commit import RunOutputs, TextOutput, check_writable
from sklearn.datasets import load_wine

MODELROUTER = Path(sys.executable).parent / "modelrouter"
SHIPPED_ONNX = Path(__file__).resolve().parents[2] / "models" / "classifier.onnx"
OLD_OUTPUT = b"id,prediction\n1,yesterday\n"
OLD_REJECTS = b"row,column,reason\n1,ash,yesterday\n"


def _folder(tmp_path: Path) -> Path:
    frame = load_wine(as_frame=True).data.head(12).copy()
    frame.insert(0, "id", np.arange(1, 13))
    text = frame.astype(object)
    text.loc[4, "ash"] = "not a number"  # one rejected row: a rejects file to commit
    text.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out.csv").write_bytes(OLD_OUTPUT)
    (tmp_path / "out.rejects.csv").write_bytes(OLD_REJECTS)
    return tmp_path


def _run(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["predict", "in.csv", "-m", str(SHIPPED_ONNX), "-k", "id", "-o", "out.csv", "--on-error", "skip"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [str(MODELROUTER), *args, *extra, "--no-stats"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _untouched(folder: Path, *also: str) -> None:
    assert (folder / "out.csv").read_bytes() == OLD_OUTPUT
    assert (folder / "out.rejects.csv").read_bytes() == OLD_REJECTS
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["in.csv", "out.csv", "out.rejects.csv", *also]), names  # no temporaries


@pytest.mark.parametrize(
    ("make", "option", "path", "message"),
    [
        ("dir", "--stats-json", "stats.json", "stats.json: is a directory; give a file path"),
        ("dir", "--metrics-textfile", "run.prom", "run.prom: is a directory; give a file path"),
        (
            "",
            "--stats-json",
            "missing/stats.json",
            "missing/stats.json: output folder 'missing' does not exist",
        ),
        (
            "",
            "--metrics-textfile",
            "missing/run.prom",
            "missing/run.prom: output folder 'missing' does not exist",
        ),
        ("dir", "--rejects", "rejects.csv", "rejects.csv: is a directory; give a file path"),
    ],
)
def test_a_side_file_that_cannot_be_written_fails_before_anything_changes(
    tmp_path: Path, make: str, option: str, path: str, message: str
) -> None:
    folder = _folder(tmp_path)
    if make == "dir":
        (folder / path).mkdir()
    result = _run(folder, option, path)
    assert result.returncode == 5, result.stderr
    assert result.stderr == f"error: {message}\n"
    _untouched(folder, *([path] if make == "dir" else []))


def test_a_successful_run_still_commits_everything(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    result = _run(folder, "--stats-json", "stats.json", "--metrics-textfile", "run.prom")
    assert result.returncode == 0, result.stderr
    assert (folder / "out.csv").read_bytes() != OLD_OUTPUT
    assert (folder / "out.rejects.csv").read_text().splitlines()[1].startswith("5,ash,")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["in.csv", "out.csv", "out.rejects.csv", "stats.json", "run.prom"]
    )


def test_check_writable_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path / "d")
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "nope" / "f.json")
    check_writable(tmp_path / "f.json")  # a new file in an existing folder
    check_writable("/dev/null")  # a device is written as a stream
    check_writable("-")


def test_a_rename_failing_at_the_commit_puts_back_what_was_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = (tmp_path / n for n in ("rejects.csv", "stats.json", "new.prom"))
    first.write_text("old rejects\n")
    second.write_text("old stats\n")
    outputs = RunOutputs(
        [TextOutput(first, "new rejects\n"), TextOutput(second, "new stats\n"), TextOutput(third, "new\n")]
    )
    real_replace = os.replace

    def failing_replace(source: object, target: object) -> None:
        if Path(str(target)) == third:
            raise OSError(5, "Input/output error")
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"new\.prom: cannot write"):
        outputs.commit(final=False)
    monkeypatch.undo()
    assert first.read_text() == "old rejects\n"
    assert second.read_text() == "old stats\n"
    assert not third.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rejects.csv", "stats.json"]  # nothing kept behind


def test_a_committed_run_leaves_no_kept_copies(tmp_path: Path) -> None:
    target = tmp_path / "stats.json"
    target.write_text("old\n")
    RunOutputs([TextOutput(target, "new\n")]).commit(final=False)
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]
