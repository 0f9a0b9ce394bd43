"""``predict --explain`` against the naive shap script on the benchmark forest.

    .venv/bin/python -m benchmarks.explain [--rows 5000] [--repeats 2]
    make bench-explain

The naive script loads the forest, reads the first ``--rows`` rows of the benchmark data and
calls ``shap.TreeExplainer(model).shap_values(X)`` on the whole frame; modelrouter runs
``predict --explain`` on the same rows with its defaults (both cores). Both run under
``/usr/bin/time -v``, alternately; the table gives the median wall time, rows/s and peak RSS,
and the ratios (the goal: ≥ 3× the throughput at ≤ 0.5× the peak memory). The contributions
of the predicted class are compared with shap's (1e-5).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.fixtures import DEFAULT_DATA_DIR, FEATURES, build_fixtures
from benchmarks.run import TIME_BIN, Measurement, parse_time_v

NAIVE = """
import sys, joblib, numpy as np, pandas as pd, shap
model = joblib.load(sys.argv[1])
X = pd.read_parquet(sys.argv[2])
values = np.asarray(shap.TreeExplainer(model).shap_values(X))
np.save(sys.argv[3], values)
"""


def _timed(command: Sequence[str]) -> Measurement:
    done = subprocess.run([str(TIME_BIN), "-v", *command], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return parse_time_v(done.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    fx = build_fixtures(args.rows, DEFAULT_DATA_DIR, log=lambda line: print(line, file=sys.stderr))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        data = folder / "head.parquet"
        pq.write_table(pq.read_table(fx.data, columns=list(FEATURES)).slice(0, args.rows), data)
        out, values = folder / "explained.parquet", folder / "naive.npy"
        naive_cmd = [sys.executable, "-c", NAIVE, str(fx.rf.pickle), str(data), str(values)]
        ours_cmd = [
            str(Path(sys.executable).parent / "modelrouter"), "predict", str(data),
            "-m", str(fx.rf.pickle), "-o", str(out), "--explain", "-q",
        ]  # fmt: skip
        naive: list[Measurement] = []
        ours: list[Measurement] = []
        for _ in range(args.repeats):
            naive.append(_timed(naive_cmd))
            ours.append(_timed(ours_cmd))
        shap_values = np.load(values)
        explained = pd.read_parquet(out)
        index = explained["prediction"].to_numpy()
        reference = shap_values[np.arange(args.rows), :, index]
        mine = explained[[f"contrib_{c}" for c in FEATURES]].to_numpy()
        error = float(np.abs(mine - reference).max())

    def row(name: str, runs: list[Measurement]) -> tuple[float, float]:
        wall = statistics.median(r.wall_s for r in runs)
        rss = statistics.median(r.rss_mib for r in runs)
        print(f"{name:<34} {wall:>8.1f} s {args.rows / wall:>9.1f} rows/s {rss:>8.0f} MiB")
        return rss, args.rows / wall

    print(f"explaining {args.rows:,} rows of the benchmark forest ({args.repeats} runs each, median)")
    naive_rss, naive_rate = row("naive shap.TreeExplainer script", naive)
    ours_rss, ours_rate = row("modelrouter predict --explain", ours)
    print(
        f"throughput {ours_rate / naive_rate:.2f}x (goal >= 3x), "
        f"peak RSS {ours_rss / naive_rss:.2f}x (goal <= 0.5x)"
    )
    print(f"largest difference from shap: {error:.2e} (must be <= 1e-5)")
    return 0 if error <= 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
