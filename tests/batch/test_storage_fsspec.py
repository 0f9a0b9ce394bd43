"""Stores other than S3, through fsspec (docs/specification.md §11): fsspec's in-process ``memory://``;
and ``file://`` URIs, which are local paths, through the real command.

A subprocess cannot share ``memory://``, so these run the batch engine's functions in-process
(:func:`score_file`, the storage layer): reads, model fetches and atomic writes — staged
locally, copied to a temporary object at the commit's prepare step, moved over the
destination at its publish step, the temporary object deleted on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

fsspec = pytest.importorskip("fsspec", reason="fsspec (the dask extra) is not installed")

from modelrouter.batch.run import RunOptions, score_file  # noqa: E402
from modelrouter.errors import DataError, IntegrityError, ModelLoadError, OutputError  # noqa: E402
from modelrouter.storage import inflight  # noqa: E402
from modelrouter.storage import object_store as storage  # noqa: E402
from modelrouter.storage.commit import RunOutputs  # noqa: E402
from modelrouter.storage.uploads import StagedUpload  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WINE = pd.read_parquet(ROOT / "sample_data" / "wine.parquet")


@pytest.fixture
def memory() -> Iterator[tuple[Any, str]]:
    """fsspec's memory filesystem and a fresh top-level folder in it (removed afterwards)."""
    fs = fsspec.filesystem("memory")
    folder = f"t-{uuid.uuid4().hex[:10]}"
    yield fs, folder
    if fs.exists(f"/{folder}"):
        fs.rm(f"/{folder}", recursive=True)


def objects(fs: Any, folder: str) -> list[str]:
    return sorted(p.removeprefix(f"/{folder}/") for p in fs.find(f"/{folder}"))


def local_scores(tmp_path: Path, source: Path, suffix: str) -> bytes:
    out = tmp_path / f"local{suffix}"
    score_file(RunOptions(input=str(source), output=str(out), keep=("id",)))
    return out.read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_from_and_to_memory_with_a_model_there(
    memory: tuple[Any, str], tmp_path: Path, suffix: str
) -> None:
    fs, folder = memory
    source = ROOT / "sample_data" / f"wine{suffix}"
    fs.pipe(f"/{folder}/in/wine{suffix}", source.read_bytes())
    fs.pipe(f"/{folder}/models/m.pkl", (ROOT / "models" / "classifier.pkl").read_bytes())
    summary = score_file(
        RunOptions(
            input=f"memory://{folder}/in/wine{suffix}",
            output=f"memory://{folder}/out/scored{suffix}",
            model_path=f"memory://{folder}/models/m.pkl",
            keep=("id",),
            rejects=None,
        )
    )
    assert summary.rows_out == len(WINE)
    # Only the output appeared: no temporary object is left beside it.
    assert objects(fs, folder) == [f"in/wine{suffix}", "models/m.pkl", f"out/scored{suffix}"]
    remote = fs.cat(f"/{folder}/out/scored{suffix}")
    local = local_scores(tmp_path, source, suffix)
    if suffix == ".csv":
        assert remote == local
    else:
        assert pq.read_table(pa.BufferReader(remote)).equals(pq.read_table(pa.BufferReader(local)))


def test_failed_run_leaves_no_object_and_keeps_the_old_one(memory: tuple[Any, str]) -> None:
    fs, folder = memory
    frame = pd.concat([WINE] * 20, ignore_index=True)
    frame["alcohol"] = frame["alcohol"].astype(object)
    frame.loc[len(frame) - 3, "alcohol"] = "not-a-number"  # late: earlier chunks were written
    fs.pipe(f"/{folder}/in/bad.csv", frame.to_csv(index=False).encode())
    fs.pipe(f"/{folder}/out/scored.csv", b"old\n")
    with pytest.raises(DataError, match="alcohol"):
        score_file(
            RunOptions(
                input=f"memory://{folder}/in/bad.csv",
                output=f"memory://{folder}/out/scored.csv",
                chunk_size=100,
            )
        )
    assert fs.cat(f"/{folder}/out/scored.csv") == b"old\n"
    assert objects(fs, folder) == ["in/bad.csv", "out/scored.csv"]


def test_prepared_but_aborted_output_leaves_nothing(memory: tuple[Any, str]) -> None:
    """The commit's two halves: prepare copies to a temporary object (the destination is
    untouched), an abort then deletes it; publish moves it over the destination."""
    fs, folder = memory
    fs.pipe(f"/{folder}/out.csv", b"old\n")
    table = pa.table({"a": [1, 2, 3]})
    for publish in (False, True):
        output = storage.RemoteOutput(storage.Uri.parse(f"memory://{folder}/out.csv"), "csv", table.schema)
        output.write(table.to_batches()[0])
        output.prepare()
        temps = [p for p in objects(fs, folder) if p.endswith(".part")]
        assert len(temps) == 1 and temps[0].startswith(".out.csv.modelrouter-")
        assert fs.cat(f"/{folder}/out.csv") == b"old\n"
        if publish:
            assert output.publish()
        else:
            output.abort()
        assert objects(fs, folder) == ["out.csv"]
    assert fs.cat(f"/{folder}/out.csv") == b"a\n1\n2\n3\n"
    assert not inflight.current().uploads


