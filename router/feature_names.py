"""Matching a model's feature names to an input's columns (docs/specification.md §4).

Some libraries store feature names changed from the columns the model was fitted on:
LightGBM replaces spaces with underscores (``mean radius`` → ``mean_radius``), skl2onnx makes
input names C identifiers (``od280/od315_of_diluted_wines`` → ``od280_od315_of_diluted_wines``).
``model.predict(frame)`` on the original frame works, so we must too.

The rule: a model name is matched by exact name first; otherwise by the library's own
sanitising rule applied to the input's columns, when exactly one column not already matched
exactly maps to it. Anything else is missing, and :func:`suggestions` names the nearest input
columns for the error message.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence

__all__ = ["NAME_RULES", "match_columns", "sanitize", "suggestions"]


def _lightgbm(name: str) -> str:
    # LightGBM's Dataset::set_feature_names: "replace ' ' in feature_names with '_'".
    return name.replace(" ", "_")


def _skl2onnx(name: str) -> str:
    # skl2onnx's Topology._generate_unique_name: only word characters (and '+') survive, and
    # a name may not start with a digit. (Its numeric suffix for duplicates is not undone:
    # such a name is ambiguous by construction.)
    cleaned = re.sub(r"[^\w+]", "_", name)
    return "_" + cleaned if re.match(r"^[0-9]", cleaned) else cleaned


#: The sanitising rules we know, by the name an :class:`InputSchema` refers to them.
NAME_RULES: Mapping[str, Callable[[str], str]] = {"lightgbm": _lightgbm, "skl2onnx": _skl2onnx}


def sanitize(name: str, rule: str | None) -> str:
    """``name`` as the library of ``rule`` would store it (unchanged without a rule)."""
    return name if rule is None else NAME_RULES[rule](name)


def match_columns(
    names: Sequence[str], available: Sequence[str], rule: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """Map each model name to its input column; return the mapping and the unmatched names.

    Exact matches first; then, under ``rule``, the one remaining column whose sanitised form
    equals the name (two or more candidates: ambiguous, so missing).
    """
    present = set(available)
    matched = {name: name for name in names if name in present}
    missing = [name for name in names if name not in present]
    if not missing or rule is None:
        return matched, missing
    taken = set(matched.values())
    candidates: dict[str, list[str]] = {}
    for column in available:
        if column not in taken:
            candidates.setdefault(sanitize(column, rule), []).append(column)
    still_missing = []
    for name in missing:
        found = candidates.get(name, [])
        if len(found) == 1:
            matched[name] = found[0]
        else:
            still_missing.append(name)
    return matched, still_missing


def _normal(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


def suggestions(name: str, available: Sequence[str], rule: str | None = None, limit: int = 2) -> list[str]:
    """The input columns nearest to ``name``: sanitised twins first, then close spellings."""
    twins = [c for c in available if rule is not None and sanitize(c, rule) == name]
    normal = {c: _normal(c) for c in available}
    same = [c for c in available if normal[c] == _normal(name) and c not in twins]
    close = difflib.get_close_matches(_normal(name), list(normal.values()), n=limit, cutoff=0.6)
    near = [c for key in close for c in available if normal[c] == key]
    return list(dict.fromkeys([*twins, *same, *near]))[:limit]
