"""Datasets you can trust (issues 25 and 28): one walker for folders and globs, output folders
that overlap the input, ``--resume`` by the input's identity, failed runs' counts,
``--keep-going``, a missing input named as such.

End-to-end through the real ``modelrouter`` in a subprocess where the behaviour is
user-visible (exact exit code, the path named on stderr, nothing partial left); the walker's
property — every readable data file reachable without repeating a real folder is scored
exactly once, or the run refuses naming why — is checked by Hypothesis on random trees of
files, folders, file links, folder links and loops, in-process (many trees) and through the
command (a few in ``make test``, ``MODELROUTER_FUZZ_EXAMPLES`` of them under ``make fuzz``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter import DataError
from modelrouter.batch.datasets import is_data_file, plan_dataset
from modelrouter.storage.formats import data_suffix
from modelrouter.storage.run_paths import PathConflict
from modelrouter.storage.tree_walk import walk_tree

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
LINES = (ROOT / "sample_data" / "wine.csv").read_text().splitlines(keepends=True)
ONNX = ["-t", "onnx", "--no-stats"]  # no scikit-learn import: half the start-up


def rows(n: int) -> str:
    """A wine CSV with ``n`` data rows."""
    return "".join(LINES[: n + 1])


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def scored(out: Path) -> list[str]:
    """The data files under ``out`` (relative, sorted), links not followed."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if is_data_file(p.name) and p.is_file())


def looped_dataset(base: Path) -> Path:
    """Issue 25/28's tree: two files, a link to the folder itself, one back up, one outside."""
    ds = base / "ds"
    (ds / "sub").mkdir(parents=True)
    (base / "elsewhere").mkdir()
    (ds / "a.csv").write_text(rows(3))
    (ds / "sub" / "b.csv").write_text(rows(4))
    (base / "elsewhere" / "c.csv").write_text(rows(5))
    (ds / "self").symlink_to(".")
    (ds / "sub" / "back").symlink_to("..")
    (ds / "linked").symlink_to(base / "elsewhere")
    return ds


# -- 1. one walker: links followed, each real folder once, bounded --------------------------


@pytest.mark.parametrize("form", ["folder", "glob **", "glob */"])
def test_loops_end_and_linked_folders_are_scored_once(tmp_path: Path, form: str) -> None:
    ds = looped_dataset(tmp_path)
    source = {"folder": str(ds), "glob **": f"{ds}/**/*.csv", "glob */": f"{ds}/*/*.csv"}[form]
    out = tmp_path / "out"
    started = time.monotonic()
    result = run("predict", source, "-o", out, *ONNX, "-k", "id")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    expected = {
        "folder": ["a.csv", "linked/c.csv", "sub/b.csv"],
        "glob **": ["a.csv", "linked/c.csv", "sub/b.csv"],
    }
    assert scored(out) == expected.get(form, ["linked/c.csv", "sub/b.csv"])
    assert (out / "_SUCCESS").exists()
    for name in scored(out):
        assert len(pd.read_csv(out / name)) == {"a.csv": 3, "sub/b.csv": 4, "linked/c.csv": 5}[name]


@pytest.mark.parametrize("parts", [None, ("**", "*.csv")], ids=["folder", "glob **"])
def test_each_real_folder_is_listed_once(tmp_path: Path, parts: tuple[str, ...] | None) -> None:
    ds = looped_dataset(tmp_path)
    walk = walk_tree(ds, parts, is_data_file)
    assert sorted(f.real for f in walk.folders) == sorted(
        os.path.realpath(p) for p in (ds, ds / "sub", tmp_path / "elsewhere")
    )
    assert [str(f.path.relative_to(ds)) for f in walk.folders] == [".", "sub", "linked"]


