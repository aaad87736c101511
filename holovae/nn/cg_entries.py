"""Sparse form of a channel-wise CG tensor square: the nonzero CG entries as index lists.

For features laid out component-major, ``X [D_in, N]`` (rows = (l, m) of the kept input
degrees, columns = batch x channel), the product is

    Y[r, n] = sum_e val[e] * X[i[e], n] * X[j[e], n]        (entries e with row[e] == r).

Because both factors are the same tensor, entries (i, j) and (j, i) are merged into i <= j;
for (l, l) -> odd l3 paths the merged coefficients cancel exactly (the CG tensor is
antisymmetric there), so those output rows are identically zero and carry no entries.
The dense CG blocks of the authors' algorithm hold ~10x more multiply-adds than these entries.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..so3.harmonics import clebsch_gordan

Triple = tuple[int, int, int]


@dataclass
class CGEntries:
    """Index lists of the sparse CG square (all 1-D, length E, sorted by ``row``)."""

    row: torch.Tensor   # int64 [E]
    i: torch.Tensor     # int64 [E]
    j: torch.Tensor     # int64 [E]
    val: torch.Tensor   # float64 [E]
    n_in: int
    n_out: int


def degree_offsets(degrees: tuple[int, ...]) -> dict[int, int]:
    """Row offset of each degree in the component-major input ``X``."""
    offsets, o = {}, 0
    for l in degrees:
        offsets[l] = o
        o += 2 * l + 1
    return offsets


@functools.lru_cache(maxsize=None)
def cg_square_entries(degrees_in: tuple[int, ...], paths: tuple[Triple, ...], tol: float = 1e-12) -> CGEntries:
    """Entries of ``Y`` whose rows are ordered (path, m3) with paths in the given order (cached)."""
    offsets = degree_offsets(degrees_in)
    rows, ii, jj, vals = [], [], [], []
    row0 = 0
    for (l1, l2, l3) in paths:
        cg = clebsch_gordan(l1, l2, l3)
        m1, m2, m3 = torch.nonzero(cg.abs() > tol, as_tuple=True)
        a, b = offsets[l1] + m1, offsets[l2] + m2
        rows.append(row0 + m3)
        ii.append(torch.minimum(a, b))
        jj.append(torch.maximum(a, b))
        vals.append(cg[m1, m2, m3])
        row0 += 2 * l3 + 1
    n_in = sum(2 * l + 1 for l in degrees_in)
    # merge (i, j) with (j, i): one key per (row, i, j), sorted by row then i then j
    key = (torch.cat(rows) * n_in + torch.cat(ii)) * n_in + torch.cat(jj)
    uniq, inv = torch.unique(key, return_inverse=True)
    val = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, torch.cat(vals))
    keep = val.abs() > tol
    uniq, val = uniq[keep], val[keep]
    return CGEntries(row=uniq // (n_in * n_in), i=(uniq // n_in) % n_in, j=uniq % n_in,
                     val=val, n_in=n_in, n_out=row0)
