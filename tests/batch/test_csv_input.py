"""CSV as people write it: BOM, quoted fields, odd column names, types that drift between blocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.ensemble import RandomForestClassifier

ROOT = Path(__file__).resolve().parents[2]
MODELROUTER = Path(sys.executable).parent / "modelrouter"
WINE = pd.read_csv(ROOT / "sample_data" / "wine.csv")
FEATURES = list(WINE.columns[1:])


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    return subprocess.run(
        [str(MODELROUTER), *map(str, args)], capture_output=True, text=True, env=env, timeout=60
    )


def test_bom_quotes_names_and_drifting_types(tmp_path: Path) -> None:
    # 40,000 rows: pyarrow reads CSV in 4 MiB blocks, so the drift below lands in a later block.
    frame = pd.concat([WINE] * 225, ignore_index=True).head(40_000)
    frame["id"] = np.arange(len(frame))
    frame["magnesium"] = frame["magnesium"].astype(float)
    frame.loc[30_000:, "magnesium"] += 0.25  # integer-looking for 30,000 rows, then decimals
    frame.insert(1, "note, with comma", ['she said "ok"\nthen left'] * len(frame))
    frame.insert(2, "zip code / area", ["01234"] * 30_000 + ["AB-12"] * 10_000)  # numeric-looking first
    renamed = {"alcohol": "alcohol %", "hue": "hue (°)"}
    frame = frame.rename(columns=renamed)
    source = tmp_path / "export.csv"
    with source.open("w", encoding="utf-8-sig", newline="") as handle:  # Excel writes a BOM
        frame.to_csv(handle, index=False)

    # A model fitted on the renamed columns: names with spaces, %, a slash and a non-ASCII sign.
    features = [renamed.get(f, f) for f in FEATURES]
    training = WINE.rename(columns=renamed)
    labels = np.arange(len(WINE)) % 3  # integer labels must stay integers
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(training[features], labels)
    joblib.dump(model, tmp_path / "model.pkl")

    out = tmp_path / "scored.parquet"
    keep = ["-k", "id", "-k", "note, with comma", "-k", "zip code / area"]
    result = run_cli(
        "predict", source, "-m", tmp_path / "model.pkl", "-o", out, *keep, "-q", "--chunk-size", "7000"
    )
    assert result.returncode == 0, result.stderr
    scored = pq.read_table(out)
    assert scored.schema.names == ["id", "note, with comma", "zip code / area", "prediction"]
    assert str(scored.schema.field("prediction").type) == "int64"
    got = scored.to_pandas()
    # Kept CSV columns are typed where their text round-trips (docs/formats.md), else text.
    assert got["id"].tolist() == list(range(len(frame)))
    assert str(scored.schema.field("zip code / area").type) == "string"
    assert got["note, with comma"].iloc[0] == 'she said "ok"\nthen left'
    assert got["zip code / area"].iloc[0] == "01234"
    assert got["zip code / area"].iloc[-1] == "AB-12"
    expected = model.predict(frame[features].astype(np.float64))
    assert got["prediction"].tolist() == expected.tolist()
