"""Which cases of an end-to-end matrix ``make test`` runs, and which only ``make test-slow``.

A matrix crosses classes of input (mutations, misbehaviours, model kinds) with the commands
or backends that meet them, one real ``modelrouter`` process per case (about a second of CPU
each, most of it importing scikit-learn or a booster library). ``make test`` keeps a cross
through the matrix — every class through one command, every command on one class — so each
class and each command is still exercised on every change; the other cells run in
``make test-slow``, which CI runs as well (docs/development.md).

A one-dimensional matrix (one parametrize, every cell a real process: the same check over
several formats, models or signals) is marked ``@pytest.mark.matrix`` instead: ``make test``
runs its first cell, the others are marked ``slow`` (:func:`mark_matrix_cells`, called from
``tests/conftest.py``). The first cell is the case the test is named for; put it first.

A single test costing over about 3 s of CPU (measured per test: the pytest worker and its
subprocesses) is marked ``slow`` where ``make test`` still exercises its component through a
cheaper test; the mark's comment says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

__all__ = ["cross", "mark_matrix_cells"]


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


def mark_matrix_cells(items: Sequence[pytest.Item]) -> None:
    """Mark ``slow`` every cell but the first of each test function marked ``matrix``."""
    seen: set[tuple[str, str]] = set()
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker("matrix") is None:
            continue
        key = (item.nodeid.split("::")[0], item.originalname)
        if key in seen:
            item.add_marker(pytest.mark.slow)
        seen.add(key)
