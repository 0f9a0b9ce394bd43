"""Local engine vs a local Dask cluster on a partitioned dataset, side by side.

    .venv/bin/python -m benchmarks.scaleout [--files 20] [--rows-per-file 500000] [--repeats 2]

Builds ``--files`` Parquet files of ``--rows-per-file`` rows each (the benchmark features, in
``benchmarks/data/``), then scores the directory with ``modelrouter predict`` on the local
engine and with ``--engine dask --workers 2``, alternately, with the logistic-regression
pickle. Peak memory is the largest sum of RSS over the whole process tree (client, scheduler,
worker processes), sampled every 0.1 s; one process's peak would hide the workers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.fixtures import DEFAULT_DATA_DIR, build_fixtures, build_parquet

MODELROUTER = Path(sys.executable).parent / "modelrouter"


def build_dataset(folder: Path, files: int, rows: int) -> Path:
    """``files`` copies of the ``rows``-row fixture (hard links: the data is what is read)."""
    source = folder.parent / f"part-source-{rows}.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    if not source.is_file():
        build_parquet(source, rows)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        target = folder / f"part-{i:03d}.parquet"
        if not target.exists():
            target.hardlink_to(source)
    return folder


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) summed over the process tree."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        total = 0
        try:
            for p in [process, *process.children(recursive=True)]:
                total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}"
        )
    return wall, peak / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows-per-file", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "scaleout.json")
    args = parser.parse_args(argv)

    fixtures = build_fixtures(1_000, args.data_dir)
    data = build_dataset(
        args.data_dir / f"dataset-{args.files}x{args.rows_per_file}" / "in", args.files, args.rows_per_file
    )
    model = str(fixtures.logreg.pickle)
    engines = {
        "local": ["--engine", "local"],
        "dask, 2 workers": ["--engine", "dask", "--workers", "2"],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for _ in range(args.repeats):
        for name, flags in engines.items():
            out = data.parent / "out"
            shutil.rmtree(out, ignore_errors=True)
            command = [
                str(MODELROUTER),
                "predict",
                str(data),
                "-o",
                str(out),
                "-m",
                model,
                "-k",
                "id",
                "-q",
                *flags,
            ]
            results[name].append(measure(command))
    rows = args.files * args.rows_per_file
    report: dict[str, Any] = {"files": args.files, "rows": rows, "model": model, "engines": {}}
    print(f"{args.files} files, {rows:,} rows, logistic regression (sklearn), median of {args.repeats}")
    print(f"{'engine':18s} {'wall s':>8s} {'peak RSS MiB (all processes)':>30s} {'rows/s':>12s}")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        peak = statistics.median(r[1] for r in runs)
        report["engines"][name] = {"wall_seconds": wall, "peak_rss_mib": peak, "runs": runs}
        print(f"{name:18s} {wall:8.1f} {peak:30.0f} {rows / wall:12,.0f}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
