"""The output side of a run (issues 10 and 11): no output aliases an input, special files are
streams, one commit for all outputs, signals after the commit, datasets that cannot be read
whole, stale temporary files, stdio edge cases, the implicit config's ownership rule.

End-to-end: the real ``modelrouter`` in a subprocess on real files; exact exit codes, the
file named on stderr, nothing partial left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelrouter.storage.commit import TEMP_PATTERN, temp_beside
from modelrouter.storage.run_paths import PathConflict, PathUse, check_paths
from modelrouter.storage.temp_files import _HOST

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
SAMPLE = ROOT / "sample_data" / "wine.csv"
ONNX_MODEL = ROOT / "models" / "classifier.onnx"
ONNX = ["-t", "onnx", "--no-stats"]  # no scikit-learn import: half the start-up
PREVIOUS = b"id,prediction\n1,from an earlier run\n"
TEMP_NAME = re.compile(r"^\..+\.tmp$")


def run(
    *args: str | Path,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], cwd=cwd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
        text=True, env={**base, **(env or {})}, timeout=60, check=False, pass_fds=pass_fds,
    )  # fmt: skip


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TEMP_NAME.match(p.name))


def usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Usage: modelrouter" in result.stderr and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.fixture
def dev_full() -> Path:
    """/dev/full, when it is the device (a run of older code as root can replace it by a file)."""
    path = Path("/dev/full")
    if not path.is_char_device():
        pytest.skip("/dev/full is not a character device on this machine")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    source = tmp_path / "in.csv"
    source.write_bytes(SAMPLE.read_bytes())
    return source


@pytest.fixture
def with_bad_row(tmp_path: Path) -> Path:
    """The sample with one unconvertible value (data row 3): a reject under --on-error skip."""
    frame = pd.read_csv(SAMPLE)
    frame["alcohol"] = frame["alcohol"].astype(object)
    frame.loc[2, "alcohol"] = "oops"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


# -- 1. no output may alias an input or another output --------------------------------------


def _alias_cases(d: Path, src: Path) -> dict[str, tuple[list[str | Path], str, Path]]:
    """name -> (arguments, the option the usage error names, the file that must not change)."""
    (d / "link.csv").symlink_to(src)
    os.link(src, d / "hard.csv")
    model = d / "model.onnx"
    model.write_bytes(ONNX_MODEL.read_bytes())
    out = d / "out.csv"
    out.write_bytes(PREVIOUS)
    return {
        "output is the input": (["-o", src], "--output", src),
        "output is a symlink to the input": (["-o", d / "link.csv"], "--output", src),
        "output is a hard link to the input": (["-o", d / "hard.csv"], "--output", src),
        "rejects is the input": (["-o", out, "--on-error", "skip", "--rejects", src], "--rejects", src),
        "rejects is the output": (["-o", out, "--on-error", "skip", "--rejects", out], "--rejects", out),
        "stats-json is the output": (["-o", out, "--stats-json", out], "--stats-json", out),
        "metrics is the output": (
            ["-o", out, "--metrics-textfile", d / "out.csv"],
            "--metrics-textfile",
            out,
        ),
        "stats-json is the model": (["-o", out, "-m", model, "--stats-json", model], "--stats-json", model),
        "output is the model": (["-m", model, "-o", model], "--output", model),
        "output is the config": (["-c", d / "c.toml", "-o", d / "c.toml"], "--output", d / "c.toml"),
    }


def test_outputs_that_alias_an_input_or_each_other_are_usage_errors(tmp_path: Path, data: Path) -> None:
    (tmp_path / "c.toml").write_text(f'[onnx]\npath = "{ONNX_MODEL.as_posix()}"\n')
    cases = _alias_cases(tmp_path, data)
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for name, (args, option, kept) in cases.items():
        result = run("predict", data, *ONNX, *args)
        usage_error(result, option, "same file")
        assert "nothing was read or written" in result.stderr, name
        assert kept.read_bytes() == before[kept.resolve() if kept.is_symlink() else kept], name
        assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before, name
        assert temps(tmp_path) == [], name
        assert not (tmp_path / "in.predictions.csv").exists()


def test_stdin_redirected_from_the_output_file(tmp_path: Path, data: Path) -> None:
    with data.open("rb") as stdin:
        result = run("predict", "-", *ONNX, "-o", data, stdin=stdin.fileno())
    usage_error(result, "--output", "stdin")
    assert data.read_bytes() == SAMPLE.read_bytes()


def test_dataset_default_rejects_name_colliding_with_another_output(tmp_path: Path) -> None:
    """x.csv's rejects would be written where x.rejects.csv's predictions go."""
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "x.csv").write_bytes(SAMPLE.read_bytes())
    (folder / "x.rejects.csv").write_bytes(SAMPLE.read_bytes())
    result = run("predict", folder, *ONNX, "--on-error", "skip", "-o", tmp_path / "out")
    usage_error(result, "x.rejects.csv", "same file")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").rglob("*")) == []


def test_dataset_outputs_that_alias_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "model.csv").write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    model = out / "model.csv"  # an odd name for a model, but a real file this run reads
    model.write_bytes(ONNX_MODEL.read_bytes())
    result = run("predict", folder, "-m", model, "-t", "onnx", "-o", out)
    usage_error(result, "model.csv", "same file")
    assert model.read_bytes() == ONNX_MODEL.read_bytes()


def test_convert_output_that_is_the_model_through_a_hard_link(tmp_path: Path) -> None:
    model = tmp_path / "m.pkl"
    model.write_bytes((ROOT / "models" / "classifier.pkl").read_bytes())
    os.link(model, tmp_path / "m.onnx")
    result = run("convert", model, "-o", tmp_path / "m.onnx")
    usage_error(result, "--output", "same file")
    assert (tmp_path / "m.onnx").read_bytes() == (ROOT / "models" / "classifier.pkl").read_bytes()


@pytest.fixture(scope="module")
def link_farm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Files, links to them and names not created yet; each name mapped to its real file."""
    d = tmp_path_factory.mktemp("links")
    (d / "a").write_text("a")
    (d / "b").write_text("b")
    (d / "sym_a").symlink_to(d / "a")
    os.link(d / "a", d / "hard_a")
    (d / "sub").mkdir()
    (d / "sub" / "up_a").symlink_to("../a")
    (d / "sym_c").symlink_to(d / "c")  # dangling: c does not exist yet
    (d / "dirlink").symlink_to(d)
    truth = {"a": "a", "sym_a": "a", "hard_a": "a", "sub/up_a": "a", "dirlink/a": "a", "b": "b", "c": "c",
             "sym_c": "c", "dirlink/c": "c", "d": "d", "sub/d": "sub/d", "sub/../d": "d"}  # fmt: skip
    return d, truth


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_check_paths_refuses_exactly_the_shared_files(
    link_farm: tuple[Path, dict[str, str]], data: st.DataObject
) -> None:
    """For any mix of names, links and not-yet-existing paths: refused iff two uses (an output
    and anything else) are one file."""
    folder, truth = link_farm
    names = sorted(truth)
    inputs = data.draw(st.lists(st.sampled_from(names), max_size=3))
    outputs = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4))
    seen = {truth[n] for n in inputs}
    clash = False
    for name in outputs:
        clash = clash or truth[name] in seen
        seen.add(truth[name])
    uses_in = [PathUse(str(folder / n), "input", "INPUT") for n in inputs]
    uses_out = [PathUse(str(folder / n), "output", "--output") for n in outputs]
    if clash:
        with pytest.raises(PathConflict):
            check_paths(uses_in, uses_out)
    else:
        check_paths(uses_in, uses_out)


