"""Progress of a CSV run: the share of the file's bytes read and an ETA, not only a row count
(the row count of a CSV is not known before it is read). End to end, stderr on a terminal."""

from __future__ import annotations

import gzip
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"


def _on_a_terminal(*args: str | Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (progress is drawn as on a user's screen)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    env.update(COLUMNS="160", TERM="xterm")
    with subprocess.Popen(
        [str(MODELROUTER), *map(str, args)], stdout=subprocess.DEVNULL, stderr=follower, env=env
    ) as child:
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = child.wait(timeout=120)
    os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow  # over 3 s of CPU; make test exercises its component more cheaply (tests/tiers.py)
@pytest.mark.matrix
@pytest.mark.parametrize("name", ["big.csv", "big.csv.gz"])
def test_csv_progress_shows_percent_and_eta_from_bytes_read(tmp_path: Path, name: str) -> None:
    frame = pd.concat([pd.read_csv(ROOT / "sample_data" / "wine.csv")] * 3000, ignore_index=True)
    source = tmp_path / name
    text = frame.to_csv(index=False).encode()  # ≈35 MB: many chunks, several refreshes
    source.write_bytes(gzip.compress(text, compresslevel=1) if name.endswith(".gz") else text)
    code, screen = _on_a_terminal(
        "predict", source, "-o", tmp_path / "out.csv", "--no-stats", "--chunk-size", "20000"
    )
    assert code == 0, screen
    shown = [int(p) for p in re.findall(r"(\d+)% ETA \d+:\d\d:\d\d", screen)]
    assert shown, screen[-2000:]  # a percentage with the time left, while it ran
    assert all(0 <= p < 100 for p in shown) and shown == sorted(shown)
    assert "100%" in screen and f"{len(frame):,} rows" in screen
