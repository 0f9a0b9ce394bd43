"""Remote storage end to end (docs/specification.md §11), against a real S3-compatible server.

A session fixture starts moto's standalone server (``python -m moto.server``) on a free port;
the CLI runs in a subprocess with ``AWS_ENDPOINT_URL`` pointing at it and dummy keys, exactly
as it would against AWS or MinIO. Nothing here mocks a client library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

boto3 = pytest.importorskip("boto3", reason="the s3 extra (boto3) is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pd.read_parquet(ROOT / "sample_data" / "wine.parquet")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_moto(extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, **(extra_env or {})}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def _aws_env(endpoint: str) -> dict[str, str]:
    """The standard AWS environment the CLI reads (and nothing from the developer's own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MODELROUTER_CONFIG"}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
        AWS_CONFIG_FILE="/nonexistent/config",
    )
    return env


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    server, endpoint = _start_moto()
    try:
        yield _aws_env(endpoint)
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def client(s3_env: dict[str, str]) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def run_cli(
    env: dict[str, str], *args: str | Path, extra: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)],
        capture_output=True,
        text=True,
        env={**env, **(extra or {})},
        timeout=timeout,
    )


def get(client: Any, bucket: str, key: str) -> bytes:
    body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def pending_uploads(client: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def local_run(tmp_path: Path, source: Path, suffix: str, *args: str) -> bytes:
    """The same run on local files: the remote output must be byte-identical to it."""
    out = tmp_path / f"local-{uuid.uuid4().hex[:6]}{suffix}"
    done = subprocess.run(
        [str(MODELROUTER), "predict", str(source), "-o", str(out), "--no-stats", *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"},
    )
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def assert_same_output(remote: bytes, local: bytes) -> None:
    """CSV: byte-identical. Parquet: the same data and provenance, except the two keys that
    differ by nature (the input's location and the time written)."""
    if not remote.startswith(b"PAR1"):
        assert remote == local
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(pa.BufferReader(data)) for data in (remote, local)]
    assert tables[0].equals(tables[1])
    varying = {b"modelrouter.input", b"modelrouter.created_at"}
    remote_meta, local_meta = (
        {
            k: v
            for k, v in t.schema.metadata.items()
            if k not in varying and not k.startswith(b"modelrouter.input_")  # the input's identity
        }
        for t in tables
    )
    assert remote_meta == local_meta
    assert tables[0].schema.metadata[b"modelrouter.input"].startswith(b"s3://")


# -- single files ---------------------------------------------------------------------------


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_compressed_csv_in_and_out_on_the_store(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    import gzip

    import pyarrow as pa

    source = tmp_path / "wine.csv.gz"
    source.write_bytes(gzip.compress((ROOT / "sample_data" / "wine.csv").read_bytes()))
    client.upload_file(str(source), bucket, "in/wine.csv.gz")
    done = run_cli(
        s3_env,
        "predict",
        f"s3://{bucket}/in/wine.csv.gz",
        "-o",
        f"s3://{bucket}/out/s.csv.zst",
        "-k",
        "id",
        "--no-stats",
    )
    assert done.returncode == 0, done.stderr
    with pa.CompressedInputStream(pa.BufferReader(get(client, bucket, "out/s.csv.zst")), "zstd") as stream:
        remote = stream.read()
    assert remote == local_run(tmp_path, ROOT / "sample_data" / "wine.csv", ".csv", "-k", "id")


# Slow (about 5 s of CPU, tests/tiers.py): make test reads and writes objects in the
# store through the cheaper tests of this file.
@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_single_file_in_and_out_is_byte_identical_to_local(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, suffix: str
) -> None:
    source = ROOT / "sample_data" / f"wine{suffix}"
    client.upload_file(str(source), bucket, f"in/wine{suffix}")
    stats = f"s3://{bucket}/reports/stats.json"
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/wine{suffix}", "-o", f"s3://{bucket}/out/scored{suffix}",
        "-k", "id", "--no-stats", "--stats-json", stats,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_same_output(
        get(client, bucket, f"out/scored{suffix}"), local_run(tmp_path, source, suffix, "-k", "id")
    )
    assert b'"rows_out": 178' in get(client, bucket, "reports/stats.json")
    if suffix == ".parquet":
        return
    # The default output name sits beside the input, on the store too.
    done = run_cli(s3_env, "predict", f"s3://{bucket}/in/wine{suffix}", "--no-stats")
    assert done.returncode == 0, done.stderr
    assert f"in/wine.predictions{suffix}" in keys(client, bucket, "in/")


def test_failed_run_leaves_no_object_and_keeps_the_old_one(
    s3_env: dict[str, str], client: Any, bucket: str
) -> None:
    frame = pd.concat([WINE] * 40, ignore_index=True)
    frame["alcohol"] = frame["alcohol"].astype(object)
    frame.loc[len(frame) - 5, "alcohol"] = "not-a-number"  # late: parts were uploaded before
    client.put_object(Bucket=bucket, Key="in/bad.csv", Body=frame.to_csv(index=False).encode())
    client.put_object(Bucket=bucket, Key="out/scored.csv", Body=b"old\n")
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/bad.csv", "-o", f"s3://{bucket}/out/scored.csv",
        "-k", "id", "--chunk-size", "200", "--no-stats", "--rejects", f"s3://{bucket}/out/rejects.csv",
        extra={"MODELROUTER_S3_PART_SIZE": "4096"},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: ") and "alcohol" in done.stderr and "Traceback" not in done.stderr
    assert get(client, bucket, "out/scored.csv") == b"old\n"
    assert keys(client, bucket, "out/") == ["out/scored.csv"]
    assert pending_uploads(client, bucket) == []


def test_sigterm_mid_upload_leaves_no_object_and_no_upload(
    s3_env: dict[str, str], client: Any, bucket: str
) -> None:
    frame = pd.concat([WINE] * 300, ignore_index=True)  # 53k rows
    client.put_object(Bucket=bucket, Key="in/big.csv", Body=frame.to_csv(index=False).encode())
    process = subprocess.Popen(
        [str(MODELROUTER), "predict", f"s3://{bucket}/in/big.csv", "-o", f"s3://{bucket}/out/big.csv",
         "--keep-all", "--chunk-size", "100", "--no-stats", "-w", "1"],
        env={**s3_env, "MODELROUTER_S3_PART_SIZE": "8192"},
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not pending_uploads(client, bucket):  # wait until parts are being uploaded
            assert process.poll() is None, "the run ended before its upload started"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr
    assert keys(client, bucket, "out/") == []
    assert pending_uploads(client, bucket) == []


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_remote_csv_with_a_row_longer_than_the_first_block_is_reopened_through_the_store(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    """The CSV reader grows its block by reopening the input: an object is reopened through
    its filesystem (never ``open()`` on the URI), and rows already delivered are skipped."""
    frame = pd.concat([WINE] * 3, ignore_index=True)
    frame.insert(1, "note", "short")
    frame.loc[300, "note"] = "x" * (5 << 20)  # past the 4 MiB first block, mid-file
    source = tmp_path / "long.csv"
    frame.to_csv(source, index=False)
    client.upload_file(str(source), bucket, "in/long.csv")
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/long.csv", "-o", f"s3://{bucket}/out/long.csv",
        "-k", "id", "-k", "note", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert get(client, bucket, "out/long.csv") == local_run(
        tmp_path, source, ".csv", "-k", "id", "-k", "note"
    )


@pytest.mark.slow  # the same opener path as the long-row test above, which make test keeps
def test_remote_header_only_csv_without_final_newline(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    header = ",".join(["id", *WINE.columns.drop("id")])
    source = tmp_path / "empty.csv"
    source.write_text(header)  # no line break: the reader adds one, reading the object again
    client.upload_file(str(source), bucket, "in/empty.csv")
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/empty.csv", "-o", f"s3://{bucket}/out/empty.csv",
        "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert get(client, bucket, "out/empty.csv") == local_run(tmp_path, source, ".csv", "-k", "id")


@pytest.mark.matrix
@pytest.mark.parametrize(
    "spelling", ["s3://{b}/in/wine.csv", "S3://{b}//in/wine.csv", "s3a://{b}/in/wine.csv"]
)
def test_an_output_naming_the_input_object_is_a_usage_error(
    s3_env: dict[str, str], client: Any, bucket: str, spelling: str
) -> None:
    """URIs are compared as strings (nothing to stat), whatever the scheme's case or slashes."""
    client.upload_file(str(ROOT / "sample_data" / "wine.csv"), bucket, "in/wine.csv")
    before = get(client, bucket, "in/wine.csv")
    output = spelling.format(b=bucket)
    for option in ("-o", "--stats-json"):
        args = ["-o", f"s3://{bucket}/out.csv", option, output] if option != "-o" else ["-o", output]
        done = run_cli(s3_env, "predict", f"s3://{bucket}/in/wine.csv", *args, "--no-stats")
        assert done.returncode == 2, done.stderr
        assert "is the same file as the input" in done.stderr and "nothing was read or written" in done.stderr
    assert get(client, bucket, "in/wine.csv") == before
    assert keys(client, bucket) == ["in/wine.csv"]
    assert pending_uploads(client, bucket) == []


# -- datasets -------------------------------------------------------------------------------


def _upload_dataset(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Four files (CSV and Parquet, one under a sub-prefix); returns each file's bytes."""
    files: dict[str, bytes] = {}
    for i in range(4):
        part = WINE.sample(frac=1.0, random_state=i).copy()
        part["id"] = part["id"] + 1000 * i
        name = f"{'2024/' if i == 3 else ''}part-{i}{'.csv' if i % 2 else '.parquet'}"
        data = part.to_csv(index=False).encode() if i % 2 else part.to_parquet(index=False)
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)
        files[name] = data
    return files


def assert_same_as_local(
    client: Any, bucket: str, prefix: str, files: dict[str, bytes], tmp_path: Path
) -> None:
    """Each output object equals the output of one local dataset run over the same files."""
    local = tmp_path / "local-wine"
    for name, data in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    done = subprocess.run(
        [
            str(MODELROUTER),
            "predict",
            str(local),
            "-o",
            str(tmp_path / "local-out"),
            "-k",
            "id",
            "--no-stats",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"},
    )
    assert done.returncode == 0, done.stderr
    for name in files:
        assert_same_output(
            get(client, bucket, f"{prefix}/{name}"), (tmp_path / "local-out" / name).read_bytes()
        )


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_dataset_prefix_in_prefix_out_success_last_and_resume(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    files = _upload_dataset(client, bucket, "wine")
    client.put_object(Bucket=bucket, Key="wine/part-9.csv", Body=b"id,alcohol\n1,oops\n")  # fails
    client.put_object(Bucket=bucket, Key="wine.predictions/_SUCCESS", Body=b"")  # stale marker
    done = run_cli(s3_env, "predict", f"s3://{bucket}/wine", "-k", "id", "--no-stats")
    assert done.returncode == 3, done.stderr
    assert f"s3://{bucket}/wine/part-9.csv" in done.stderr
    completed = keys(client, bucket, "wine.predictions/")
    assert "wine.predictions/_SUCCESS" not in completed  # a failed run removes a stale one
    assert pending_uploads(client, bucket) == []

    client.delete_object(Bucket=bucket, Key="wine/part-9.csv")
    done = run_cli(s3_env, "predict", f"s3://{bucket}/wine", "-k", "id", "--no-stats", "--resume")
    assert done.returncode == 0, done.stderr
    # A CSV output's provenance (its input's ETag, for --resume) is a hidden object beside it.
    sidecars = [
        posixpath.join("wine.predictions", posixpath.dirname(n), f".{posixpath.basename(n)}.provenance.json")
        for n in files
        if n.endswith(".csv")
    ]
    assert keys(client, bucket, "wine.predictions/") == sorted(
        ["wine.predictions/_SUCCESS", *(f"wine.predictions/{name}" for name in files), *sidecars]
    )
    assert_same_as_local(client, bucket, "wine.predictions", files, tmp_path)
    # Re-delivered with other content (a new ETag): rescored; the others skipped.
    client.put_object(Bucket=bucket, Key="wine/part-1.csv", Body=WINE.head(7).to_csv(index=False).encode())
    done = run_cli(s3_env, "predict", f"s3://{bucket}/wine", "-k", "id", "--resume")
    assert done.returncode == 0, done.stderr
    assert "1 file, 3 files skipped, 1 stale output rescored" in done.stderr
    assert get(client, bucket, "wine.predictions/part-1.csv").count(b"\n") == 8
    # A glob, into an explicit prefix, one output format.
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/wine/**/*.parquet", "-o", f"s3://{bucket}/globbed/",
        "--output-format", "csv", "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert keys(client, bucket, "globbed/") == [
        "globbed/.part-0.csv.provenance.json",
        "globbed/.part-2.csv.provenance.json",
        "globbed/_SUCCESS",
        "globbed/part-0.csv",
        "globbed/part-2.csv",
    ]


@pytest.mark.slow  # ~12 s of cluster start-up: make test-slow
@pytest.mark.timeout(180)
def test_dask_engine_reads_and_writes_the_store(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    files = _upload_dataset(client, bucket, "wine")
    # The workers run in other processes, with no folder shared with the client: every
    # output is an object they uploaded themselves.
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/wine", "-o", f"s3://{bucket}/scored/", "-k", "id",
        "--engine", "dask", "-w", "2", "--no-stats", "--stats-json", f"s3://{bucket}/scored.json",
        timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sidecars = [  # each CSV output's provenance (its input's ETag, for --resume)
        posixpath.join("scored", posixpath.dirname(n), f".{posixpath.basename(n)}.provenance.json")
        for n in files
        if n.endswith(".csv")
    ]
    assert keys(client, bucket, "scored/") == sorted(
        ["scored/_SUCCESS", *(f"scored/{name}" for name in files), *sidecars]
    )
    assert_same_as_local(client, bucket, "scored", files, tmp_path)
    assert b'"engine": "dask"' in get(client, bucket, "scored.json")


# -- models ---------------------------------------------------------------------------------


def test_model_from_the_store_is_sha256_checked(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, models_dir: Path
) -> None:
    model = models_dir / "forest.onnx"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    client.upload_file(str(model), bucket, "models/forest.onnx")
    client.upload_file(str(ROOT / "sample_data" / "wine.csv"), bucket, "in/wine.csv")
    expected = local_run(tmp_path, ROOT / "sample_data" / "wine.csv", ".csv", "-m", str(model), "-k", "id")

    uri = f"s3://{bucket}/models/forest.onnx"
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/wine.csv", "-m", uri, "--sha256", digest,
        "-o", f"s3://{bucket}/out/a.csv", "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert get(client, bucket, "out/a.csv") == expected

    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/wine.csv", "-m", uri, "--sha256", wrong,
        "-o", f"s3://{bucket}/out/b.csv", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 4
    assert done.stderr == (
        f"error: {uri}: sha256 is {digest}, expected {wrong}; "
        "refusing to load a model that differs from the pinned one\n"
    )
    assert keys(client, bucket, "out/") == ["out/a.csv"]

    # The config's path may be a URI too, pinned by the config's sha256.
    config = tmp_path / "modelrouter.toml"
    config.write_text(f'[onnx]\npath = "{uri}"\nsha256 = "{digest}"\n')
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/wine.csv", "-c", str(config), "-o",
        f"s3://{bucket}/out/c.csv", "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert get(client, bucket, "out/c.csv") == expected

    # Unpinned, the Parquet provenance still names the digest of the bytes that were loaded.
    done = run_cli(
        s3_env, "predict", f"s3://{bucket}/in/wine.csv", "-m", uri, "-o", str(tmp_path / "d.parquet"),
        "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = pq.read_schema(tmp_path / "d.parquet").metadata
    assert meta[b"modelrouter.model_sha256"].decode() == digest
    assert meta[b"modelrouter.model_path"].decode() == uri


# -- errors ---------------------------------------------------------------------------------

NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}


@pytest.mark.parametrize(
    ("case", "code", "expected"),
    [
        ("input-no-bucket", 3, "s3://no-such-bucket/in.csv: bucket 'no-such-bucket' does not exist"),
        ("output-no-bucket", 5, "s3://no-such-bucket/out.csv: bucket 'no-such-bucket' does not exist"),
        ("model-no-bucket", 4, "s3://no-such-bucket/m.onnx: bucket 'no-such-bucket' does not exist"),
        ("input-no-credentials", 3, "{bucket}/in/wine.csv: no AWS credentials found"),
        ("output-no-credentials", 5, "{bucket}/out.csv: no AWS credentials found"),
        ("input-unreachable", 3, "{bucket}/in/wine.csv: cannot reach the store"),
        ("output-unreachable", 5, "{bucket}/out.csv: cannot write: cannot reach the store"),
    ],
)
def test_store_errors_are_one_line_with_the_role_exit_code(
    s3_env: dict[str, str], client: Any, bucket: str, case: str, code: int, expected: str
) -> None:
    client.upload_file(str(ROOT / "sample_data" / "wine.csv"), bucket, "in/wine.csv")
    remote_in, local_in = f"s3://{bucket}/in/wine.csv", str(ROOT / "sample_data" / "wine.csv")
    args: dict[str, list[str]] = {
        "input-no-bucket": ["s3://no-such-bucket/in.csv"],
        "output-no-bucket": [local_in, "-o", "s3://no-such-bucket/out.csv"],
        "model-no-bucket": [local_in, "-m", "s3://no-such-bucket/m.onnx", "-o", "-"],
        "input-no-credentials": [remote_in, "-o", "-"],
        "output-no-credentials": [local_in, "-o", f"s3://{bucket}/out.csv"],
        "input-unreachable": [remote_in, "-o", "-"],
        "output-unreachable": [local_in, "-o", f"s3://{bucket}/out.csv"],
    }
    extra = NO_CREDENTIALS if "credentials" in case else {}
    if "unreachable" in case:
        extra = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"}  # nothing listens there
    done = run_cli(s3_env, "predict", *args[case], "--no-stats", extra=extra, timeout=60)
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected.format(bucket=f"s3://{bucket}") in lines[0]
    assert done.stdout == ""
    assert keys(client, bucket) == ["in/wine.csv"]


@pytest.fixture(scope="module")
def strict_store() -> Iterator[dict[str, str]]:
    """A second server that checks signatures: the dummy keys are refused (HTTP 403)."""
    server, endpoint = _start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        yield _aws_env(endpoint)
    finally:
        _stop(server)


@pytest.mark.matrix
@pytest.mark.parametrize(("role", "code"), [("input", 3), ("output", 5), ("model", 4)])
def test_access_denied(strict_store: dict[str, str], role: str, code: int) -> None:
    local_in = str(ROOT / "sample_data" / "wine.csv")
    args = {
        "input": ["s3://bucket/in.csv", "-o", "-"],
        "output": [local_in, "-o", "s3://bucket/out.csv"],
        "model": [local_in, "-m", "s3://bucket/m.onnx", "-o", "-"],
    }[role]
    done = run_cli(strict_store, "predict", *args, "--no-stats")
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: s3://bucket/"), done.stderr
    assert "access denied" in lines[0]


# -- models on the store, every command -------------------------------------------------------

LISTENING = re.compile(r"listening on (http://\S+)")


def _s3_models(client: Any, bucket: str, models_dir: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The test forest (pickle and ONNX) on the store, and a config naming both by URI, pinned."""
    digests: dict[str, str] = {}
    for name in ("forest.pkl", "forest.onnx"):
        client.upload_file(str(models_dir / name), bucket, f"models/{name}")
        digests[name] = hashlib.sha256((models_dir / name).read_bytes()).hexdigest()
    config = tmp_path / "s3-models.toml"
    config.write_text(
        f'[sklearn]\npath = "s3://{bucket}/models/forest.pkl"\nsha256 = "{digests["forest.pkl"]}"\n'
        f'pool_size = 1\n[onnx]\npath = "s3://{bucket}/models/forest.onnx"\n'
        f'sha256 = "{digests["forest.onnx"]}"\npool_size = 1\n'
    )
    return config, digests


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_models_inspect_and_compare_read_models_from_the_store(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, models_dir: Path
) -> None:
    config, digests = _s3_models(client, bucket, models_dir, tmp_path)
    done = run_cli(s3_env, "models", "-c", str(config), "--json")
    assert done.returncode == 0, done.stderr
    listed = {m["model_type"]: m for m in json.loads(done.stdout)["models"]}
    for kind, name in (("sklearn", "forest.pkl"), ("onnx", "forest.onnx")):
        assert listed[kind]["path"] == f"s3://{bucket}/models/{name}"
        assert listed[kind]["loads"] and listed[kind]["sha256"] == digests[name]
        assert listed[kind]["file_size"] == (models_dir / name).stat().st_size
        assert listed[kind]["inputs"]["names"] == list(WINE.columns.drop("id"))

    done = run_cli(s3_env, "inspect", f"s3://{bucket}/models/forest.onnx", "--json")
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["sha256"] == digests["forest.onnx"] and described["loads"]
    assert described["opset"] and described["classes"] == ["class_0", "class_1", "class_2"]
    done = run_cli(s3_env, "inspect", f"s3://{bucket}/models/nothing.pkl")
    assert (done.returncode, done.stderr) == (
        4,
        f"error: s3://{bucket}/models/nothing.pkl: model file not found\n",
    )
    client.upload_file(str(ROOT / "sample_data" / "wine.parquet"), bucket, "in/wine.parquet")
    done = run_cli(s3_env, "inspect", f"s3://{bucket}/in/wine.parquet", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == len(WINE)

    # compare: models and DATA on the store; the same report as for the local file.
    reports = []
    for data in (f"s3://{bucket}/in/wine.parquet", str(ROOT / "sample_data" / "wine.parquet")):
        done = run_cli(
            s3_env, "compare", data, "-c", str(config), "--json",
            "--min-agreement", "0.9", "--max-proba-diff", "1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reports.append(json.loads(done.stdout))
    assert reports[0]["data"] == f"s3://{bucket}/in/wine.parquet"
    assert reports[0]["models"] == {
        "sklearn": f"s3://{bucket}/models/forest.pkl",
        "onnx": f"s3://{bucket}/models/forest.onnx",
    }
    assert reports[0]["comparisons"] == reports[1]["comparisons"]


def _serve(env: dict[str, str], config: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(MODELROUTER), "serve", "--port", "0", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,  # "listening on URL" is serve's product: stdout
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        found = LISTENING.search(line)
        if found:
            return process, found.group(1)
    process.wait(timeout=30)
    raise AssertionError(f"serve did not start: {''.join(seen)}")


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_serve_loads_its_pools_from_the_store(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, models_dir: Path
) -> None:
    import httpx
    import joblib

    config, digests = _s3_models(client, bucket, models_dir, tmp_path)
    process, url = _serve(s3_env, config)
    try:
        rows = WINE.drop(columns="id").iloc[:25]
        answer = httpx.post(f"{url}/predict", json={"rows": rows.to_dict(orient="records")}, timeout=30)
        assert answer.status_code == 200, answer.text
        expected = joblib.load(models_dir / "forest.pkl").predict(rows)
        assert answer.json() == {"model_type": "sklearn", "predictions": expected.tolist()}
        pools = httpx.get(f"{url}/pool/stats", timeout=30).json()["pools"]
        assert set(pools) == {"sklearn", "onnx"}
    finally:
        process.terminate()
        code = process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
    assert code == 0

    # A pin the object does not match: serve refuses to start, naming the model.
    wrong = ("0" if digests["forest.pkl"][0] != "0" else "1") + digests["forest.pkl"][1:]
    config.write_text(config.read_text().replace(digests["forest.pkl"], wrong))
    done = run_cli(s3_env, "serve", "--port", "0", "-c", str(config), timeout=60)
    assert done.returncode == 4
    assert done.stderr == (
        f"error: s3://{bucket}/models/forest.pkl: sha256 is {digests['forest.pkl']}, expected {wrong}; "
        "refusing to load a model that differs from the pinned one\n"
    )


@pytest.mark.slow  # three conversions, ~10 s: make test-slow
def test_convert_reads_from_and_writes_to_the_store(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, models_dir: Path
) -> None:
    import onnxruntime as ort

    client.upload_file(str(models_dir / "forest.pkl"), bucket, "models/forest.pkl")
    # Without -o: beside the model, on the store.
    done = run_cli(s3_env, "convert", f"s3://{bucket}/models/forest.pkl", "--max-proba-diff", "1e-3", "-q")
    assert done.returncode == 0, done.stderr
    session = ort.InferenceSession(
        get(client, bucket, "models/forest.onnx"), providers=["CPUExecutionProvider"]
    )
    labels = json.loads(session.get_modelmeta().custom_metadata_map["class_labels"])
    assert labels == ["class_0", "class_1", "class_2"]

    # A failed conversion (a sample without the model's columns) leaves the old object alone.
    client.put_object(Bucket=bucket, Key="out/forest.onnx", Body=b"old")
    client.put_object(Bucket=bucket, Key="in/ids.csv", Body=b"id\n1\n2\n")  # --sample on the store
    done = run_cli(
        s3_env, "convert", f"s3://{bucket}/models/forest.pkl", "-o", f"s3://{bucket}/out/forest.onnx",
        "--sample", f"s3://{bucket}/in/ids.csv",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert get(client, bucket, "out/forest.onnx") == b"old"
    assert keys(client, bucket, "out/") == ["out/forest.onnx"]
    done = run_cli(
        s3_env, "convert", f"s3://{bucket}/models/forest.pkl", "-o", f"s3://{bucket}/out/forest.onnx",
        "--max-proba-diff", "1e-3", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == f"s3://{bucket}/out/forest.onnx"
    replaced = ort.InferenceSession(
        get(client, bucket, "out/forest.onnx"), providers=["CPUExecutionProvider"]
    )
    assert json.loads(replaced.get_modelmeta().custom_metadata_map["class_labels"]) == labels
    done = run_cli(s3_env, "convert", str(models_dir / "forest.pkl"), "-o", "s3://no-such-bucket/f.onnx")
    assert (done.returncode, done.stderr) == (
        5,
        "error: s3://no-such-bucket/f.onnx: bucket 'no-such-bucket' does not exist\n",
    )


# -- a connection cut mid-read ----------------------------------------------------------------


class CuttingProxy:
    """A TCP proxy in front of the store. With ``limit``, it cuts each connection after
    ``limit`` bytes of answers: the store's reply stops mid-body, as when a network path
    drops. With ``after``, it calls ``then()`` once ``after`` bytes of answers (all
    connections together) have passed, before relaying another byte: whatever the client
    asks next is answered after that call (a writer replacing the object mid-read)."""

    def __init__(
        self,
        endpoint: str,
        limit: int | None = None,
        after: int | None = None,
        then: Any = None,
    ) -> None:
        self.target = ("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
        self.limit = limit
        self.after = after
        self.then = then
        self.relayed = 0
        self.fired = False
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(downstream, upstream, None, False), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(upstream, downstream, self.limit, True), daemon=True
            ).start()

    def _count(self, size: int) -> None:
        with self.lock:  # held while `then` runs: no answer byte passes meanwhile
            self.relayed += size
            if self.after is not None and not self.fired and self.relayed >= self.after:
                self.fired = True
                self.then()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None, answers: bool) -> None:
        sent = 0
        try:
            while data := source.recv(1 << 16):
                if answers:
                    self._count(len(data))
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_a_connection_cut_mid_read_is_resumed_then_an_input_error(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    """A read cut mid-body is resumed where it stopped (pinned to the version, so resuming
    cannot mix two versions), up to 3 times per read: Parquet's small ranged reads get
    through a path that cuts every connection after 16 KiB; a CSV window of 1 MiB cannot,
    and fails naming the object."""
    frame = pd.concat([WINE] * 60, ignore_index=True)  # ≈1.3 MB of CSV, ≈0.5 MB of Parquet
    proxy = CuttingProxy(s3_env["AWS_ENDPOINT_URL"], limit=16 << 10)
    try:
        client.put_object(Bucket=bucket, Key="in/big.parquet", Body=frame.to_parquet(index=False))
        source = tmp_path / "big.parquet"
        source.write_bytes(frame.to_parquet(index=False))
        out = tmp_path / "scored.parquet"
        done = run_cli(
            s3_env, "predict", f"s3://{bucket}/in/big.parquet", "-o", str(out), "--no-stats", "-k", "id",
            extra={"AWS_ENDPOINT_URL": proxy.endpoint}, timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert_same_output(out.read_bytes(), local_run(tmp_path, source, ".parquet", "-k", "id"))

        client.put_object(Bucket=bucket, Key="in/big.csv", Body=frame.to_csv(index=False).encode())
        out = tmp_path / "scored.csv"
        done = run_cli(
            s3_env, "predict", f"s3://{bucket}/in/big.csv", "-o", str(out), "--no-stats",
            extra={"AWS_ENDPOINT_URL": proxy.endpoint, "MODELROUTER_S3_READ_BYTES": str(1 << 20)},
            timeout=90,
        )  # fmt: skip
    finally:
        proxy.close()
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        f"error: s3://{bucket}/in/big.csv: connection dropped mid-transfer, even after retries\n"
    )
    assert not out.exists()


# -- version pinning: an object replaced while it is read ---------------------------------------


def _versions(suffix: str) -> tuple[bytes, bytes]:
    """Two versions of one input: the second scores differently (other rows, other values)."""
    first = pd.concat([WINE] * 100, ignore_index=True)
    # Values that do not compress: several MB of CSV and of Parquet, so reads take many GETs.
    noise = np.random.default_rng(0).normal(1, 1e-6, size=(len(first), len(first.columns) - 1))
    first.iloc[:, 1:] = first.iloc[:, 1:].to_numpy() * noise
    second = first.iloc[::-1].reset_index(drop=True)
    second["id"] = second["id"] + 1_000_000
    if suffix == ".csv":
        return first.to_csv(index=False).encode(), second.to_csv(index=False).encode()
    if suffix == ".jsonl":
        return (
            first.to_json(orient="records", lines=True).encode(),
            second.to_json(orient="records", lines=True).encode(),
        )
    return first.to_parquet(index=False), second.to_parquet(index=False)


def _replaced_mid_read(
    env: dict[str, str], client: Any, bucket: str, key: str, new: bytes, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """Run the CLI through a proxy that replaces ``key`` with ``new`` once 200 kB of answers
    have passed: deterministic, whatever the timing (the proxy holds every answer back while
    the object is replaced)."""
    proxy = CuttingProxy(
        env["AWS_ENDPOINT_URL"],
        after=200_000,
        then=lambda: client.put_object(Bucket=bucket, Key=key, Body=new),
    )
    try:
        # Reads of at most 256 KiB: the file takes several GETs, some after the replacement.
        extra = {"AWS_ENDPOINT_URL": proxy.endpoint, "MODELROUTER_S3_READ_BYTES": str(256 << 10)}
        return run_cli(env, *args, extra=extra, timeout=120)
    finally:
        proxy.close()
        assert proxy.fired, "the object was never replaced: the test proves nothing"


@pytest.mark.parametrize(
    "suffix",
    [".csv", ".parquet", pytest.param(".jsonl", marks=pytest.mark.slow)],  # jsonl: CSV's streamed path
)
def test_an_object_replaced_while_it_is_read_fails_naming_it(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, suffix: str
) -> None:
    """Issue 28: a CSV replaced mid-read was scored as 36,946 old + 34,432 new rows, exit 0.
    Every ranged GET now carries If-Match with the ETag seen at open: exit 3 naming it."""
    old, new = _versions(suffix)
    client.put_object(Bucket=bucket, Key=f"in/big{suffix}", Body=old)
    out = tmp_path / f"scored{suffix}"
    done = _replaced_mid_read(
        s3_env, client, bucket, f"in/big{suffix}", new,
        "predict", f"s3://{bucket}/in/big{suffix}", "-o", out, "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"error: s3://{bucket}/in/big{suffix}: the object changed while it was read (replaced or "
        "deleted after it was opened at ETag "
    ), done.stderr
    assert lines[0].endswith("rerun to read the new version")
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_object_replaced_while_it_is_read_fails_the_run_naming_it(
    s3_env: dict[str, str], client: Any, bucket: str
) -> None:
    old, new = _versions(".csv")
    client.put_object(Bucket=bucket, Key="day/part-1.csv", Body=old)
    done = _replaced_mid_read(
        s3_env, client, bucket, "day/part-1.csv", new,
        "predict", f"s3://{bucket}/day/", "-o", f"s3://{bucket}/scored/", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert f"error: s3://{bucket}/day/part-1.csv: the object changed while it was read" in done.stderr
    assert keys(client, bucket, "scored/") == []


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
@pytest.mark.matrix
@pytest.mark.parametrize(
    "suffix",
    [".csv", ".parquet", pytest.param(".jsonl", marks=pytest.mark.slow)],  # jsonl: CSV's streamed path
)
def test_on_a_versioned_bucket_the_version_seen_at_open_is_read_to_the_end(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path, suffix: str
) -> None:
    """With versioning, reads name the version id: a replacement mid-read changes nothing,
    the output is exactly the scoring of the version that was opened."""
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old, new = _versions(suffix)
    client.put_object(Bucket=bucket, Key=f"in/big{suffix}", Body=old)
    out = tmp_path / f"scored{suffix}"
    done = _replaced_mid_read(
        s3_env, client, bucket, f"in/big{suffix}", new,
        "predict", f"s3://{bucket}/in/big{suffix}", "-o", out, "-k", "id", "--no-stats",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = tmp_path / f"old{suffix}"
    source.write_bytes(old)
    assert_same_output(out.read_bytes(), local_run(tmp_path, source, suffix, "-k", "id"))
    assert get(client, bucket, f"in/big{suffix}") == new  # it was replaced meanwhile


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
def test_a_model_replaced_while_it_is_fetched_is_one_version(
    s3_env: dict[str, str], client: Any, bucket: str, tmp_path: Path
) -> None:
    """A model is fetched in one GET: a replacement mid-download cannot mix two files (the
    ranged reads before could), so the run scores with the version it started reading."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    features = WINE.drop(columns=["id"])
    labels = (features.iloc[:, 0] > features.iloc[:, 0].median()).astype(int)
    big = RandomForestClassifier(n_estimators=800, random_state=0).fit(features, labels)
    small = RandomForestClassifier(n_estimators=3, max_depth=1, random_state=1).fit(features, 1 - labels)
    joblib.dump(big, tmp_path / "big.pkl")
    joblib.dump(small, tmp_path / "small.pkl")
    assert (tmp_path / "big.pkl").stat().st_size > 1_000_000  # several of pyarrow's ranged reads
    client.upload_file(str(tmp_path / "big.pkl"), bucket, "models/m.pkl")
    client.upload_file(str(ROOT / "sample_data" / "wine.csv"), bucket, "in/wine.csv")
    out = tmp_path / "scored.csv"
    done = _replaced_mid_read(
        s3_env, client, bucket, "models/m.pkl", (tmp_path / "small.pkl").read_bytes(),
        "predict", f"s3://{bucket}/in/wine.csv", "-m", f"s3://{bucket}/models/m.pkl", "-o", out,
        "--no-stats", "-k", "id",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = local_run(
        tmp_path, ROOT / "sample_data" / "wine.csv", ".csv", "-m", str(tmp_path / "big.pkl"), "-k", "id"
    )
    assert out.read_bytes() == expected