_SEGMENT = st.text("abc-_.0", min_size=1, max_size=3).filter(lambda t: t not in (".", ".."))


@settings(max_examples=40, deadline=None)
@given(
    bucket=st.sampled_from(["b1", "b2"]),
    key_a=st.lists(_SEGMENT, min_size=1, max_size=3),
    key_b=st.lists(_SEGMENT, min_size=1, max_size=3),
    scheme=st.sampled_from(["s3", "S3", "s3a", "S3A"]),
    slashes=st.integers(1, 3),
)
def test_check_paths_compares_object_store_uris_as_strings(
    bucket: str, key_a: list[str], key_b: list[str], scheme: str, slashes: int
) -> None:
    """An object is the same whatever the scheme's case, ``s3a`` or repeated slashes; two keys
    are two objects; a local path that looks alike (``s3:/b/k``) is never that object."""
    plain = f"s3://{bucket}/{'/'.join(key_a)}"
    spelled = f"{scheme}://{bucket}{'/' * slashes}{('/' * slashes).join(key_a)}"
    with pytest.raises(PathConflict):
        check_paths([PathUse(plain, "the input", "INPUT")], [PathUse(spelled, "the output", "-o")])
    other = f"s3://{bucket}/{'/'.join(key_b)}"
    if key_b != key_a:
        check_paths([PathUse(plain, "the input", "INPUT")], [PathUse(other, "the output", "-o")])
    check_paths(
        [PathUse(f"s3:/{bucket}/{'/'.join(key_a)}", "the input", "INPUT")], [PathUse(plain, "o", "-o")]
    )


