"""Which cases of an end-to-end matrix ``make test`` runs, and which only ``make test-slow``.

A matrix crosses classes of input (mutations, misbehaviours, model kinds) with the commands
or backends that meet them, one real ``modelrouter`` process per case (about a second of CPU
each, most of it importing scikit-learn or a booster library). ``make test`` keeps a cross
through the matrix — every class through one command, every command on one class — so each
class and each command is still exercised on every change; the other cells run in
``make test-slow``, which CI runs as well (docs/development.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

__all__ = ["cross"]


def cross(
    rows: Sequence[Sequence[Any]],
    columns: Iterable[Any],
    *,
    fast_column: Any,
    fast_row: Sequence[Any],
    ids: Sequence[str] | None = None,
) -> list[Any]:
    """``pytest.param(*row, column)`` for every cell; only the cells in ``fast_column`` or
    in ``fast_row`` are left unmarked, the others are marked ``slow``.

    ``ids`` names the rows (the column value is appended to each id).
    """
    cells = []
    columns = list(columns)
    for index, row in enumerate(rows):
        row_id = ids[index] if ids is not None else "-".join(str(v) for v in row)
        for column in columns:
            fast = column == fast_column or tuple(row) == tuple(fast_row)
            marks = () if fast else (pytest.mark.slow,)
            cells.append(pytest.param(*row, column, id=f"{row_id}-{column}", marks=marks))
    return cells