def test_small_objects_are_moved_into_place(memory: tuple[Any, str]) -> None:
    fs, folder = memory
    uri = storage.Uri.parse(f"memory://{folder}/reports/stats.json")
    RunOutputs([storage.RemoteText(uri, '{"ok": true}\n')]).commit(final=False)
    assert objects(fs, folder) == ["reports/stats.json"]
    assert fs.cat(f"/{folder}/reports/stats.json") == b'{"ok": true}\n'


@settings(max_examples=25, deadline=None)
@given(pieces=st.lists(st.binary(max_size=300), max_size=8))
def test_a_staged_object_holds_exactly_what_was_written(pieces: list[bytes]) -> None:
    fs = fsspec.filesystem("memory")
    folder = f"h-{uuid.uuid4().hex[:10]}"
    upload = StagedUpload(storage.Uri.parse(f"memory://{folder}/blob.bin"))
    for piece in pieces:
        assert upload.write(piece) == len(piece)
    upload.complete()
    try:
        assert fs.cat(f"/{folder}/blob.bin") == b"".join(pieces)
        assert objects(fs, folder) == ["blob.bin"]
    finally:
        fs.rm(f"/{folder}", recursive=True)


def test_model_errors_on_memory_name_the_uri(memory: tuple[Any, str]) -> None:
    from modelrouter import ModelPool

    fs, folder = memory
    fs.pipe(f"/{folder}/m.pkl", (ROOT / "models" / "classifier.pkl").read_bytes())
    with pytest.raises(ModelLoadError, match=rf"^memory://{folder}/missing.pkl: model file not found$"):
        ModelPool.load("sklearn", f"memory://{folder}/missing.pkl")
    with pytest.raises(ModelLoadError, match=rf"^memory://{folder}: is a prefix"):
        ModelPool.load("sklearn", f"memory://{folder}")
    with pytest.raises(IntegrityError, match=rf"^memory://{folder}/m.pkl: sha256 is "):
        ModelPool.load("sklearn", f"memory://{folder}/m.pkl", sha256="0" * 64)
    ModelPool.load("sklearn", f"memory://{folder}/m.pkl").close()


def test_an_unknown_scheme_is_the_roles_error() -> None:
    from modelrouter import ModelPool

    with pytest.raises(ModelLoadError, match=r"^nosuchscheme://: no filesystem for this scheme"):
        ModelPool.load("sklearn", "nosuchscheme://b/m.pkl")
    with pytest.raises(OutputError, match=r"^nosuchscheme://: no filesystem for this scheme"):
        storage.write_bytes(storage.Uri.parse("nosuchscheme://b/x.json"), b"{}")


# -- file:// through the real command: local paths spelled as URIs ---------------------------

MODELROUTER = Path(sys.executable).parent / "modelrouter"


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_file_uris_are_local_paths(tmp_path: Path) -> None:
    folder = tmp_path / "a b"  # a space: percent-encoded in the URI
    folder.mkdir()
    source = folder / "wine.csv"
    shutil.copy(ROOT / "sample_data" / "wine.csv", source)
    model = ROOT / "models" / "classifier.pkl"
    uri = "file://" + quote(str(folder))
    done = run_cli(
        "predict", f"{uri}/wine.csv", "-o", f"{uri}/out.csv", "-m", f"file://{model}",
        "--stats-json", f"file://localhost{quote(str(folder))}/stats.json", "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = tmp_path / "expected.csv"
    assert run_cli("predict", source, "-o", expected, "-m", model, "-k", "id", "--no-stats").returncode == 0
    assert (folder / "out.csv").read_bytes() == expected.read_bytes()
    assert json.loads((folder / "stats.json").read_text())["summary"]["output"] == str(folder / "out.csv")

    # The same-file checks see through the spelling: the input itself, and a link to it.
    (folder / "link.csv").symlink_to(source)
    before = source.read_bytes()
    for target in (f"{uri}/wine.csv", f"{uri}/link.csv"):
        done = run_cli("predict", f"{uri}/wine.csv", "-o", target, "--no-stats")
        assert done.returncode == 2, done.stderr
        assert "is the same file as the input" in done.stderr
    assert source.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["link.csv", "out.csv", "stats.json", "wine.csv"]

    # A config's model path may be a file:// URI too.
    config = tmp_path / "c.toml"
    config.write_text(f'[sklearn]\npath = "file://{model}"\n')
    done = run_cli("models", "-c", config, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models"][0]["path"] == str(model)


def test_a_file_uri_naming_another_host_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("predict", "file://elsewhere/data/wine.csv", "-o", tmp_path / "o.csv", "--no-stats")
    assert done.returncode == 2
    assert "must name a local path (file:///path), not host 'elsewhere'" in done.stderr
    assert list(tmp_path.iterdir()) == []