def test_devices_are_never_a_conflict() -> None:
    check_paths([PathUse("/dev/null", "input", "INPUT")], [PathUse("/dev/null", "o", "-o")] * 2)


# -- 2. character devices and FIFOs are written as streams --------------------------------


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with path.open("rb") as fifo:
            into.append(fifo.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_dev_null_is_written_not_replaced(data: Path) -> None:
    result = run(
        "predict", data, *ONNX, "-o", "/dev/null", "--stats-json", "/dev/null", "--metrics-textfile",
        "/dev/null", "--on-error", "skip", "--rejects", "/dev/null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Path("/dev/null").is_char_device()
    assert temps(Path("/dev")) == []


@pytest.mark.parametrize("option", ["-o", "--rejects", "--stats-json", "--metrics-textfile"])
def test_dev_full_is_exit_5(tmp_path: Path, data: Path, option: str, dev_full: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_bytes(PREVIOUS)
    args = ["-o", str(out), "--on-error", "skip"]
    if option == "-o":
        args = ["-o", "/dev/full", "--on-error", "skip", "--rejects", str(tmp_path / "r.csv")]
    else:
        args += [option, "/dev/full"]
    result = run("predict", data, *ONNX, *args)
    assert result.returncode == 5, result.stderr
    assert "error: /dev/full: " in result.stderr and "no space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert Path("/dev/full").is_char_device()
    assert out.read_bytes() == PREVIOUS  # the run failed: nothing of it was committed
    assert not (tmp_path / "in.rejects.csv").exists() and not (tmp_path / "r.csv").exists()
    assert temps(tmp_path) == [] and temps(Path("/dev")) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_fifo_output_is_streamed_to_its_reader(tmp_path: Path, data: Path, fmt: str) -> None:
    expected = tmp_path / f"expected.{fmt}"
    assert run("predict", data, *ONNX, "-k", "id", "-o", expected).returncode == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    result = run("predict", data, *ONNX, "-k", "id", "-o", fifo, "--output-format", fmt)
    reader.join(10)
    assert result.returncode == 0, result.stderr
    assert fifo.is_fifo()
    if fmt == "csv":
        assert got == [expected.read_bytes()]
    else:
        streamed, written = pq.read_table(pa.BufferReader(got[0])), pq.read_table(expected)
        # A stream cannot be rewritten: its kept CSV columns stay text (docs/formats.md).
        assert streamed.column("id").to_pylist() == [str(i) for i in written.column("id").to_pylist()]
        assert streamed.drop_columns(["id"]).equals(written.drop_columns(["id"]))
    assert temps(tmp_path) == []


def test_fifo_for_stats_json_and_metrics(tmp_path: Path, data: Path) -> None:
    stats, metrics = tmp_path / "stats", tmp_path / "metrics"
    os.mkfifo(stats)
    os.mkfifo(metrics)
    got_stats: list[bytes] = []
    got_metrics: list[bytes] = []
    readers = [_read_fifo(stats, got_stats), _read_fifo(metrics, got_metrics)]
    result = run(
        "predict", data, *ONNX, "-o", tmp_path / "out.csv", "--stats-json", stats,
        "--metrics-textfile", metrics,
    )  # fmt: skip
    for reader in readers:
        reader.join(10)
    assert result.returncode == 0, result.stderr
    assert b'"rows_out": 178' in got_stats[0]
    assert b"modelrouter_last_run_success" in got_metrics[0]
    assert stats.is_fifo() and metrics.is_fifo()


@pytest.mark.slow  # a skl2onnx conversion per target (~13 s); devices/FIFOs for predict stay in make test
def test_convert_to_dev_null_and_a_fifo(tmp_path: Path, dev_full: Path) -> None:
    pytest.importorskip("skl2onnx")
    model = ROOT / "models" / "classifier.pkl"
    assert run("convert", model, "-o", "/dev/null", "-q").returncode == 0
    assert Path("/dev/null").is_char_device()
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    result = run("convert", model, "-o", fifo, "-q")
    reader.join(30)
    assert result.returncode == 0, result.stderr
    import onnx

    assert onnx.load_from_string(got[0]).graph.input[0].name == "input"
    assert run("convert", model, "-o", "/dev/full", "-q").returncode == 5


# -- 3. all outputs of a run are committed together -----------------------------------------


def test_failure_after_scoring_leaves_rejects_and_output_as_they_were(
    tmp_path: Path, data: Path, with_bad_row: Path, dev_full: Path
) -> None:
    out = tmp_path / "out.csv"
    first = run("predict", data, *ONNX, "-o", out, "--on-error", "skip")
    assert first.returncode == 0, first.stderr
    rejects = tmp_path / "out.rejects.csv"
    before = (out.read_bytes(), rejects.read_bytes())
    for option in ("--stats-json", "--metrics-textfile"):
        second = run("predict", with_bad_row, *ONNX, "-o", out, "--on-error", "skip", option, "/dev/full")
        assert second.returncode == 5, second.stderr
        assert (out.read_bytes(), rejects.read_bytes()) == before, option
        assert temps(tmp_path) == []


def test_error_budget_still_commits_the_rejects_alone(tmp_path: Path, with_bad_row: Path) -> None:
    """docs/specification.md §8: the rejects explain the failure; no predictions are written."""
    out = tmp_path / "out.csv"
    result = run("predict", with_bad_row, *ONNX, "-o", out, "--on-error", "skip", "--max-error-rate", "0")
    assert result.returncode == 3
    assert not out.exists()
    assert pd.read_csv(tmp_path / "out.rejects.csv")["row"].tolist() == [3]


def test_dataset_stats_failure_withholds_success(tmp_path: Path, dev_full: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.csv").write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out"
    result = run("predict", folder, *ONNX, "-o", out, "--stats-json", "/dev/full")
    assert result.returncode == 5
    assert (out / "a.csv").exists()  # a file is the unit of atomicity
    assert not (out / "_SUCCESS").exists()


# -- 4 and 8. signals after the commit --------------------------------------------------------


def test_sigterm_right_after_the_commit_exits_0(tmp_path: Path, data: Path) -> None:
    """Repeated runs, each sent SIGTERM as soon as its output appears: once committed, exit 0
    (never 143 with 'no output was written', never 'Exception ignored'). Two here; make fuzz's
    soak and the in-process test below reach the other moments of the commit."""
    for attempt in range(2):
        out = tmp_path / f"out{attempt}.csv"
        proc = subprocess.Popen(
            [str(MODELROUTER), "predict", str(data), *ONNX, "-o", str(out), "--stats-json",
             str(tmp_path / f"s{attempt}.json")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert "no output was written" not in stderr and "Exception ignored" not in stderr
        assert "Traceback" not in stderr
        assert len(pd.read_csv(out)) == 178
        assert (tmp_path / f"s{attempt}.json").exists()  # committed together


@pytest.mark.parametrize("where", ["rejects rename", "output rename", "stats table"])
def test_signal_during_or_after_the_commit_in_process(
    tmp_path: Path, with_bad_row: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The signal handler itself runs: a SIGTERM raised during a rename or after the commit
    leaves the run committed, with exit 0."""
    import modelrouter.cli.exits
    from modelrouter.cli import render
    from modelrouter.cli.main import app
    from typer.testing import CliRunner

    monkeypatch.setattr(
        modelrouter.cli.exits, "hard_exit", lambda code: (_ for _ in ()).throw(SystemExit(code))
    )
    previous = signal.signal(signal.SIGTERM, modelrouter.cli.exits.on_signal)
    out = tmp_path / "out.csv"
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        if str(dst).endswith("rejects.csv" if where == "rejects rename" else "out.csv"):
            signal.raise_signal(signal.SIGTERM)

    def table(*args: object) -> None:  # rich's console outlives CliRunner's streams: not drawn
        signal.raise_signal(signal.SIGTERM)

    stats = ["--stats"] if where == "stats table" else ["--no-stats"]
    if where == "stats table":
        monkeypatch.setattr(render, "stats_table", table)
    else:
        monkeypatch.setattr("modelrouter.storage.commit.os.replace", replace)
    try:
        result = CliRunner().invoke(
            app, ["predict", str(with_bad_row), "-t", "onnx", "-o", str(out), "--on-error", "skip", *stats]
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 0, result.output
    assert "interrupted" not in result.output
    assert len(pd.read_csv(out)) == 177
    assert pd.read_csv(tmp_path / "out.rejects.csv")["row"].tolist() == [3]


def test_sigterm_during_interpreter_shutdown_is_quiet(tmp_path: Path, data: Path) -> None:
    """A SIGTERM from an atexit hook (the interpreter is shutting down): exit with the run's
    code, no 'Exception ignored … Interrupted'."""
    script = (
        "import atexit, os, signal, sys, time\n"
        "from modelrouter.cli.main import main\n"
        "def late():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(1)\n"
        "atexit.register(late)\n"
        f"sys.argv = ['modelrouter', 'predict', {str(data)!r}, '-t', 'onnx', '--no-stats', "
        f"'-o', {str(tmp_path / 'out.csv')!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Exception ignored" not in result.stderr and "Interrupted" not in result.stderr
    assert len(pd.read_csv(tmp_path / "out.csv")) == 178


# -- 5. datasets never skip a listed file silently --------------------------------------------


@pytest.mark.parametrize("kind", ["dangling symlink", "fifo"])
def test_dataset_file_that_cannot_be_read_fails_the_run(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.csv").write_bytes(SAMPLE.read_bytes())
    if kind == "fifo":
        os.mkfifo(folder / "c.csv")
        bad = folder / "c.csv"
    else:
        (folder / "b.parquet").symlink_to(tmp_path / "gone.parquet")
        bad = folder / "b.parquet"
    out = tmp_path / "out"
    for source in (str(folder), f"{folder}/*"):
        result = run("predict", source, *ONNX, "-o", out)
        assert result.returncode == 3, result.stderr
        assert f"error: {bad}: " in result.stderr
        assert not (out / "_SUCCESS").exists()


def test_dataset_with_a_folder_that_cannot_be_listed_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner itself, with listing the folder failing as it does for a non-root user
    (root reads every folder, so the end-to-end case below may have to be skipped)."""
    from modelrouter import DataError
    from modelrouter.batch.datasets import plan_dataset

    folder = tmp_path / "ds"
    (folder / "secret").mkdir(parents=True)
    (folder / "a.csv").write_bytes(SAMPLE.read_bytes())
    (folder / "secret" / "b.csv").write_bytes(SAMPLE.read_bytes())
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str] = ".") -> object:
        if Path(path).name == "secret":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p).name != "secret" and real_access(p, mode))
    for source in (str(folder), f"{folder}/**/*.csv", f"{folder}/*/*.csv"):
        with pytest.raises(DataError, match=f"{folder / 'secret'}: cannot list this folder"):
            plan_dataset(source, str(tmp_path / "out"), None)
    assert plan_dataset(f"{folder}/*.csv", str(tmp_path / "out"), None).inputs == (folder / "a.csv",)


def test_dataset_with_an_unreadable_subfolder_fails(tmp_path: Path) -> None:
    """As a user without root's override: run the CLI as 'nobody' when the tests run as root."""
    import shutil
    import tempfile

    user: int | None = None
    if os.geteuid() == 0:
        try:
            import pwd

            user = pwd.getpwnam("nobody").pw_uid
            subprocess.run([str(MODELROUTER), "--version"], user=user, check=True, capture_output=True)
        except (KeyError, OSError, subprocess.CalledProcessError):
            pytest.skip("the CLI cannot run as 'nobody' here (its interpreter is private to root)")
    base = Path(tempfile.mkdtemp(prefix="mr-unreadable-", dir="/tmp"))
    try:
        base.chmod(0o777)
        folder = base / "ds"
        (folder / "secret").mkdir(parents=True)
        (folder / "a.csv").write_bytes(SAMPLE.read_bytes())
        (folder / "secret" / "b.csv").write_bytes(SAMPLE.read_bytes())
        (folder / "secret").chmod(0o700)
        if user is None:
            os.chmod(folder / "secret", 0o000)
        for source in (str(folder), f"{folder}/**/*.csv"):
            result = subprocess.run(
                [str(MODELROUTER), "predict", source, *ONNX, "-o", str(base / "out")],
                capture_output=True, text=True, timeout=60, user=user, cwd=base,
                env={k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")},
            )  # fmt: skip
            assert result.returncode == 3, result.stderr
            assert f"{folder / 'secret'}: cannot list this folder" in result.stderr
            assert not (base / "out" / "_SUCCESS").exists()
    finally:
        os.chmod(base / "ds" / "secret", 0o700)
        shutil.rmtree(base)


# -- 6. temporary files: named by pid, swept when their run is dead ----------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_names_carry_host_and_pid(tmp_path: Path) -> None:
    temp = temp_beside(tmp_path / "out.csv")
    found = TEMP_PATTERN.match(temp.name)
    assert found is not None and found["name"] == "out.csv"
    assert (found["host"], int(found["pid"])) == (_HOST, os.getpid())


def test_stale_temps_of_dead_runs_are_swept_others_kept(tmp_path: Path, data: Path) -> None:
    dead = _dead_pid()
    stale = tmp_path / f".out.csv.{_HOST}.{dead}.abcd_123.tmp"
    alive = tmp_path / f".out.csv.{_HOST}.{os.getpid()}.zzzzzzzz.tmp"  # this test process lives
    other_host = tmp_path / f".out.csv.elsewhere.{dead}.abcdefgh.tmp"
    not_ours = tmp_path / ".out.csv.k2j3h4.tmp"  # an old-style or foreign name
    for path in (stale, alive, other_host, not_ours):
        path.write_text("partial")
    result = run("predict", data, *ONNX, "-o", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert alive.exists() and other_host.exists() and not_ours.exists()


def test_resume_after_a_killed_run_sweeps_and_never_counts_a_temp(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out"
    assert run("predict", folder, *ONNX, "-o", out).returncode == 0
    done = (out / "a.csv").stat().st_mtime_ns  # a's output is complete (atomic writes)
    for name in ("b.csv", ".b.csv.provenance.json", "_SUCCESS"):
        (out / name).unlink()
    stale = out / f".b.csv.{_HOST}.{_dead_pid()}.abcdefgh.tmp"  # b's run was killed
    stale.write_text("half")
    result = run("predict", folder, *ONNX, "-o", out, "--resume")
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert (out / "a.csv").stat().st_mtime_ns == done  # skipped: made from this very input
    assert len(pd.read_csv(out / "b.csv")) == 178
    assert (out / "_SUCCESS").exists()
    assert temps(out) == []


# -- 7. stdin and stdout ----------------------------------------------------------------------


def test_stdout_on_a_full_disk_is_exit_5(data: Path, dev_full: Path) -> None:
    with open("/dev/full", "wb") as full:
        result = run("predict", data, *ONNX, "-o", "-", stdout=full.fileno())
    assert result.returncode == 5, result.stderr
    assert "error: <stdout>: " in result.stderr and "no space left on device" in result.stderr
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr


def _closed_fd_run(fd: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI started with ``fd`` closed (the shell's ``>&-`` / ``<&-``)."""
    script = f"import os, sys; os.close({fd}); os.execv(sys.argv[1], sys.argv[1:])"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELROUTER_")}
    return subprocess.run(
        [sys.executable, "-c", script, str(MODELROUTER), *args], capture_output=fd != 1,
        stderr=subprocess.PIPE if fd == 1 else None, text=True, timeout=60, env=base, check=False,
    )  # fmt: skip


def test_closed_stdout_and_stdin(tmp_path: Path, data: Path) -> None:
    no_stdout = _closed_fd_run(1, "predict", str(data), *ONNX, "-o", "-")
    assert no_stdout.returncode == 5
    assert "error: <stdout>: cannot write: standard output is closed" in no_stdout.stderr
    no_stdin = _closed_fd_run(0, "predict", "-", *ONNX, "-o", str(tmp_path / "out.csv"))
    assert no_stdin.returncode == 3
    assert "error: <stdin>: cannot read: standard input is closed" in no_stdin.stderr
    assert not (tmp_path / "out.csv").exists() and temps(tmp_path) == []


@pytest.mark.parametrize("option", ["--rejects", "--stats-json", "--metrics-textfile"])
def test_only_output_means_stdout(tmp_path: Path, data: Path, option: str) -> None:
    result = run(
        "predict", data, *ONNX, "-o", tmp_path / "o.csv", "--on-error", "skip", option, "-", cwd=tmp_path
    )
    usage_error(result, option, "only accepted by -o")
    assert not (tmp_path / "-").exists() and not (tmp_path / "o.csv").exists()


def test_fifo_and_dev_stdin_inputs_are_read_as_csv_streams(tmp_path: Path, data: Path) -> None:
    expected = run("predict", data, *ONNX, "-k", "id", "-o", "-").stdout
    fifo = tmp_path / "feed"  # no suffix: a stream is CSV
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(data.read_bytes())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    from_fifo = run("predict", fifo, *ONNX, "-k", "id", "-o", "-")
    writer.join(10)
    assert from_fifo.returncode == 0, from_fifo.stderr
    assert from_fifo.stdout == expected
    with data.open("rb") as stdin:
        from_file = run("predict", "/dev/stdin", *ONNX, "-k", "id", "-o", "-", stdin=stdin.fileno())
    assert (from_file.returncode, from_file.stdout) == (0, expected), from_file.stderr
    piped = subprocess.run(
        f"cat {data} | {MODELROUTER} predict /dev/stdin -t onnx --no-stats -k id -o -",
        shell=True, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (piped.returncode, piped.stdout) == (0, expected), piped.stderr


def test_parquet_on_stdin(tmp_path: Path, data: Path) -> None:
    parquet = tmp_path / "in.parquet"
    pd.read_csv(data).to_parquet(parquet)
    piped = subprocess.run(
        f"cat {parquet} | {MODELROUTER} predict - --input-format parquet -t onnx -o -",
        shell=True, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    usage_error(piped, "--input-format", "takes CSV only")
    assert piped.stdout == ""
    with parquet.open("rb") as stdin:  # a redirected regular file is seekable: it works
        ok = run("predict", "-", "--input-format", "parquet", *ONNX, "-o", "-", stdin=stdin.fileno())
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.splitlines()) == 179
    fifo = tmp_path / "pipe.parquet"
    os.mkfifo(fifo)
    result = run("predict", fifo, *ONNX, "-o", "-")
    assert result.returncode == 3
    assert f"error: {fifo}: " in result.stderr and "Parquet needs a seekable file" in result.stderr


# -- 9. a config found in the working directory must be the user's own --------------------------


@pytest.fixture
def found_config(tmp_path: Path) -> Path:
    config = tmp_path / "modelrouter.toml"
    config.write_text(f'[onnx]\npath = "{ONNX_MODEL.as_posix()}"\n')
    config.chmod(0o644)
    return config


@pytest.mark.parametrize(
    "mode", [0o664, pytest.param(0o646, marks=pytest.mark.slow), pytest.param(0o666, marks=pytest.mark.slow)]
)
def test_found_config_writable_by_others_is_refused(found_config: Path, mode: int) -> None:
    found_config.chmod(mode)
    result = run("models", cwd=found_config.parent)
    assert result.returncode == 4
    assert f"error: {found_config.name}: refusing a config file writable by group or others" in result.stderr
    assert f"mode {mode:04o}" in result.stderr
    # Chosen explicitly, the same file is used.
    assert run("models", "-c", found_config, cwd=found_config.parent).returncode == 0
    assert (
        run("models", cwd=found_config.parent, env={"MODELROUTER_CONFIG": str(found_config)}).returncode == 0
    )


def test_found_config_owned_by_the_user_is_used(found_config: Path, data: Path) -> None:
    result = run("predict", data, "--no-stats", "-o", "-", cwd=found_config.parent)
    assert result.returncode == 0, result.stderr  # the only type configured there: onnx


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_found_config_owned_by_someone_else_is_refused(found_config: Path, data: Path) -> None:
    os.chown(found_config, 65534, -1)
    result = run("predict", data, "-o", "-", cwd=found_config.parent)
    assert result.returncode == 4
    assert "refusing a config file owned by uid 65534, not by the current user (uid 0)" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("where", ["fchmod", "writer"])
def test_a_signal_while_the_output_opens_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """SIGINT lands right after the temporary file exists, before the object is returned.

    The caller never gets the object to abort, so the constructor must clean up itself (a
    test that signals as soon as the temporary file appears once found one left behind)."""
    from modelrouter.cli.exits import Interrupted
    from modelrouter.storage import commit as outputs

    def interrupted(*args: object, **kwargs: object) -> None:
        raise Interrupted(signal.SIGINT)

    if where == "fchmod":
        monkeypatch.setattr(os, "fchmod", interrupted)
    else:
        monkeypatch.setattr(outputs, "open_writer", interrupted)
    schema = pa.schema([("prediction", pa.int64())])
    with pytest.raises(Interrupted):
        outputs.AtomicOutput(tmp_path / "out.parquet", "parquet", schema)
    assert list(tmp_path.iterdir()) == []
    from modelrouter.storage import inflight

    assert not any(p.parent == tmp_path for p in inflight.current().temp_files)


def test_hosts_that_share_a_first_label_get_different_temporary_names() -> None:
    """Two machines ``node1.cluster-a`` and ``node1.cluster-b`` writing into one shared folder
    must not take each other's temporaries for their own (a dead pid on one host may be a
    live run on the other: its temporary would be swept while it writes)."""
    from modelrouter.storage.temp_files import host_tag

    a, b = host_tag("node1.cluster-a"), host_tag("node1.cluster-b")
    assert a != b and a.startswith("node1-") and b.startswith("node1-")
    assert host_tag("node1.cluster-a") == a  # stable across runs
    for tag in (a, b, host_tag(""), host_tag("ünïcode.host"), host_tag("x" * 300)):
        assert TEMP_PATTERN.match(f".out.csv.{tag}.123.abcdefgh.tmp") is not None, tag


# -- an output that is a symbolic link is written through, never replaced ----------------------


def test_an_output_symlink_is_written_through_and_kept(tmp_path: Path, data: Path) -> None:
    """``-o latest.csv`` (a link to the real file), and the side files likewise: the target
    gets the new content, the link stays a link (renaming over it left the target stale)."""
    real, stats = tmp_path / "real.csv", tmp_path / "real-stats.json"
    real.write_bytes(PREVIOUS)
    stats.write_text("{}")
    (tmp_path / "latest.csv").symlink_to("real.csv")
    (tmp_path / "stats.json").symlink_to(stats)
    result = run(
        "predict",
        data,
        "-o",
        tmp_path / "latest.csv",
        "--stats-json",
        tmp_path / "stats.json",
        *ONNX,
        "-k",
        "id",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "latest.csv").is_symlink() and (tmp_path / "stats.json").is_symlink()
    assert real.read_text().splitlines()[0] == "id,prediction" and len(real.read_text().splitlines()) == 179
    assert '"rows_out": 178' in stats.read_text()
    assert temps(tmp_path) == []


def test_a_link_to_a_redirected_stdout_is_written_through_not_replaced(tmp_path: Path, data: Path) -> None:
    """``-o /dev/stdout`` with stdout redirected to a file: /dev/stdout is a link to
    /proc/self/fd/1, itself a link to the file. The same chain in a folder of the test's own
    (so a regression replaces that link, not the machine's /dev/stdout)."""
    stdout_link = tmp_path / "stdout"
    stdout_link.symlink_to("/proc/self/fd/1")
    captured = tmp_path / "captured.csv"
    with captured.open("wb") as sink:
        result = run(
            "predict",
            data,
            "-o",
            stdout_link,
            "--output-format",
            "csv",
            *ONNX,
            "-k",
            "id",
            stdout=sink.fileno(),
        )
    assert result.returncode == 0, result.stderr
    assert stdout_link.is_symlink()
    assert len(captured.read_text().splitlines()) == 179
