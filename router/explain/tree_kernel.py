"""Exact path-dependent TreeSHAP in one pass over each tree's nodes (compiled with numba).

The path-dependent SHAP value of feature ``i`` for one row sums, over the leaves ``l`` whose
path splits on ``i``::

    v_l · (o_i − z_i) · ∫₀¹ Π_{j ≠ i} (z_j + (o_j − z_j)·t) dt

where, for each distinct feature ``j`` on the leaf's path, ``z_j`` is the product of the cover
fractions of the path's branches on ``j`` and ``o_j`` is 1 when the row follows all of them,
else 0 (the Beta integral ∫ tˢ(1−t)^{d−1−s} dt is exactly the Shapley weight s!(d−1−s)!/d!).
The integrand is a polynomial of degree < depth, so Gauss–Legendre quadrature with
⌈depth/2⌉ nodes integrates it exactly. Evaluated at the quadrature nodes, the products along a
path are built top-down (one multiplication per node), and the leaf sums are gathered
bottom-up: the contribution of a split is the sum under each child divided by that child's
own factor. So one row costs O(nodes × quadrature nodes) per tree instead of the classic
algorithm's O(leaves × depth²), with the same result up to rounding (docs/explanations.md,
"Method"). A feature met again deeper on a path is credited at its deepest split: the sums of
the subtrees below a repeat are taken out of the ancestor's share.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["quadrature", "tree_shap", "warm_up"]


def quadrature(depth: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Gauss–Legendre nodes and weights on [0, 1], exact for polynomials of degree < depth."""
    count = max(1, (max(depth, 1) + 1) // 2)
    nodes, weights = np.polynomial.legendre.leggauss(count)
    return (nodes + 1.0) / 2.0, weights / 2.0


def _kernel(  # noqa: C901 - the whole tree walk is one compiled loop nest
    x: Any,
    target: Any,
    roots: Any,
    left: Any,
    right: Any,
    feature: Any,
    threshold: Any,
    missing_left: Any,
    cover: Any,
    values: Any,
    t: Any,
    w: Any,
    max_depth: int,
    block: int,
    phi: Any,
) -> None:  # pragma: no cover - compiled by numba; tested through tree_shap
    # Rows are walked in blocks: every row of a block visits the same nodes in the same
    # order (only whether it follows a branch differs), so the per-node work is a loop over
    # the block's rows that the compiler vectorizes. Covers (z) are the same for every row;
    # the follow indicators (o, 0 or 1) are per row.
    rows = x.shape[0]
    n_features = x.shape[1]
    m = t.shape[0]
    levels = max_depth + 2
    size = block
    # Per path level: the node, which child is being walked (0 none yet, 1 left, 2 right),
    # the product at the node, the sums below the node, the sum under the child being walked,
    # the sums under deeper repeats of the node's feature, and the feature's state above the
    # node (restored on the way up).
    node_at = np.zeros(levels, np.int64)
    stage = np.zeros(levels, np.int64)
    prod = np.ones((levels, m, size))
    below = np.zeros((levels, m, size))
    child_sum = np.zeros((levels, m, size))
    repeat = np.zeros((levels, m, size))
    goes_left = np.zeros((levels, size))
    saved_z = np.ones(levels)
    saved_o = np.ones((levels, size))
    saved_level = np.full(levels, -1, np.int64)
    merged_z = np.ones(levels)
    merged_o = np.ones((levels, size))
    # Per feature: its merged (z, o) on the current path and the deepest level splitting on it.
    fz = np.ones(n_features)
    fo = np.ones((n_features, size))
    flevel = np.full(n_features, -1, np.int64)
    q0 = np.empty(m)
    q1 = np.empty(m)
    r00 = np.empty(m)
    r10 = np.empty(m)
    r11 = np.empty(m)
    leaf = np.empty(size)
    for start in range(0, rows, size):
        nb = min(size, rows - start)
        for tree in range(roots.shape[0]):
            root = roots[tree]
            if left[root] < 0:
                continue
            depth = 0
            node_at[0] = root
            stage[0] = 0
            prod[0, :, :] = 1.0
            below[0, :, :] = 0.0
            repeat[0, :, :] = 0.0
            while depth >= 0:
                n = node_at[depth]
                f = feature[n]
                if stage[depth] == 2:
                    # Both children done: credit the right one, then hand the sums up.
                    _credit(
                        phi,
                        start,
                        nb,
                        f,
                        merged_z[depth],
                        merged_o[depth],
                        child_sum[depth],
                        repeat[depth],
                        t,
                        w,
                    )
                    fz[f] = saved_z[depth]
                    fo[f, :nb] = saved_o[depth, :nb]
                    flevel[f] = saved_level[depth]
                    below[depth, :, :nb] += child_sum[depth, :, :nb]
                    up = saved_level[depth]
                    if up >= 0:
                        repeat[up, :, :nb] += below[depth, :, :nb]
                    if depth > 0:
                        child_sum[depth - 1, :, :nb] = below[depth, :, :nb]
                    depth -= 1
                    continue
                if stage[depth] == 1:
                    # Left child done: credit it and go right.
                    _credit(
                        phi,
                        start,
                        nb,
                        f,
                        merged_z[depth],
                        merged_o[depth],
                        child_sum[depth],
                        repeat[depth],
                        t,
                        w,
                    )
                    below[depth, :, :nb] += child_sum[depth, :, :nb]
                    repeat[depth, :, :nb] = 0.0
                    child = right[n]
                    stage[depth] = 2
                    side = 0.0
                else:
                    saved_z[depth] = fz[f]
                    saved_o[depth, :nb] = fo[f, :nb]
                    saved_level[depth] = flevel[f]
                    flevel[f] = depth
                    for b in range(nb):
                        value = x[start + b, f]
                        if np.isnan(value):
                            goes_left[depth, b] = 1.0 if missing_left[n] != 0 else 0.0
                        else:
                            goes_left[depth, b] = 1.0 if value <= threshold[n] else 0.0
                    child = left[n]
                    stage[depth] = 1
                    side = 1.0
                z_above = saved_z[depth]
                zc = z_above * cover[child] / cover[n]
                merged_z[depth] = zc
                fz[f] = zc
                for b in range(nb):
                    # follows = goes_left for the left child, its opposite for the right one
                    follows = 1.0 - side - goes_left[depth, b] + 2.0 * side * goes_left[depth, b]
                    oc = saved_o[depth, b] * follows
                    merged_o[depth, b] = oc
                    fo[f, b] = oc
                for j in range(m):
                    q0[j] = zc * (1.0 - t[j])
                    q1[j] = zc + (1.0 - zc) * t[j]
                nxt = depth + 1
                if saved_level[depth] < 0:
                    for j in range(m):
                        for b in range(nb):
                            o = merged_o[depth, b]
                            prod[nxt, j, b] = prod[depth, j, b] * (q0[j] + o * (q1[j] - q0[j]))
                elif z_above > 0.0:
                    # Replace the feature's earlier factor by the merged one.
                    for j in range(m):
                        above0 = z_above * (1.0 - t[j])
                        above1 = z_above + (1.0 - z_above) * t[j]
                        r00[j] = q0[j] / above0
                        r10[j] = q0[j] / above1
                        r11[j] = q1[j] / above1
                    for j in range(m):
                        for b in range(nb):
                            oa = saved_o[depth, b]
                            o = merged_o[depth, b]
                            ratio = oa * (r10[j] + o * (r11[j] - r10[j])) + (1.0 - oa) * r00[j]
                            prod[nxt, j, b] = prod[depth, j, b] * ratio
                else:
                    # The earlier factor is 0 at some nodes: rebuild the product from the
                    # features on the path (each at its deepest state).
                    prod[nxt, :, :nb] = 1.0
                    for level in range(depth + 1):
                        g = feature[node_at[level]]
                        if flevel[g] == level:
                            for j in range(m):
                                for b in range(nb):
                                    prod[nxt, j, b] *= fz[g] + (fo[g, b] - fz[g]) * t[j]
                if left[child] < 0:
                    for b in range(nb):
                        leaf[b] = values[child, target[start + b]]
                    for j in range(m):
                        for b in range(nb):
                            child_sum[depth, j, b] = leaf[b] * prod[nxt, j, b]
                    continue
                node_at[nxt] = child
                stage[nxt] = 0
                below[nxt, :, :nb] = 0.0
                repeat[nxt, :, :nb] = 0.0
                depth = nxt


def _credit(
    phi: Any, start: int, nb: int, f: int, z: float, o: Any, sums: Any, repeat: Any, t: Any, w: Any
) -> None:  # pragma: no cover - compiled by numba
    """Add the split's share, ``(o − z) · Σ_k w_k (sums − repeats)(t_k) / q(t_k)``, per row."""
    m = t.shape[0]
    inv0 = np.zeros(m)
    inv1 = np.empty(m)
    for j in range(m):
        if z > 0.0:  # q = z·(1 − t) for a row that does not follow the branch
            inv0[j] = w[j] / (z * (1.0 - t[j]))
        inv1[j] = w[j] / (z + (1.0 - z) * t[j])
    for b in range(nb):
        ob = o[b]
        if ob == z:
            continue
        total = 0.0
        if ob > 0.0:
            for j in range(m):
                total += (sums[j, b] - repeat[j, b]) * inv1[j]
        else:
            for j in range(m):
                total += (sums[j, b] - repeat[j, b]) * inv0[j]
        phi[start + b, f] += (ob - z) * total


#: Rows walked together: long enough for vector instructions, short enough that the
#: per-level state stays in the CPU's cache.
_BLOCK = 64


#: The Python function, kept: ``_credit`` is rebound to its compiled form by :func:`_build`.
_CREDIT = _credit


class _Stump:
    """One split and two leaves: the smallest ensemble, run once to compile the kernel."""

    roots = np.zeros(1, np.int64)
    left = np.array([1, -1, -1], np.int64)
    right = np.array([2, -1, -1], np.int64)
    feature = np.zeros(3, np.int64)
    threshold = np.zeros(3)
    missing_left = np.zeros(3, np.uint8)
    cover = np.array([2.0, 1.0, 1.0])
    values = np.zeros((3, 1))
    max_depth = 1


_STUMP = _Stump()
_compiled: Any = None
_compiling = threading.Lock()


def _compile() -> Any:
    """The compiled kernel: compiled on first use (a few seconds), then loaded from numba's
    cache beside this module. Once per process, whichever thread asks first."""
    global _compiled
    with _compiling:
        if _compiled is None:
            try:
                _compiled = _build(cache=True)
            except Exception:  # the on-disk cache is unusable (read-only, being rewritten…)
                _compiled = _build(cache=False)
    return _compiled


def _build(*, cache: bool) -> Any:
    import numba

    # The kernel calls _credit by its global name: numba binds it when the kernel compiles.
    globals()["_credit"] = numba.njit(cache=cache, nogil=True)(_CREDIT)
    kernel = numba.njit(cache=cache, nogil=True)(_kernel)
    _run(kernel, np.zeros((1, 1)), np.zeros(1, np.int64), _STUMP)  # compile (or load) now
    return kernel


def warm_up() -> None:
    """Compile the kernel now (before a run reads its input), not in the first chunk."""
    _compile()


def tree_shap(
    x: npt.NDArray[np.float64],
    target: npt.NDArray[np.int64],
    ensemble: Any,
) -> npt.NDArray[np.float64]:
    """SHAP values ``(rows, features)`` of output ``target[row]`` of ``ensemble`` (a
    :class:`~modelrouter.explain.tree_models.Ensemble`) for the rows of ``x``.

    Releases the GIL while it runs, so chunks can be explained on several threads.
    """
    return _run(_compile(), x, target, ensemble)


def _run(
    kernel: Any, x: npt.NDArray[np.float64], target: npt.NDArray[np.int64], ensemble: Any
) -> npt.NDArray[np.float64]:
    phi = np.zeros(x.shape, dtype=np.float64)
    t, w = quadrature(ensemble.max_depth)
    kernel(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(target, dtype=np.int64),
        ensemble.roots,
        ensemble.left,
        ensemble.right,
        ensemble.feature,
        ensemble.threshold,
        ensemble.missing_left,
        ensemble.cover,
        ensemble.values,
        t,
        w,
        ensemble.max_depth,
        _BLOCK,
        phi,
    )
    return phi
