"""Seeded subsets of a labelled dataset: class-balanced training sets of a given size (the
amino-acid training-size ablation, Table S5) and plain random subsets (a fixed test set)."""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("holovae")

__all__ = ["balanced_indices", "random_indices"]


def balanced_indices(labels, n: int, seed: int) -> np.ndarray:
    """``n`` row indices with the classes of ``labels [N]`` as equally represented as possible.

    Each class gets ``n // n_classes`` rows (one more for some, in a seeded order); a class with
    too few rows gives all it has and its shortfall is shared out equally among the others
    (small pools lack rare residues such as Trp or Cys), with a warning. Returns sorted int64
    indices ``[n]``. ValueError when ``n`` exceeds ``N``.
    """
    labels = np.asarray(labels)
    if n > len(labels):
        raise ValueError(f"asked for {n} samples from a pool of {len(labels)}")
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    rows = {c: np.flatnonzero(labels == c) for c in classes.tolist()}
    quota, left, open_ = {}, n, list(rows)
    # water-filling: the smallest classes take all they have while that is below the equal share
    for c in sorted(open_, key=lambda c: len(rows[c])):
        share = left // len(open_)
        if len(rows[c]) <= share:
            quota[c] = len(rows[c])
            left -= quota[c]
            open_.remove(c)
    for k, c in enumerate(open_):   # open_ keeps the seeded class order
        quota[c] = left // len(open_) + (k < left % len(open_))
    short = {c: (len(r), n // len(classes)) for c, r in rows.items() if len(r) < n // len(classes)}
    if short:
        log.warning("balanced subset of %d: classes %s have fewer rows than an equal share (have, share); "
                    "the others give more", n, short)
    picked = np.concatenate([rng.choice(rows[c], size=quota[c], replace=False) for c in rows])
    return np.sort(picked).astype(np.int64)


def random_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """``min(n, n_total)`` sorted row indices drawn uniformly without replacement."""
    if n >= n_total:
        return np.arange(n_total, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False)).astype(np.int64)
