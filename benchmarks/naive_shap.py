"""The naive shap script ``predict --explain`` is measured against on a scikit-learn forest.

    python benchmarks/naive_shap.py MODEL.pkl INPUT.parquet OUTPUT.npy

What an analyst writes with shap alone: ``joblib.load`` of the model, ``pandas.read_parquet``
of the whole file, ``shap.TreeExplainer(model).shap_values(X)`` on the whole feature frame
(every class), ``numpy.save`` of the values: shape ``(rows, features, classes)``.
"""

from __future__ import annotations

import sys

import joblib
import numpy as np
import pandas as pd
import shap


def main(argv: list[str]) -> int:
    model_path, input_path, output_path = argv
    model = joblib.load(model_path)
    features = pd.read_parquet(input_path).drop(columns=["id"])
    values = np.asarray(shap.TreeExplainer(model).shap_values(features))
    np.save(output_path, values)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