def test_a_folder_listed_under_its_real_name_not_a_link_that_sorts_first(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    (ds / "zeta" / "deep").mkdir(parents=True)
    (ds / "zeta" / "deep" / "x.csv").write_text(rows(2))
    (ds / "0-shortcut").symlink_to("zeta/deep")
    (ds / "1-again").symlink_to("zeta")
    plan = plan_dataset(str(ds), str(tmp_path / "out"), None)
    assert plan.inputs == (ds / "zeta" / "deep" / "x.csv",)


def test_walk_is_bounded_in_depth_and_time(tmp_path: Path) -> None:
    deep = tmp_path / "ds"
    (deep / "a" / "b" / "c" / "d").mkdir(parents=True)
    (deep / "a" / "b" / "c" / "d" / "x.csv").write_text(rows(1))
    with pytest.raises(
        DataError, match=r"ds/a/b/c/d: deeper than 3 folders below .*; the set would be incomplete"
    ):
        walk_tree(deep, None, is_data_file, max_depth=3)
    assert len(walk_tree(deep, None, is_data_file, max_depth=4).files) == 1
    with pytest.raises(DataError, match=r"listing the dataset took more than 0 s"):
        walk_tree(deep, None, is_data_file, max_seconds=0)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda ds: (ds / "gone").symlink_to(ds / "nowhere"), "a dangling symlink"),
        (lambda ds: (ds / "x.csv").symlink_to("x.csv"), "a symlink loop"),
        (lambda ds: os.mkfifo(ds / "p.csv"), "a FIFO, not a regular file"),
    ],
    ids=["dangling link (could be a folder)", "link to itself", "fifo named .csv"],
)
def test_an_entry_the_set_needs_and_cannot_read_is_refused_by_name(
    tmp_path: Path, make: object, reason: str
) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "ok.csv").write_text(rows(2))
    make(ds)  # type: ignore[operator]
    out = tmp_path / "out"
    for source in (ds, f"{ds}/**/*"):
        result = run("predict", source, "-o", out, *ONNX)
        assert result.returncode == 3, result.stderr
        assert f"error: {ds}/" in result.stderr and reason in result.stderr
        assert not out.exists()  # refused while planning: nothing written


