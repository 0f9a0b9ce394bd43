"""The I/O floor: a bare pyarrow read of the scoring columns and a write of two of them.

    python benchmarks/arrow_io.py INPUT.parquet OUTPUT.parquet --read id,f00,... --write id,f00

Reads the ``--read`` columns with ``pyarrow.parquet.read_table`` and writes the ``--write``
columns (the last one renamed ``prediction``) with ``pyarrow.parquet.write_table``: what any
Parquet → Parquet scoring run must at least do, with no model and no pandas.
"""

from __future__ import annotations

import argparse

import pyarrow as pa
import pyarrow.parquet as pq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--read", required=True, help="comma-separated columns to read")
    parser.add_argument("--write", required=True, help="comma-separated columns to write")
    args = parser.parse_args(argv)

    table = pq.read_table(args.input, columns=args.read.split(","))
    names = args.write.split(",")
    out = pa.table([table[name] for name in names], names=[*names[:-1], "prediction"])
    pq.write_table(out, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
