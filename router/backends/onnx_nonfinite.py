"""Which non-finite input values an ONNX graph gives a meaning to, and which it does not.

onnxruntime never refuses a NaN or an infinity: a linear or SVM node computes NaN scores from
them, an ``ArgMax`` over NaN scores picks the first class, and the model "predicts" a label
for a row it could not score. scikit-learn refuses the same row (its estimators check their
input), so the two backends of one model disagreed (docs/specification.md §5: a value the
model rejects is a data error).

The decision is taken from the graph itself, by following where each input's values go
(:func:`refused_nonfinite`): a node *declares* what to do with non-finite values when it
has a branch for them — tree ensembles route NaN down their missing-value branches and compare
infinities like any number; an ``Imputer`` whose ``replaced_value_float`` is NaN replaces NaN
(but not infinity). Values of a kind that reach a graph output without passing such a node
are refused before the graph runs (:class:`~modelrouter.errors.RejectedValuesError`, naming
the row and the column). A graph we cannot follow (control flow, an unknown structure) keeps
every kind refused: refusing is recoverable (``--on-error skip``), an invented label is not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["KINDS", "refused_nonfinite"]

#: The kinds of non-finite values told apart (a refusal is per kind: an imputer takes NaN,
#: not infinity; docs/reliability.md).
KINDS = ("nan", "inf")

#: Nodes that branch on their (first) input's values, NaN included: what reaches them is
#: decided, not propagated.
_TREE_OPS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"})
#: Nodes whose output does not carry the values of their inputs (only shapes or flags).
_VALUE_FREE_OPS = frozenset({"Shape", "Size", "IsNaN", "IsInf"})

Taint = frozenset[tuple[str, str]]


def refused_nonfinite(raw: bytes) -> dict[str, frozenset[str]]:
    """For each graph input, the kinds of non-finite values (``nan``, ``inf``) that reach an
    output of the graph ``raw`` without a node that decides what they mean.

    Imports ``onnx`` (≈0.3 s): called only once a batch actually holds a non-finite value.
    """
    import onnx

    model = onnx.load_model_from_string(raw)
    graph = model.graph
    initialised = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initialised]
    everything: Taint = frozenset((name, kind) for name in inputs for kind in KINDS)
    taint: dict[str, Taint] = {name: frozenset((name, kind) for kind in KINDS) for name in inputs}
    for node in graph.node:
        carried = _carried(node, taint, everything)
        for name in node.output:
            taint[name] = carried
    reaching = frozenset().union(*(taint.get(o.name, everything) for o in graph.output))
    return {name: frozenset(kind for source, kind in reaching if source == name) for name in inputs}


def _carried(node: Any, taint: dict[str, Taint], everything: Taint) -> Taint:
    """The (input, kind) pairs of non-finite values that ``node``'s outputs carry, given the
    pairs each value computed so far carries (``taint``)."""
    if _has_subgraph(node):
        # Control flow reads outer values we do not follow: assume everything reaches it.
        return everything
    if node.op_type in _VALUE_FREE_OPS:
        return frozenset()
    is_ml = node.domain == "ai.onnx.ml"
    if node.op_type in _TREE_OPS and is_ml:
        # The first input is decided by the trees' branches; only the others pass through.
        return _union(taint, node.input[1:])
    carried = _union(taint, node.input)
    if node.op_type == "Imputer" and is_ml and _replaces_nan(node):
        return frozenset(t for t in carried if t[1] != "nan")
    return carried


def _union(taint: dict[str, Taint], names: Iterable[str]) -> Taint:
    """What the values ``names`` carry together (a name not computed from an input: nothing)."""
    return frozenset().union(*(taint.get(name, frozenset()) for name in names))


def _has_subgraph(node: Any) -> bool:
    """Whether ``node`` holds a graph attribute (``If``, ``Loop``, ``Scan``: control flow)."""
    import onnx

    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def _replaces_nan(node: object) -> bool:
    """Whether an ``Imputer`` node replaces NaN (``replaced_value_float`` NaN, as skl2onnx
    writes for ``missing_values=np.nan``); its default, 0.0, replaces zeros instead."""
    for attribute in getattr(node, "attribute", ()):
        if attribute.name == "replaced_value_float":
            return math.isnan(attribute.f)
    return False
