"""Which (l1, l2) -> l3 paths a CG tensor product keeps.

The paper's "efficient" tensor product (ETP, its appendix; the authors' ``ls_nonlin_rule:
efficient``): for every output degree l3, take the graph whose nodes are the input degrees and
whose edges are the triangle-allowed pairs l1 != l2, weighted by the cost (2 l1 + 1)(2 l2 + 1);
keep a minimum spanning tree (forest) of it, so every input degree still talks to every other
one at the lowest cost; add all (l, l) -> l3 pairs.
This keeps 191 triples at L = 10 -> 10 and 73 at L = 6 -> 6 (the full product has 381 / 106).
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

Triple = tuple[int, int, int]


def path_allowed(l1: int, l2: int, l3: int) -> bool:
    """Whether degrees l1 and l2 couple to l3 (the triangle rule ``|l1 - l2| <= l3 <= l1 + l2``)."""
    return abs(l1 - l2) <= l3 <= l1 + l2


@functools.lru_cache(maxsize=None)
def efficient_paths(degrees_in: tuple[int, ...], lmax_out: int) -> tuple[Triple, ...]:
    """MST pairs per output degree plus all (l, l) pairs; triples ``(l1, l2, l3)`` with l1 <= l2.

    ``degrees_in`` are the degrees present in the input (sorted). Triples are ordered by l3,
    then l1, then l2 — the order of the output channels of the tensor product.
    """
    degs = sorted(degrees_in)
    keep: set[Triple] = set()
    for l3 in range(lmax_out + 1):
        for l in degs:
            if path_allowed(l, l, l3):
                keep.add((l, l, l3))
        n = len(degs)
        w = np.zeros((n, n))
        for a in range(n):
            for b in range(a + 1, n):
                if path_allowed(degs[a], degs[b], l3):
                    w[a, b] = (2 * degs[a] + 1) * (2 * degs[b] + 1)
        mst = minimum_spanning_tree(csr_matrix(w)).tocoo()
        for a, b in zip(mst.row, mst.col):
            l1, l2 = sorted((degs[a], degs[b]))
            keep.add((l1, l2, l3))
    return tuple(sorted(keep, key=lambda t: (t[2], t[0], t[1])))


@functools.lru_cache(maxsize=None)
def full_paths(degrees_in: tuple[int, ...], lmax_out: int) -> tuple[Triple, ...]:
    """Every triangle-allowed ``(l1, l2, l3)`` with l1 <= l2 and l3 <= lmax_out."""
    degs = sorted(degrees_in)
    keep = [(l1, l2, l3) for l3 in range(lmax_out + 1) for i, l1 in enumerate(degs)
            for l2 in degs[i:] if path_allowed(l1, l2, l3)]
    return tuple(sorted(keep, key=lambda t: (t[2], t[0], t[1])))


def paths_per_degree(paths: tuple[Triple, ...]) -> dict[int, list[Triple]]:
    """Group triples by output degree (order preserved)."""
    out: dict[int, list[Triple]] = {}
    for t in paths:
        out.setdefault(t[2], []).append(t)
    return out
