"""The naive script for a table in and a table out (the database scenarios' baseline).

    python benchmarks/baseline_sql.py URL TABLE MODEL.pkl TO_TABLE

What a user writes with pandas and nothing else: a SQLAlchemy engine (psycopg 3),
``pandas.read_sql`` of the whole table → one ``model.predict`` on the whole feature frame →
``DataFrame.to_sql(if_exists="replace", method="multi", chunksize=10_000)`` of ``id`` + the
prediction (multi-row ``INSERT``s, the usual advice for speed; 10,000 rows × 2 columns stays
under PostgreSQL's 65,535 parameters per statement). ``URL`` is a libpq ``postgresql://``
URL; the engine gets it as ``postgresql+psycopg://``.
"""

from __future__ import annotations

import argparse

import joblib
import pandas as pd
import sqlalchemy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="postgresql:// URL")
    parser.add_argument("table", help="input table")
    parser.add_argument("model", help="scikit-learn model saved with joblib")
    parser.add_argument("to_table", help="output table (replaced): id + prediction")
    parser.add_argument("--id-column", default="id", help="column copied to the output (default: id)")
    args = parser.parse_args(argv)

    engine = sqlalchemy.create_engine(args.url.replace("postgresql://", "postgresql+psycopg://", 1))
    frame = pd.read_sql(f'SELECT * FROM "{args.table}"', engine)
    model = joblib.load(args.model)
    features = frame.drop(columns=[args.id_column])
    out = pd.DataFrame({args.id_column: frame[args.id_column]})
    out["prediction"] = model.predict(features)
    out.to_sql(args.to_table, engine, if_exists="replace", index=False, method="multi", chunksize=10_000)
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
