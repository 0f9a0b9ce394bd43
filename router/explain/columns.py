"""The names of ``predict --explain``'s contribution columns (docs/explanations.md, "Columns").

``contrib_base`` holds the base value and ``contrib_<column>`` each input column's
contribution, so an input column named ``base`` would give a second ``contrib_base``. The
documented names cannot tell the two apart, and renaming either would change them for every
other model, so such a run is refused before any row is read, naming that column. The other
explanation columns (``explained_class``, ``reason_<i>``, ``reason_<i>_contrib``) never start
with ``contrib_``: no input column name reaches them.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelrouter.backends import Model
from modelrouter.errors import DataError, ModelError

__all__ = ["BASE_COLUMN", "contribution_column", "contribution_columns"]

#: The base value's column.
BASE_COLUMN = "contrib_base"


def contribution_column(column: str) -> str:
    """The name of input column ``column``'s contribution."""
    return f"contrib_{column}"


def contribution_columns(model: Model, features: Sequence[str], source: str = "") -> list[str]:
    """``contrib_base``, then one contribution column per input column in ``features`` (as
    named in the input, in the model's order).

    Raises :class:`~modelrouter.errors.ModelError` when a column the model names gives
    ``contrib_base`` (the input cannot change it), or :class:`~modelrouter.errors.DataError`
    when it is an input column fed by position to a model that knows no names (``source``:
    the input's name, for the message).
    """
    names = [contribution_column(column) for column in features]
    if BASE_COLUMN in names:
        raise _base_clash(model, features[names.index(BASE_COLUMN)], source)
    return [BASE_COLUMN, *names]


def _base_clash(model: Model, column: str, source: str) -> ModelError | DataError:
    what = (
        f"input column {column!r} gives contribution column {BASE_COLUMN!r}, the same name as "
        "the base value's column"
    )
    if model.schema.names is None:  # the name is the input's: renaming it there is enough
        where = f"{source}: " if source else ""
        return DataError(f"{where}{what}; rename it in the input", column=column)
    return ModelError(
        f"{model.path}: the model's {what}, so --explain cannot write both; --reasons K names it "
        "without that clash, or refit the model with the column renamed"
    )
