"""Peak RSS and wall time of one scoring run from/to a local S3 server vs local files.

    python -m benchmarks.s3_memory [ROWS]      # default 2,000,000 rows (≈200 MB of Parquet)

Starts moto's standalone server on a free port (the same as the tests), writes a Parquet
file of random wine-like rows (row groups of 131,072 rows), uploads it, and runs
``modelrouter predict`` on the local file and on the object, each under
``/usr/bin/time -v``. Prints a table of wall seconds and peak RSS (MiB).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def _measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    assert peak is not None
    return wall, int(peak.group(1)) / 1024


def main(rows: int = 2_000_000) -> None:
    import boto3

    wine = pd.read_parquet(ROOT / "sample_data" / "wine.parquet")
    features = [c for c in wine.columns if c != "id"]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(wine), rows)
    frame = wine[features].to_numpy()[picks] * rng.normal(1.0, 0.01, (rows, len(features)))
    table = pa.table({"id": np.arange(rows), **{c: frame[:, i] for i, c in enumerate(features)}})
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "big.parquet"
        pq.write_table(table, source, row_group_size=131_072)
        del table, frame
        size = source.stat().st_size / 2**20
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            env = {
                **os.environ,
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            client = boto3.client(
                "s3",
                endpoint_url=env["AWS_ENDPOINT_URL"],
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
            )
            client.create_bucket(Bucket="bench")
            client.upload_file(str(source), "bench", "big.parquet")
            common = ["-k", "id", "--no-stats", "-q"]
            local = _measure(
                [str(MODELROUTER), "predict", str(source), "-o", str(Path(folder) / "out.parquet"), *common],
                env,
            )
            remote = _measure(
                [
                    str(MODELROUTER),
                    "predict",
                    "s3://bench/big.parquet",
                    "-o",
                    "s3://bench/out.parquet",
                    *common,
                ],
                env,
            )
        finally:
            server.terminate()
            server.wait()
    print(f"input: {rows:,} rows, {size:.0f} MiB of Parquet, row groups of 131,072 rows")
    print("| run | wall s | peak RSS MiB |")
    print("|---|---|---|")
    print(f"| local file → local file | {local[0]:.1f} | {local[1]:.0f} |")
    print(f"| s3:// → s3:// (moto, same machine) | {remote[0]:.1f} | {remote[1]:.0f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
