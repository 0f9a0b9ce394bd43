"""Structural checks of native booster files, made before XGBoost or LightGBM parse them.

Both libraries trust their own files: a truncated LightGBM text, a zero-byte XGBoost file,
a child index out of range, a cycle between nodes or a tree size that lies make their C++
code read out of bounds, abort or loop — the process dies (exit 134/139) instead of
reporting a model error. So the native loaders only ever see a file whose structure was
checked here first (docs/specification.md §5: a corrupt model is exit 4 naming the file):

- XGBoost (``.json`` / ``.ubj``): the document is parsed in Python (JSON, or UBJSON by
  :mod:`~modelrouter.backends.ubjson`); every tree's arrays have the length its
  ``num_nodes`` says, every child index is in range, the nodes form a tree (each reached
  once from the root, so no cycle), split features exist, and the tree counts and class
  indices agree.
- LightGBM (``.txt``): CRLF line endings (a valid model saved on Windows) are normalised;
  the file must end its trees with ``end of trees``; ``tree_sizes`` must match the trees'
  real sizes; every tree's arrays have the lengths ``num_leaves`` implies, child indices are
  in range and form a tree, split features exist.

Each check raises :class:`ModelLoadError` naming the file and the first problem found.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
import threading
from collections.abc import Sequence
from typing import Any

from modelrouter.backends.ubjson import UBJReader
from modelrouter.errors import ModelLoadError

__all__ = ["checked_lightgbm_text", "checked_xgboost_document"]


def _fail(where: object, problem: str, kind: str) -> ModelLoadError:
    return ModelLoadError(f"{where}: not a valid {kind} model file: {problem}")


def _as_int(value: object, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value))
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not an integer ({value!r:.40})") from None
    return number


def _check_tree_shape(
    left: Sequence[int], right: Sequence[int], n_internal: int, *, leaf: Any, what: str
) -> None:
    """Every node reached exactly once from node 0 through ``left``/``right``.

    ``leaf(child)`` says whether a child index denotes a leaf (and raises if it is one out of
    range); other children must be internal nodes ``0 ≤ i < n_internal``."""
    seen = bytearray(n_internal)
    stack = [0] if n_internal else []
    while stack:
        node = stack.pop()
        if seen[node]:
            raise ValueError(f"{what}: node {node} is reached twice (a cycle or a shared node)")
        seen[node] = 1
        for child in (left[node], right[node]):
            if leaf(child):
                continue
            if not 0 < child < n_internal:
                raise ValueError(f"{what}: node {node} has child {child}, out of range 1..{n_internal - 1}")
            stack.append(child)
    if n_internal and not all(seen):
        raise ValueError(f"{what}: node {seen.index(0)} is not reachable from the root")


# -- XGBoost -------------------------------------------------------------------------------

_XGB_TREE_ARRAYS = (
    "left_children",
    "right_children",
    "parents",
    "split_indices",
    "split_conditions",
    "default_left",
    "base_weights",
    "loss_changes",
    "sum_hessian",
)


#: Digests of files that passed, so the instances of one pool are built without checking the
#: same bytes again (a check costs about as much as the native load: 0.1-0.2 s for 300 trees).
_PASSED: dict[str, None] = {}
_PASSED_MAX = 16
_PASSED_LOCK = threading.Lock()


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _passed(digest: str) -> bool:
    with _PASSED_LOCK:
        return digest in _PASSED


def _remember(digest: str) -> None:
    with _PASSED_LOCK:
        if len(_PASSED) >= _PASSED_MAX:
            _PASSED.pop(next(iter(_PASSED)))
        _PASSED[digest] = None


def checked_xgboost_document(data: bytes, where: object) -> None:
    """Check the structure of an XGBoost ``.json``/``.ubj`` file (see module doc).

    Raises :class:`ModelLoadError` naming ``where``."""
    digest = _digest(data)
    if _passed(digest):
        return
    kind = "XGBoost (.json/.ubj)"
    if not data.strip():
        raise _fail(where, "the file is empty", kind)
    try:
        if data.lstrip()[:1] == b"{" and data.lstrip()[1:2] in (b'"', b"}", b" ", b"\n", b"\r", b"\t"):
            document = json.loads(data)
        else:
            document = UBJReader(data).document()
    except (ValueError, RecursionError, UnicodeDecodeError, struct.error) as exc:
        raise _fail(where, f"cannot parse it ({str(exc)[:200]})", kind) from None
    try:
        _check_xgboost(document)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise _fail(where, problem[:300], kind) from None
    _remember(digest)


def _check_xgboost(document: Any) -> None:
    """The whole document: dimensions, then the booster (trees, or gblinear's weights)."""
    learner = document["learner"]
    n_features, n_class = _xgboost_dimensions(learner)
    model = _tree_model(learner["gradient_booster"], n_features, n_class)
    if model is None:
        return  # gblinear: no trees
    trees = model["trees"]
    _check_tree_groups(model, len(trees), n_class)
    for i, tree in enumerate(trees):
        _check_xgboost_tree(tree, i, n_features)


def _xgboost_dimensions(learner: Any) -> tuple[int, int]:
    """``num_feature`` and ``num_class`` (0: not a multi-class model), checked."""
    params = learner["learner_model_param"]
    n_features = _as_int(params["num_feature"], "num_feature")
    n_class = _as_int(params.get("num_class", "0") or 0, "num_class")
    if n_features < 0 or n_class < 0:
        raise ValueError(f"num_feature {n_features} / num_class {n_class} is negative")
    names = learner.get("feature_names") or []
    if names and len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for {n_features} features")
    return n_features, n_class


def _tree_model(booster: Any, n_features: int, n_class: int) -> Any:
    """The tree model of a ``gbtree`` or ``dart`` booster; ``None`` for a ``gblinear`` one,
    whose weight count is checked here."""
    name = booster.get("name")
    if name == "gbtree":
        return booster["model"]
    if name == "dart":
        return booster["gbtree"]["model"]
    if name != "gblinear":
        raise ValueError(f"unknown gradient booster {name!r:.40}")
    weights = booster["model"]["weights"]
    expected = (n_features + 1) * max(1, n_class)
    if len(weights) != expected:
        raise ValueError(f"gblinear has {len(weights)} weights, expected {expected}")
    return None


def _check_tree_groups(model: Any, n_trees: int, n_class: int) -> None:
    """The tree count, each tree's output (``tree_info``) and the iterations' partition of the
    trees (``iteration_indptr``, when present) agree with the ``n_trees`` trees held."""
    declared = _as_int(model["gbtree_model_param"]["num_trees"], "num_trees")
    if declared != n_trees:
        raise ValueError(f"num_trees says {declared} but the file holds {n_trees} trees")
    info = model.get("tree_info", [])
    if len(info) != n_trees:
        raise ValueError(f"tree_info has {len(info)} entries for {n_trees} trees")
    groups = max(1, n_class)
    for i, group in enumerate(info):
        if not 0 <= _as_int(group, "tree_info") < groups:
            raise ValueError(f"tree {i} belongs to output {group}, out of range 0..{groups - 1}")
    indptr = model.get("iteration_indptr")
    if indptr is not None and not _partitions(indptr, n_trees):
        raise ValueError("iteration_indptr does not partition the trees")


def _partitions(indptr: Sequence[int], n_trees: int) -> bool:
    """Whether ``indptr`` runs from 0 to ``n_trees`` without going back."""
    return (
        bool(indptr)
        and indptr[0] == 0
        and indptr[-1] == n_trees
        and not any(b < a for a, b in itertools.pairwise(indptr))
    )


def _check_xgboost_tree(tree: Any, index: int, n_features: int) -> None:
    what = f"tree {index}"
    n = _as_int(tree["tree_param"]["num_nodes"], f"{what} num_nodes")
    if n < 1:
        raise ValueError(f"{what} has {n} nodes")
    for key in _XGB_TREE_ARRAYS:
        if len(tree[key]) != n:
            raise ValueError(f"{what}: {key} has {len(tree[key])} entries, num_nodes says {n}")
    split_type = tree.get("split_type")
    if split_type is not None and len(split_type) != n:
        raise ValueError(f"{what}: split_type has {len(split_type)} entries, num_nodes says {n}")
    left = [int(v) for v in tree["left_children"]]
    right = [int(v) for v in tree["right_children"]]
    features = tree["split_indices"]
    for node in range(n):
        if (left[node] == -1) != (right[node] == -1):
            raise ValueError(f"{what}: node {node} has one child")
        if left[node] != -1 and not 0 <= int(features[node]) < max(1, n_features):
            raise ValueError(f"{what}: node {node} splits on feature {features[node]} of {n_features}")
    if split_type is not None and any(int(t) != 0 for t in split_type):
        raise ValueError(f"{what} has categorical splits, which modelrouter does not feed yet")

    def is_leaf(child: int) -> bool:
        return child == -1

    _check_tree_shape(left, right, n, leaf=is_leaf, what=what)


# -- LightGBM ------------------------------------------------------------------------------

_LGB_KIND = "LightGBM (.txt)"
_KEY = re.compile(r"^([A-Za-z_]+)=(.*)$", re.MULTILINE)


def checked_lightgbm_text(text: str, where: object) -> str:
    """A LightGBM model text with its structure checked, line endings normalised to LF.

    Raises :class:`ModelLoadError` naming ``where``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    digest = _digest(text)
    if _passed(digest):
        return text
    try:
        _check_lightgbm(text)
    except ValueError as exc:
        raise _fail(where, str(exc)[:300], _LGB_KIND) from None
    _remember(digest)
    return text


def _fields(section: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _KEY.finditer(section)}


def _numbers(fields: dict[str, str], key: str, what: str, *, integer: bool) -> list[float]:
    if key not in fields:
        raise ValueError(f"{what} has no {key}")
    try:
        return [int(v) if integer else float(v) for v in fields[key].split()]
    except ValueError:
        raise ValueError(f"{what}: {key} holds a value that is not a number") from None


def _check_lightgbm(text: str) -> None:
    if not text.startswith("tree\n"):
        raise ValueError("it does not start with the line 'tree'")
    end = text.find("\nend of trees")
    if end < 0:
        raise ValueError("'end of trees' is missing (the file is truncated?)")
    first = text.find("\nTree=")
    header = _fields(text[: first if 0 <= first < end else end])
    for key in ("version", "num_class", "num_tree_per_iteration", "max_feature_idx"):
        if key not in header:
            raise ValueError(f"the header has no {key}")
    n_features = _as_int(header["max_feature_idx"], "max_feature_idx") + 1
    per_iteration = _as_int(header["num_tree_per_iteration"], "num_tree_per_iteration")
    if n_features < 1 or per_iteration < 1:
        raise ValueError("max_feature_idx or num_tree_per_iteration is out of range")
    names = header.get("feature_names", "").split()
    if names and len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for {n_features} features")
    body = text[first + 1 : end + 1] if 0 <= first < end else ""
    sections = [s for s in re.split(r"(?=^Tree=)", body, flags=re.MULTILINE) if s]
    if "tree_sizes" in header:
        try:
            sizes = [int(v) for v in header["tree_sizes"].split()]
        except ValueError:
            raise ValueError("tree_sizes holds a value that is not a number") from None
        real = [len(s.encode("utf-8")) for s in sections]
        if sizes != real:
            raise ValueError(
                f"tree_sizes does not match the trees ({len(sizes)} sizes for {len(real)} trees)"
            )
    _check_lightgbm_tail(text[end + 1 :])
    if len(sections) % per_iteration:
        raise ValueError(f"{len(sections)} trees is not a multiple of num_tree_per_iteration {per_iteration}")
    for i, section in enumerate(sections):
        _check_lightgbm_tree(section, i, n_features)


_IMPORTANCE = re.compile(r"^.+=\d+$")
_PARAMETER = re.compile(r"^\[[^\]:]+: .*\]$")


def _check_lightgbm_tail(tail: str) -> None:
    """What follows the trees: LightGBM parses it too (a line cut short there crashes it),
    so each block must be whole — feature importances, parameters up to ``end of
    parameters``, and the ``pandas_categorical`` JSON line."""
    lines = tail.split("\n")
    if lines[0] != "end of trees":
        raise ValueError("'end of trees' is not on a line of its own")
    block = None
    for number, line in enumerate(lines[1:], start=2):
        if block == "parameters":
            if line == "end of parameters":
                block = None
            elif line and not _PARAMETER.match(line):
                raise ValueError(f"parameter line {line[:40]!r} is malformed (the file is truncated?)")
            continue
        if not line:
            block = None
        elif line == "feature_importances:":
            block = "importances"
        elif line == "parameters:":
            block = "parameters"
        elif line.startswith("pandas_categorical:"):
            try:
                json.loads(line.removeprefix("pandas_categorical:"))
            except ValueError:
                raise ValueError(
                    "the pandas_categorical line is cut short (the file is truncated?)"
                ) from None
        elif block == "importances" and _IMPORTANCE.match(line):
            continue
        else:
            raise ValueError(f"unexpected line {line[:40]!r} after the trees (line {number} of the tail)")
    if block == "parameters":
        raise ValueError("'end of parameters' is missing (the file is truncated?)")


def _check_lightgbm_tree(section: str, index: int, n_features: int) -> None:
    what = f"tree {index}"
    if not section.startswith(f"Tree={index}\n"):
        raise ValueError(f"{what} does not start with 'Tree={index}'")
    fields = _fields(section)
    leaves = _as_int(fields.get("num_leaves"), f"{what} num_leaves")
    if leaves < 1:
        raise ValueError(f"{what} has {leaves} leaves")
    if _as_int(fields.get("num_cat", "0"), f"{what} num_cat"):
        raise ValueError(f"{what} has categorical splits, which modelrouter does not feed yet")
    if len(_numbers(fields, "leaf_value", what, integer=False)) != leaves:
        raise ValueError(f"{what}: leaf_value does not have num_leaves={leaves} entries")
    if _as_int(fields.get("is_linear", "0"), f"{what} is_linear"):
        raise ValueError(f"{what} is a linear tree, which modelrouter does not support")
    if leaves == 1:
        return
    internal = leaves - 1
    arrays = {}
    for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
        values = _numbers(fields, key, what, integer=key != "threshold")
        if len(values) != internal:
            raise ValueError(f"{what}: {key} has {len(values)} entries, num_leaves={leaves} needs {internal}")
        arrays[key] = values
    for node, feature in enumerate(arrays["split_feature"]):
        if not 0 <= feature < n_features:
            raise ValueError(f"{what}: node {node} splits on feature {feature} of {n_features}")

    def is_leaf(child: int) -> bool:
        if child >= 0:
            return False
        if not 0 <= ~child < leaves:
            raise ValueError(f"{what}: a child points at leaf {~child} of {leaves}")
        return True

    left = [int(v) for v in arrays["left_child"]]
    right = [int(v) for v in arrays["right_child"]]
    _check_tree_shape(left, right, internal, leaf=is_leaf, what=what)