def test_hidden_and_underscore_names_are_not_data_unless_the_glob_names_them(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    for folder in ("_temporary", ".staging", "ok"):
        (ds / folder).mkdir(parents=True)
        (ds / folder / "x.csv").write_text(rows(1))
    (ds / "_y.csv").write_text(rows(1))
    (ds / ".gone").symlink_to(ds / "nowhere")  # hidden: never looked at, so never refused
    assert plan_dataset(str(ds), str(tmp_path / "o"), None).inputs == (ds / "ok" / "x.csv",)
    assert plan_dataset(f"{ds}/_*/*.csv", str(tmp_path / "o"), None).inputs == (ds / "_temporary" / "x.csv",)


def test_glob_with_missing_folder_names_it(tmp_path: Path) -> None:
    result = run("predict", f"{tmp_path}/nothere/*.csv", *ONNX)
    assert result.returncode == 3, result.stderr
    assert f"the folder {tmp_path}/nothere does not exist" in result.stderr


# -- 2. the output folder never overlaps the input ----------------------------------------------


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_output_folder_that_is_or_contains_the_input_is_a_usage_error(tmp_path: Path) -> None:
    ds = looped_dataset(tmp_path)
    (tmp_path / "alias").symlink_to(ds)
    cases: dict[str, tuple[str | Path, str]] = {
        "same path": (ds, "is the input folder"),
        "trailing slash, relative": ("ds/", "is the input folder"),
        "dot-dot": ("ds/sub/..", "is the input folder"),
        "symlink to it": ("alias", "is the input folder"),
        "its own loop link": (ds / "self", "is the input folder"),
        "a parent": (tmp_path, "contains the input folder"),
        "a parent, relative": (".", "contains the input folder"),
    }
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for name, (output, relation) in cases.items():
        for source in ("ds", "ds/**/*.csv", f"{ds}/*.csv"):
            result = run("predict", source, "-o", output, *ONNX, "--output-format", "parquet", cwd=tmp_path)
            assert result.returncode == 2, (name, result.stderr)
            assert "Invalid value for -o" in result.stderr and relation in result.stderr, (
                name,
                result.stderr,
            )
            assert "nothing was read or written" in result.stderr
            assert sorted(str(p) for p in tmp_path.rglob("*")) == before, name


@pytest.mark.parametrize("source", ["ds", "ds/**/*.csv"])
def test_output_folder_inside_the_input_is_never_read(tmp_path: Path, source: str) -> None:
    ds = looped_dataset(tmp_path)
    for attempt in range(2):  # the rerun meets the first run's outputs and must not read them
        if attempt:
            (ds / "to-out").symlink_to("scored")  # another name for the output folder
        result = run("predict", source, "-o", "ds/scored", *ONNX, "-k", "id", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert scored(ds / "scored") == ["a.csv", "linked/c.csv", "sub/b.csv"]
        if attempt:
            assert "ds/scored: the output folder, inside the input; its files are outputs" in result.stderr


def test_planner_refuses_overlap_with_path_conflict(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a.csv").write_text(rows(1))
    with pytest.raises(PathConflict, match="is the input folder") as caught:
        plan_dataset(str(ds), str(ds), "parquet")
    assert caught.value.option == "-o"


# -- 3. --resume by the input's identity ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_resume_rescores_a_redelivered_input_and_skips_the_rest(tmp_path: Path, fmt: str) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    for i in range(3):
        (ds / f"f{i}.csv").write_text(rows(20))
    out = tmp_path / "out"
    first = run("predict", ds, "-o", out, "--output-format", fmt, *ONNX)
    assert first.returncode == 0, first.stderr
    name = f"f1.{fmt}"
    kept = (out / f"f0.{fmt}").stat().st_mtime_ns
    (ds / "f1.csv").write_text(rows(30))  # re-delivered with new content
    stats = tmp_path / "stats.json"
    again = run(
        "predict", ds, "-o", out, "--output-format", fmt, "-t", "onnx", "--resume", "--stats-json", stats
    )
    assert again.returncode == 0, again.stderr
    assert "1 file, 2 files skipped, 1 stale output rescored" in again.stderr
    summary = json.loads(stats.read_text())["summary"]
    assert (summary["files"], summary["files_skipped"], summary["files_stale"]) == (1, 2, 1)
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        "csv": pd.read_csv,
        "parquet": lambda path: pq.read_table(path).to_pandas(),
        "jsonl": lambda path: pd.read_json(path, lines=True),
    }
    written = readers[fmt](out / name)
    assert len(written) == 30
    assert (out / f"f0.{fmt}").stat().st_mtime_ns == kept
    if fmt == "parquet":
        meta = pq.read_metadata(out / name).metadata
        assert meta[b"modelrouter.input_size"] == str((ds / "f1.csv").stat().st_size).encode()
        assert len(meta[b"modelrouter.input_sha256"]) == 64
    else:
        sidecar = json.loads((out / f".{name}.provenance.json").read_text())
        assert sidecar["modelrouter.input_mtime_ns"] == str((ds / "f1.csv").stat().st_mtime_ns)


def test_resume_sees_a_rewrite_that_kept_size_and_mtime(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    source = ds / "f.csv"
    source.write_text(rows(5))
    out = tmp_path / "out"
    assert run("predict", ds, "-o", out, *ONNX, "-k", "id").returncode == 0
    info = source.stat()
    text = source.read_text().replace("\n1,", "\n7,", 1)  # same length, another id
    source.write_text(text)
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert source.stat().st_size == info.st_size and source.stat().st_mtime_ns == info.st_mtime_ns
    again = run("predict", ds, "-o", out, "-t", "onnx", "-k", "id", "--resume")
    assert again.returncode == 0, again.stderr
    assert "1 stale output rescored" in again.stderr
    assert pd.read_csv(out / "f.csv")["id"].iloc[0] == 7


def test_resume_rescores_an_output_without_a_record(tmp_path: Path) -> None:
    """An output from before input identities were recorded (or from another tool)."""
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "f.csv").write_text(rows(5))
    out = tmp_path / "out"
    out.mkdir()
    (out / "f.csv").write_text("id,prediction\n1,from an older run\n")
    result = run("predict", ds, "-o", out, "-t", "onnx", "--resume")
    assert result.returncode == 0, result.stderr
    assert "1 stale output rescored" in result.stderr
    assert len(pd.read_csv(out / "f.csv")) == 5


# -- 4. a failed dataset run still counts what it finished --------------------------------------


def test_failed_dataset_run_reports_finished_files(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a1.csv").write_text(rows(20))
    (ds / "a2.csv").write_text("not,the,columns\n1,2,3\n")
    (ds / "a3.csv").write_text(rows(10))
    stats = tmp_path / "stats.json"
    result = run("predict", ds, "-o", tmp_path / "out", *ONNX, "--stats-json", stats)
    assert result.returncode == 3, result.stderr
    report = json.loads(stats.read_text())
    summary = report["summary"]
    assert (summary["files"], summary["rows_in"], summary["rows_out"], summary["exit_code"]) == (1, 20, 20, 3)
    assert f"{ds / 'a2.csv'}: missing feature columns" in summary["error"]
    assert [f["input"] for f in report["files"]] == [str(ds / "a1.csv")]


def test_keep_going_in_the_engine_scores_the_others_and_names_the_failed(tmp_path: Path) -> None:
    from modelrouter import reset_router
    from modelrouter.batch.datasets import DatasetSummary, score_dataset_locally
    from modelrouter.batch.run import RunOptions
    from modelrouter.model_type import ModelType

    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a1.csv").write_text(rows(20))
    (ds / "a2.csv").write_text("not,the,columns\n1,2,3\n")
    (ds / "a3.csv").write_text(rows(10))
    (ds / "a4.csv").write_text("garbage")
    out = tmp_path / "out"
    plan = plan_dataset(str(ds), str(out), None)
    summary = DatasetSummary(input=str(ds), output=str(out), engine="local")
    options = RunOptions(input=str(ds), model_type=ModelType.ONNX, keep_going=True)
    try:
        with pytest.raises(DataError) as caught:
            score_dataset_locally(options, plan, False, None, summary=summary)
    finally:
        reset_router()
    message = str(caught.value)
    assert message.startswith(f"{ds}: 2 of 4 files failed: {ds / 'a2.csv'}: missing feature columns")
    assert f"{ds / 'a4.csv'}: " in message and "the other 2 were scored; no _SUCCESS" in message
    assert scored(out) == ["a1.csv", "a3.csv"] and not (out / "_SUCCESS").exists()
    totals = summary.as_dict()["summary"]
    assert (totals["files"], totals["files_failed"], totals["rows_in"]) == (2, 2, 30)


@pytest.mark.parametrize("engine", ["local", pytest.param("dask", marks=pytest.mark.slow)])
def test_keep_going_scores_every_other_file_and_exits_3_naming_the_failed(
    tmp_path: Path, engine: str
) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a1.csv").write_text(rows(20))
    (ds / "a2.csv").write_text("not,the,columns\n1,2,3\n")
    (ds / "a3.csv").write_text(rows(10))
    out, stats = tmp_path / "out", tmp_path / "stats.json"
    (out).mkdir()
    (out / "_SUCCESS").write_text("")  # a stale marker from an earlier run
    result = run(
        "predict",
        ds,
        "-o",
        out,
        *ONNX,
        "--keep-going",
        "--engine",
        engine,
        "--stats-json",
        stats,
        timeout=180,
    )
    assert result.returncode == 3, result.stderr
    assert f"error: {ds}: 1 of 3 files failed: {ds / 'a2.csv'}: missing feature columns" in result.stderr
    assert "the other 2 were scored; no _SUCCESS" in result.stderr
    assert scored(out) == ["a1.csv", "a3.csv"] and not (out / "_SUCCESS").exists()
    report = json.loads(stats.read_text())
    summary = report["summary"]
    assert (summary["files"], summary["files_failed"], summary["rows_in"], summary["exit_code"]) == (
        2,
        1,
        30,
        3,
    )
    assert [f["input"] for f in report["failed"]] == [str(ds / "a2.csv")]
    # Fixed, then --resume does the rest only.
    (ds / "a2.csv").write_text(rows(5))
    again = run("predict", ds, "-o", out, "-t", "onnx", "--resume", "--keep-going")
    assert again.returncode == 0, again.stderr
    assert "1 file, 2 files skipped" in again.stderr and (out / "_SUCCESS").exists()


def test_keep_going_on_a_single_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(rows(2))
    result = run("predict", tmp_path / "a.csv", *ONNX, "--keep-going")
    assert result.returncode == 2 and "--keep-going applies to a directory or glob" in result.stderr


def test_a_dead_writers_temporary_file_is_never_left_beside_success(tmp_path: Path) -> None:
    """What a Dask worker killed mid-file leaves (its task then ran again elsewhere): a temp
    file of a dead pid in an output folder, appearing during the run. The engines share the
    step that writes _SUCCESS, which sweeps such files first."""
    from modelrouter import reset_router
    from modelrouter.batch.datasets import score_dataset_locally
    from modelrouter.batch.run import RunOptions
    from modelrouter.model_type import ModelType
    from modelrouter.storage.temp_files import _HOST

    ds = tmp_path / "ds"
    (ds / "sub").mkdir(parents=True)
    (ds / "a.csv").write_text(rows(3))
    (ds / "sub" / "b.csv").write_text(rows(3))
    out = tmp_path / "out"
    dead = subprocess.Popen(["true"])
    dead.wait()
    temp = out / "sub" / f".b.csv.{_HOST}.{dead.pid}.abcdefgh.tmp"

    def killed_worker(source: object) -> None:
        temp.write_text("half a file")

    plan = plan_dataset(str(ds), str(out), None)
    try:
        score_dataset_locally(
            RunOptions(input=str(ds), model_type=ModelType.ONNX), plan, False, None, killed_worker
        )
    finally:
        reset_router()
    assert (out / "_SUCCESS").exists() and not temp.exists()
    assert scored(out) == ["a.csv", "sub/b.csv"]


@pytest.mark.slow  # a Dask cluster: ~15 s
@pytest.mark.timeout(180)
def test_dask_worker_killed_by_sigterm_leaves_no_temp_beside_success(tmp_path: Path) -> None:
    import signal

    ds = tmp_path / "ds"
    ds.mkdir()
    body = "".join(LINES[1:]) * 600  # ~107k rows a file: the kill lands while it is written
    for i in range(3):
        (ds / f"p{i}.csv").write_text(LINES[0] + body)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    command = [
        str(MODELROUTER),
        "predict",
        str(ds),
        "-o",
        str(out),
        *ONNX,
        "--engine",
        "dask",
        "--workers",
        "2",
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        temps = list(out.glob(".*.tmp")) if out.exists() else []
        if temps:
            killed = int(temps[0].name.split(".")[-3])
            os.kill(killed, signal.SIGTERM)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=150)
    assert killed is not None, "no worker was caught writing"
    assert process.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == []
    assert (out / "_SUCCESS").exists()
    assert [len(pd.read_csv(out / f"p{i}.csv")) for i in range(3)] == [178 * 600] * 3


# -- 5. a missing input is named as such ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["nothere/", "-o", "out/"], ["nothere/"], ["nothere.csv"], ["nothere", "-o", "out.csv"]],
    ids=["folder with -o folder", "folder", "file", "file with -o"],
)
def test_missing_input_says_the_input_does_not_exist(tmp_path: Path, args: list[str]) -> None:
    result = run("predict", *args, *ONNX, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"error: {args[0]}: the input does not exist (no such file or folder)" in result.stderr
    assert sorted(tmp_path.iterdir()) == []


# -- 7. the walker's property, on random trees ----------------------------------------------------

LONG_BUDGET = int(os.environ.get("MODELROUTER_FUZZ_EXAMPLES", "0"))
IN_PROCESS = settings(
    max_examples=LONG_BUDGET * 10 or 60,
    derandomize=not LONG_BUDGET,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
SUBPROCESS = settings(IN_PROCESS, max_examples=LONG_BUDGET or 3)
NAMES = st.sampled_from(["a", "b", "_c", ".d", "e.csv", "f.parquet", "g.txt", "h.csv.gz", "i.tsv"])


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Steps that build a tree: (kind, path, target) with kind in folder/file/filelink/
    folderlink/dangling. New entries go into real folders; link targets are earlier folders
    (ancestors too: loops), links included, or files (a file link keeps its target's suffix,
    so its content matches its name)."""
    real = [""]
    folders = [""]
    files: list[str] = []
    steps: list[tuple[str, str, str]] = []
    taken: set[str] = set()
    for n in range(draw(st.integers(1, 14))):
        parent = draw(st.sampled_from(real))
        kind = draw(
            st.sampled_from(["folder", "file", "file", "filelink", "folderlink", "folderlink", "dangling"])
        )
        if kind == "filelink" and not files:
            kind = "file"
        target = draw(st.sampled_from(files)) if kind == "filelink" else ""
        name = f"ln{n}{data_suffix(target)}" if kind == "filelink" else draw(NAMES)
        path = f"{parent}/{name}".lstrip("/")
        if path in taken:
            continue
        taken.add(path)
        if kind == "folderlink":
            target = draw(st.sampled_from(folders))
            folders.append(path)
        elif kind in ("file", "filelink"):
            files.append(path)
        elif kind == "folder":
            folders.append(path)
            real.append(path)
        steps.append((kind, path, target))
    return steps


def content(name: str) -> bytes:
    """Two wine rows in the format the name says."""
    text = rows(2)
    if name.endswith(".parquet"):
        sink = io.BytesIO()
        pd.read_csv(io.StringIO(text)).to_parquet(sink, index=False)
        return sink.getvalue()
    if name.endswith(".tsv"):
        return text.replace(",", "\t").encode()
    if name.endswith(".gz"):
        return gzip.compress(text.encode())
    return text.encode()


def build(base: Path, steps: list[tuple[str, str, str]]) -> Path:
    ds = base / "ds"
    ds.mkdir()
    for kind, path, target in steps:
        where = ds / path
        if kind == "folder":
            where.mkdir()
        elif kind == "file":
            where.write_bytes(content(where.name))
        elif kind == "dangling":
            where.symlink_to(base / "nowhere")
        else:
            where.symlink_to(os.path.relpath(ds / target, where.parent))
    return ds


def oracle(ds: Path, wanted: object) -> tuple[set[tuple[int, int, str]], list[str]]:
    """What a correct walk gives, computed another way: a breadth-first search over real
    folders (by inode) from the root; (folder inode, name) of every data file, and the
    entries that must make the run refuse."""
    match = wanted if callable(wanted) else is_data_file
    expected: set[tuple[int, int, str]] = set()
    refused: list[str] = []
    seen: set[tuple[int, int]] = set()
    todo = [ds]
    while todo:
        folder = todo.pop()
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        for entry in folder.iterdir():
            if entry.name.startswith((".", "_")):
                continue
            try:
                mode = entry.stat().st_mode
            except OSError:
                refused.append(entry.name)
                continue
            if stat.S_ISDIR(mode):
                todo.append(entry)
            elif match(entry.name):
                expected.add((info.st_dev, info.st_ino, entry.name))
    return expected, refused


def identities(paths: tuple[object, ...]) -> list[tuple[int, int, str]]:
    out = []
    for path in paths:
        assert isinstance(path, Path)
        info = path.parent.stat()
        out.append((info.st_dev, info.st_ino, path.name))
    return out


@IN_PROCESS
@given(steps=trees(), form=st.sampled_from(["folder", "glob"]))
def test_walker_property_in_process(steps: list[tuple[str, str, str]], form: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="mr-walk-"))
    try:
        ds = build(base, steps)
        source = str(ds) if form == "folder" else f"{ds}/**/*.csv"
        wanted = None if form == "folder" else (lambda n: n.endswith(".csv"))
        expected, refused = oracle(ds, wanted)
        if refused:
            with pytest.raises(DataError) as caught:
                plan_dataset(source, str(base / "out"), None, allow_empty=True)
            assert any(f"/{name}: " in str(caught.value) for name in refused), str(caught.value)
            return
        plan = plan_dataset(source, str(base / "out"), None, allow_empty=True)
        found = identities(plan.inputs)
        assert len(found) == len(set(found)), "a file was listed twice"
        assert set(found) == expected
    finally:
        shutil.rmtree(base)


@SUBPROCESS
@given(steps=trees())
def test_walker_property_subprocess(steps: list[tuple[str, str, str]]) -> None:
    """Through the command: exactly the expected files are scored, once each, or exit 3
    naming an entry; never a hang, never another exit code, never ``_SUCCESS`` on failure."""
    base = Path(tempfile.mkdtemp(prefix="mr-walk-"))
    try:
        ds = build(base, steps)
        expected, refused = oracle(ds, None)
        out = base / "out"
        result = run("predict", ds, "-o", out, *ONNX, "--allow-empty", timeout=60)
        if refused:
            assert result.returncode == 3, result.stderr
            assert any(f"/{name}: " in result.stderr for name in refused), result.stderr
            assert not (out / "_SUCCESS").exists()
            return
        assert result.returncode == 0, result.stderr
        outputs = scored(out)
        assert len(outputs) == len(expected)
        for name in outputs:
            assert pq.read_table(out / name).num_rows == 2 if name.endswith(".parquet") else True
            if name.endswith((".csv", ".gz")):
                assert len(pd.read_csv(out / name)) == 2
        assert (out / "_SUCCESS").exists()
    finally:
        shutil.rmtree(base)
