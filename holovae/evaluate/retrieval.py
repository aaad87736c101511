"""SHREC'17 shape-retrieval metrics ("Large-Scale 3D Shape Retrieval from ShapeNet Core55", Savva
et al. 2017), computed as the challenge's official evaluator (``evaluator.zip`` from
shapenet.cs.stanford.edu/shrec17: ``Evaluator.js`` and ``Metrics.js``, run with node.js) computes
them, from retrieval lists built as the Spherical CNNs code (s2cnn, ``examples/shrec17/test.py``)
built them from a classifier's outputs.

Retrieval lists (s2cnn). Every object of the evaluated split is a query. Query ``i``'s list holds
every object ``j`` whose predicted class equals that of ``i`` (``i`` itself included), sorted by
``j``'s own score for its predicted class (the summed logits), highest first; ties are broken by
the larger object id first. s2cnn writes the whole list, without truncation.

Evaluation (official evaluator), per query ``q`` of category ``c`` and subcategory ``s``:

* its list is cut to the first ``cutoff = 1000`` entries, then repeated entries are dropped
  (first occurrence kept);
* each retrieved object ``j`` gets a grade: 0 if its category differs from ``c``; else 3 if its
  subcategory equals ``s``; else 2 if its subcategory equals ``c`` (a model with no finer
  subcategory carries its category id as subcategory); else 1. P, R, F1 and AP count any nonzero
  grade as relevant; only NDCG uses the grades;
* ``R_q`` = number of objects of category ``c`` in the split (``q`` included); the
  denominators below use ``R* = min(R_q, cutoff)``;
* ``N`` = length of the (cut, de-duplicated) list: P@N = hits / N, R@N = hits / R*,
  F1@N = 2 P R / (P + R) (0 when P + R = 0), all at the end of the list;
* AP = (sum of the precision at each relevant position) / R*;
* NDCG = DCG(grades) / IDCG with DCG(x) = x_1 + sum_{r >= 2} x_r / log2(r) (rank ``r``
  1-based: ranks 1 and 2 both have weight 1) over the (cut) list, and IDCG the DCG of the grades
  of all ``R_q`` objects of category ``c``, sorted in decreasing order.

Micro averages are means over all queries; macro averages are means over categories (of the
query) of the per-category means. F1@N is averaged per query, not recomputed from averaged P and R.

Not confirmed: the release's ``Metrics.js`` could only be read in part (its DCG, IDCG and NDCG
functions; ``Evaluator.js`` in full). The recall and AP denominator ``min(R_q, cutoff)`` follows
the evaluator's older version (its "max possible true") and ``Evaluator.js`` passing the cutoff
to the metrics; the ideal list over all ``R_q`` objects follows its change log (2017-02-23: "mAP
and NDCG need to be divided by total number of relevant models in ground truth set"). If the
evaluator instead passed the cutoff as NDCG depth, its IDCG would sort the first ``cutoff``
objects of the category in split order. All readings agree whenever no category of the split has
more than ``cutoff`` objects, or with ``cutoff=None``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "SHREC17_CUTOFF", "METRIC_KEYS", "retrieval_lists_from_predictions", "shrec17_query_metrics",
    "shrec17_metrics", "shrec17_metrics_from_predictions",
]

SHREC17_CUTOFF = 1000   # the evaluator only reads the first 1000 entries of each list

_PER_QUERY = ("precision", "recall", "f1", "map", "ndcg")
METRIC_KEYS = tuple(f"{avg}_{m}" for avg in ("micro", "macro") for m in _PER_QUERY)


def _vector(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty: there is nothing to evaluate")
    return a


def _check_cutoff(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def retrieval_lists_from_predictions(predicted, scores, max_retrieved: int | None = None) -> list[np.ndarray]:
    """Retrieval lists as s2cnn built them from a classifier's outputs.

    ``predicted [N]``: predicted class of each object (any comparable values); ``scores [N]``
    (finite floats): each object's score for its *own* predicted class (s2cnn: the logit of the
    argmax class, summed over augmentations). Objects are identified by their index, which plays
    the role of the object id (s2cnn's ids are the sorted file names).

    Returns ``N`` int64 arrays: entry ``i`` lists the indices ``j`` with
    ``predicted[j] == predicted[i]`` (``i`` included), by decreasing ``scores[j]``, ties by
    decreasing ``j``, cut to ``max_retrieved`` entries (default None: the full list, as s2cnn
    wrote it; the evaluator reads at most 1000, see :func:`shrec17_metrics`). Queries with the same
    predicted class share one read-only array."""
    predicted = _vector(predicted, "predicted")
    scores = _vector(scores, "scores")
    if len(predicted) != len(scores):
        raise ValueError(f"predicted and scores differ in length: {len(predicted)} != {len(scores)}")
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"scores must be numeric, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (no NaN or inf)")
    max_retrieved = _check_cutoff(max_retrieved, "max_retrieved")

    classes, inverse = np.unique(predicted, return_inverse=True)
    inverse = inverse.reshape(-1)
    index = np.arange(len(predicted))
    # group by class, then highest score first, then highest index first (lexsort: last key first)
    order = np.lexsort((-index, -scores, inverse))
    bounds = np.searchsorted(inverse[order], np.arange(len(classes) + 1))
    lists = []
    for c in range(len(classes)):
        members = order[bounds[c]:bounds[c + 1]][:max_retrieved].astype(np.int64)
        members.flags.writeable = False
        lists.append(members)
    return [lists[c] for c in inverse]


def _discounts(length: int) -> np.ndarray:
    """``[length]`` DCG weights of ranks 1..length: 1, 1, 1/log2(3), 1/log2(4), ..."""
    return 1.0 / np.log2(np.maximum(np.arange(1, length + 1), 2))


def shrec17_query_metrics(retrieved, labels, sublabels=None, cutoff: int | None = SHREC17_CUTOFF) -> dict[str, np.ndarray]:
    """Per-query SHREC'17 metrics (see the module docstring for the definitions).

    ``retrieved``: ``N`` integer arrays (or an ``[N, K]`` array), entry ``i`` the ranked indices
    retrieved for query ``i``, e.g. from :func:`retrieval_lists_from_predictions`; indices refer
    to the same ``N`` objects, which form the whole split. ``labels [N]``: category of each
    object. ``sublabels [N]``: subcategory, in the *same* id space as ``labels`` (SHREC'17's
    ``subSynsetId`` equals ``synsetId`` for models with no finer subcategory); None gives every
    object its category as subcategory, so every same-category hit has grade 3 and NDCG becomes
    binary-relevance NDCG with the same discounts. ``cutoff``: entries read from each list
    (None: all).

    Returns ``{"precision", "recall", "f1", "map", "ndcg"}``, each ``[N]`` float64 (``"map"``
    holds each query's AP). A query with an empty list scores 0 everywhere (the JS evaluator would
    produce NaN there)."""
    labels = _vector(labels, "labels")
    n = len(labels)
    if isinstance(retrieved, np.ndarray):
        if retrieved.ndim != 2:
            raise ValueError(f"retrieved given as an array must be [N, K], got shape {retrieved.shape}")
        retrieved = list(retrieved)
    if len(retrieved) != n:
        raise ValueError(f"retrieved has {len(retrieved)} lists but there are {n} labels (one list per query)")
    cutoff = _check_cutoff(cutoff, "cutoff")

    if sublabels is None:
        category = np.unique(labels, return_inverse=True)[1].reshape(-1)
        sub = category
    else:
        sublabels = _vector(sublabels, "sublabels")
        if len(sublabels) != n:
            raise ValueError(f"labels and sublabels differ in length: {n} != {len(sublabels)}")
        # one shared vocabulary: a subcategory is compared with categories too
        _, codes = np.unique(np.concatenate([labels, sublabels]), return_inverse=True)
        codes = codes.reshape(-1)
        category, sub = codes[:n], codes[n:]

    # members of each category in index (split) order, for R_q and the ideal list
    by_category = np.argsort(category, kind="stable")
    starts = np.searchsorted(category[by_category], np.arange(category.max() + 2))
    counts = np.diff(starts)

    lists = []
    for i, lst in enumerate(retrieved):
        lst = np.asarray(lst)
        if lst.ndim != 1:
            raise ValueError(f"retrieved[{i}] must be one-dimensional, got shape {lst.shape}")
        if lst.size and lst.dtype.kind not in "iu":
            raise ValueError(f"retrieved[{i}] must hold integer indices, got dtype {lst.dtype}")
        if lst.size and (lst.min() < 0 or lst.max() >= n):
            raise ValueError(f"retrieved[{i}] holds indices outside [0, {n})")
        lists.append(lst)
    longest = max(len(lst) for lst in lists)
    discount = _discounts(max(longest if cutoff is None else min(longest, cutoff), int(counts.max())))

    idcg_cache: dict[tuple[int, int], float] = {}

    def idcg(c: int, s: int) -> float:
        key = (c, s)
        if key not in idcg_cache:
            ideal = by_category[starts[c]:starts[c + 1]]
            grades = np.where(sub[ideal] == s, 3.0, np.where(sub[ideal] == c, 2.0, 1.0))
            grades = np.sort(grades)[::-1]
            idcg_cache[key] = float(grades @ discount[:len(grades)])
        return idcg_cache[key]

    out = {k: np.zeros(n) for k in _PER_QUERY}
    # queries sharing one list object and one (category, subcategory) score alike (s2cnn lists
    # are shared by all queries of a predicted class)
    cache: dict[tuple[int, int, int], tuple[float, ...]] = {}
    for q, (source, lst) in enumerate(zip(retrieved, lists)):
        c, s = int(category[q]), int(sub[q])
        key = (id(source), c, s)
        if key not in cache:
            cache[key] = _one_query(lst, c, s, category, sub, counts[c], cutoff, discount, idcg)
        for name, value in zip(_PER_QUERY, cache[key]):
            out[name][q] = value
    return out


def _one_query(lst, c, s, category, sub, n_category, cutoff, discount, idcg) -> tuple[float, ...]:
    lst = lst[:cutoff]
    _, first = np.unique(lst, return_index=True)
    if len(first) < len(lst):
        lst = lst[np.sort(first)]
    if len(lst) == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    relevant = category[lst] == c
    grades = np.where(relevant, np.where(sub[lst] == s, 3.0, np.where(sub[lst] == c, 2.0, 1.0)), 0.0)
    hits = np.cumsum(relevant)
    n_true = n_category if cutoff is None else min(n_category, cutoff)
    precision = hits[-1] / len(lst)
    recall = hits[-1] / n_true
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    ap = float(np.sum(hits[relevant] / (np.flatnonzero(relevant) + 1.0))) / n_true
    ndcg = float(grades @ discount[:len(lst)]) / idcg(c, s)
    return float(precision), float(recall), float(f1), ap, ndcg


def shrec17_metrics(retrieved, labels, sublabels=None, cutoff: int | None = SHREC17_CUTOFF) -> dict[str, float]:
    """SHREC'17 summary: P@N, R@N, F1@N, mAP and NDCG, micro- and macro-averaged.

    Arguments as :func:`shrec17_query_metrics` (``sublabels=None``: NDCG with binary relevance).
    Returns floats under :data:`METRIC_KEYS` (``micro_precision``, ..., ``macro_ndcg``): micro =
    mean over the ``N`` queries, macro = mean over the categories of ``labels`` of the mean over
    that category's queries."""
    per_query = shrec17_query_metrics(retrieved, labels, sublabels, cutoff)
    _, category = np.unique(np.asarray(labels), return_inverse=True)
    category = category.reshape(-1)
    size = np.bincount(category)
    result = {}
    for name in _PER_QUERY:
        values = per_query[name]
        result[f"micro_{name}"] = float(values.mean())
        result[f"macro_{name}"] = float(np.mean(np.bincount(category, weights=values) / size))
    return {k: result[k] for k in METRIC_KEYS}


def shrec17_metrics_from_predictions(labels, predicted, scores, sublabels=None, *, max_retrieved: int | None = None,
                                     cutoff: int | None = SHREC17_CUTOFF) -> dict[str, float]:
    """:func:`retrieval_lists_from_predictions` then :func:`shrec17_metrics`: the numbers s2cnn's
    ``test.py`` reported through the official evaluator. ``labels``, ``predicted``, ``scores`` and
    ``sublabels`` are ``[N]`` over the objects of one split, in id order."""
    labels = _vector(labels, "labels")
    predicted = _vector(predicted, "predicted")
    if len(labels) != len(predicted):
        raise ValueError(f"labels and predicted differ in length: {len(labels)} != {len(predicted)}")
    retrieved = retrieval_lists_from_predictions(predicted, scores, max_retrieved)
    return shrec17_metrics(retrieved, labels, sublabels, cutoff)
