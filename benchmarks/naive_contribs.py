"""The naive script ``predict --explain`` is measured against on XGBoost and LightGBM boosters.

    python benchmarks/naive_contribs.py MODEL.(json|txt) INPUT.parquet OUTPUT.parquet

What a user writes with the library alone: load the booster, ``pandas.read_parquet`` of the
whole file, one contribution call on the whole feature frame —
``booster.predict(DMatrix(X), pred_contribs=True)`` (XGBoost) or
``booster.predict(X, pred_contrib=True)`` (LightGBM), both on all cores — and ``to_parquet``
of what ``predict --explain`` writes: ``id``, the predicted class (the largest margin, which
the contributions sum to), and that class's base value and contributions, as the library
returns them (float32 for XGBoost, float64 for LightGBM).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd


def main(argv: list[str]) -> int:
    model_path, input_path, output_path = argv
    frame = pd.read_parquet(input_path)
    features = frame.drop(columns=["id"])
    raw: Any
    if model_path.endswith(".json"):
        import xgboost as xgb

        raw = xgb.Booster(model_file=model_path).predict(
            xgb.DMatrix(features), pred_contribs=True
        )  # (rows, classes, f + 1)
    else:
        import lightgbm as lgb

        raw = lgb.Booster(model_file=model_path).predict(
            features, pred_contrib=True
        )  # class-major (rows, classes · (f + 1))
    raw = np.asarray(raw).reshape(len(features), -1, features.shape[1] + 1)
    label = raw.sum(axis=2).argmax(axis=1)
    picked = raw[np.arange(len(raw)), label]
    out = pd.DataFrame(picked[:, :-1], columns=[f"contrib_{c}" for c in features.columns])
    out.insert(0, "contrib_base", picked[:, -1])
    out.insert(0, "prediction", label)
    out.insert(0, "id", frame["id"])
    out.to_parquet(output_path, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
