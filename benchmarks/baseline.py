"""The naive analyst script modelrouter is measured against (issue 4's baseline).

    python benchmarks/baseline.py INPUT.parquet MODEL.pkl OUTPUT.parquet [--proba]

``pandas.read_parquet`` of the whole file → one ``model.predict`` (or ``predict_proba``) on the
whole feature frame → ``to_parquet`` of ``id`` + the prediction. No chunking, no threads beyond
what the model does by itself: what a user writes without a tool.
"""

from __future__ import annotations

import argparse

import joblib
import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", help="input .parquet file")
    parser.add_argument("model", help="scikit-learn model saved with joblib")
    parser.add_argument("output", help="output .parquet file (id + prediction)")
    parser.add_argument("--proba", action="store_true", help="write predict_proba columns instead")
    parser.add_argument("--id-column", default="id", help="column copied to the output (default: id)")
    args = parser.parse_args(argv)

    frame = pd.read_parquet(args.input)
    model = joblib.load(args.model)
    features = frame.drop(columns=[args.id_column])
    out = pd.DataFrame({args.id_column: frame[args.id_column]})
    if args.proba:
        proba = model.predict_proba(features)
        for i, label in enumerate(model.classes_):
            out[f"proba_{label}"] = proba[:, i]
    else:
        out["prediction"] = model.predict(features)
    out.to_parquet(args.output, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
