"""XGBoost and LightGBM models of the forest's size, and the naive script that scores with them.

    python -m benchmarks.boosters INPUT.parquet MODEL.(json|txt) OUTPUT.parquet

Models: 100 trees (per class) of depth ≤ 10 (the forest's size), fitted on the first 5,000 of
the forest's training rows and its three classes (:mod:`benchmarks.fixtures`) on one thread —
fitting is not what is measured, and all cores of a busy 2-core machine took 4.5 minutes
instead of 10 s — and saved natively: ``xgboost.json``
(``Booster.save_model``) and ``lightgbm.txt``. Cached beside the forest, keyed by the library
version. The script is what a user writes with the library alone: ``pandas.read_parquet`` of
the whole file, one ``predict`` on the whole feature frame, arg max to a label, ``to_parquet``
of ``id`` + ``prediction``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

__all__ = ["LIBRARIES", "booster_models", "main"]

#: Library → the suffix of its native model file.
LIBRARIES = {"xgboost": ".json", "lightgbm": ".txt"}
TREES, DEPTH, FIT_ROWS = 100, 10, 5_000


def available(library: str) -> bool:
    return importlib.util.find_spec(library) is not None


def booster_models(folder: Path) -> dict[str, Path]:
    """Fit (or reuse) the models of the installed libraries in ``folder``; library → file."""
    from benchmarks.fixtures import FEATURES, N_FEATURES, SEED, TRAIN_ROWS, _labels

    found: dict[str, Path] = {}
    wanted = [lib for lib in LIBRARIES if available(lib)]
    if not wanted:
        return found
    import pandas as pd

    rng = np.random.default_rng([SEED, 10**9])  # the forest's training data
    x = rng.standard_normal((TRAIN_ROWS, N_FEATURES), dtype=np.float32)
    y = _labels(x, rng)[:FIT_ROWS]
    frame = pd.DataFrame(x[:FIT_ROWS], columns=list(FEATURES))
    folder.mkdir(parents=True, exist_ok=True)
    for library in wanted:
        module = __import__(library)
        path = folder / f"{library}-{module.__version__}{LIBRARIES[library]}"
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            if library == "xgboost":
                model = module.XGBClassifier(n_estimators=TREES, max_depth=DEPTH, random_state=0, n_jobs=1)
                model.fit(frame, y)
                model.get_booster().save_model(str(tmp) + ".json")
                os.replace(str(tmp) + ".json", path)
            else:
                model = module.LGBMClassifier(
                    n_estimators=TREES, max_depth=DEPTH, num_leaves=255, random_state=0, verbose=-1, n_jobs=1
                )
                model.fit(frame, y)
                model.booster_.save_model(tmp)
                os.replace(tmp, path)
        found[library] = path
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", help="input .parquet file")
    parser.add_argument("model", help="XGBoost .json or LightGBM .txt model")
    parser.add_argument("output", help="output .parquet file (id + prediction)")
    parser.add_argument("--id-column", default="id")
    args = parser.parse_args(argv)

    import pandas as pd

    frame = pd.read_parquet(args.input)
    features = frame.drop(columns=[args.id_column])
    if args.model.endswith(".json"):
        import xgboost as xgb

        model = xgb.XGBClassifier()
        model.load_model(args.model)
        labels = model.predict(features)
    else:
        import lightgbm as lgb

        booster = lgb.Booster(model_file=args.model)
        labels = np.argmax(booster.predict(features), axis=1)
    out = pd.DataFrame({args.id_column: frame[args.id_column], "prediction": labels})
    out.to_parquet(args.output, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
