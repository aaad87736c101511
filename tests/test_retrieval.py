"""SHREC'17 retrieval metrics and s2cnn-style retrieval lists (holovae/evaluate/retrieval.py)."""
import math
import time

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from holovae.evaluate.retrieval import (METRIC_KEYS, SHREC17_CUTOFF, retrieval_lists_from_predictions,
                                        shrec17_metrics, shrec17_metrics_from_predictions,
                                        shrec17_query_metrics)

L3 = math.log2(3)


# ------------------------------------------------------------------ independent reference

def reference_query_metrics(retrieved, labels, sublabels=None, cutoff=SHREC17_CUTOFF):
    """Plain-Python loops written from the definitions (module docstring): one query at a time,
    no caching, no numpy. Returns ``[(P, R, F1, AP, NDCG)]`` per query."""
    labels = list(labels)
    sublabels = labels if sublabels is None else list(sublabels)
    n = len(labels)

    def grade(q, j):
        if labels[j] != labels[q]:
            return 0
        if sublabels[j] == sublabels[q]:
            return 3
        if sublabels[j] == labels[q]:
            return 2
        return 1

    def dcg(gains):
        return sum(g if r == 1 else g / math.log2(r) for r, g in enumerate(gains, start=1))

    out = []
    for q in range(n):
        lst = [int(j) for j in retrieved[q]]
        if cutoff is not None:
            lst = lst[:cutoff]
        seen, kept = set(), []
        for j in lst:
            if j not in seen:
                seen.add(j)
                kept.append(j)
        if not kept:
            out.append((0.0, 0.0, 0.0, 0.0, 0.0))
            continue
        gains = [grade(q, j) for j in kept]
        n_rel = sum(labels[j] == labels[q] for j in range(n))
        n_true = n_rel if cutoff is None else min(n_rel, cutoff)
        hits, precision_sum = 0, 0.0
        for r, g in enumerate(gains, start=1):
            if g > 0:
                hits += 1
                precision_sum += hits / r
        p, rec = hits / len(kept), hits / n_true
        f1 = 2 * p * rec / (p + rec) if p + rec > 0 else 0.0
        ideal = sorted((grade(q, j) for j in range(n) if labels[j] == labels[q]), reverse=True)
        out.append((p, rec, f1, precision_sum / n_true, dcg(gains) / dcg(ideal)))
    return out


def reference_summary(retrieved, labels, sublabels=None, cutoff=SHREC17_CUTOFF):
    rows = np.array(reference_query_metrics(retrieved, labels, sublabels, cutoff))
    labels = np.asarray(labels)
    cats = sorted(set(labels.tolist()))
    per_cat = np.array([rows[labels == c].mean(axis=0) for c in cats])
    names = ("precision", "recall", "f1", "map", "ndcg")
    res = {f"micro_{k}": v for k, v in zip(names, rows.mean(axis=0))}
    res.update({f"macro_{k}": v for k, v in zip(names, per_cat.mean(axis=0))})
    return res


def s2cnn_reference_lists(predicted, scores):
    """As s2cnn's test.py: (score, zero-padded id) tuples of the same predicted class, sorted in
    reverse (score descending, then id descending)."""
    ids = [f"{j:06d}" for j in range(len(predicted))]
    lists = []
    for i in range(len(predicted)):
        pairs = sorted(((scores[j], ids[j]) for j in range(len(predicted)) if predicted[j] == predicted[i]), reverse=True)
        lists.append([int(x) for _, x in pairs])
    return lists


def random_problem(n, n_cat, seed, n_sub=3):
    """labels and sublabels in one id space: subcategory "<cat>" (no finer subcategory) or
    "<cat>.<k>"."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_cat, n)
    k = rng.integers(-1, n_sub, n)
    lab = np.array([f"c{c}" for c in labels])
    sub = np.array([f"c{c}" if kk < 0 else f"c{c}.{kk}" for c, kk in zip(labels, k)])
    return lab, sub, rng


# ------------------------------------------------------------------ hand-checked values

LABELS = np.array(["a", "a", "a", "b", "b", "c"])
SUBLABELS = np.array(["a1", "a2", "a", "b", "b", "c"])   # object 2: "a" with no finer subcategory


def test_hand_checked_graded_query():
    # Query 0 (a, a1) retrieves [3, 1, 0, 4]:
    #   grades: 3 is b -> 0; 1 is a2 (sibling) -> 1; 0 is a1 -> 3; 4 is b -> 0  =>  [0, 1, 3, 0]
    #   relevant [0, 1, 1, 0], R_q = 3 (objects 0, 1, 2), N = 4
    #   P = 2/4, R = 2/3, F1 = 2 (1/2)(2/3) / (1/2 + 2/3) = 4/7
    #   AP = (1/2 + 2/3) / 3 = 7/18
    #   DCG = 0*1 + 1*1 + 3/log2(3) + 0/log2(4) = 1 + 3/log2(3)
    #   ideal: 0 -> 3, 2 ("a" == query's category) -> 2, 1 -> 1  =>  [3, 2, 1]
    #   IDCG = 3 + 2 + 1/log2(3)
    retrieved = [[3, 1, 0, 4], [1], [2], [3], [4], [5]]
    m = shrec17_query_metrics(retrieved, LABELS, SUBLABELS)
    assert m["precision"][0] == pytest.approx(0.5)
    assert m["recall"][0] == pytest.approx(2 / 3)
    assert m["f1"][0] == pytest.approx(4 / 7)
    assert m["map"][0] == pytest.approx(7 / 18)
    assert m["ndcg"][0] == pytest.approx((1 + 3 / L3) / (5 + 1 / L3))
    # query 5 (c, alone in its category) retrieves itself: everything 1
    assert [m[k][5] for k in ("precision", "recall", "f1", "map", "ndcg")] == pytest.approx([1] * 5)


def test_grade_asymmetry_for_a_query_without_subcategory():
    # Query 2 (a, subcategory "a") retrieves [0, 1, 2]: 0 (a1) and 1 (a2) are not its
    # subcategory and their subcategory is not "a" -> grade 1 each; 2 itself -> 3.
    #   DCG = 1 + 1 + 3/log2(3); ideal [3, 1, 1]: IDCG = 3 + 1 + 1/log2(3)
    # Query 1 (a, a2) retrieves [2, 0, 1]: 2 has subcategory == "a" -> 2; 0 -> 1; 1 -> 3
    #   DCG = 2 + 1 + 3/log2(3); ideal [3, 2, 1]: IDCG = 3 + 2 + 1/log2(3)
    retrieved = [[0], [2, 0, 1], [0, 1, 2], [3], [4], [5]]
    m = shrec17_query_metrics(retrieved, LABELS, SUBLABELS)
    assert m["ndcg"][2] == pytest.approx((2 + 3 / L3) / (4 + 1 / L3))
    assert m["ndcg"][1] == pytest.approx((3 + 3 / L3) / (5 + 1 / L3))
    # category-level metrics ignore the grades: all three relevant, in a list of three
    for q in (1, 2):
        assert (m["precision"][q], m["recall"][q], m["map"][q]) == pytest.approx((1, 1, 1))


def test_without_sublabels_ndcg_is_binary():
    # same list as the first test: relevance [0, 1, 1, 0] with gain 3 each, ideal [3, 3, 3]
    #   NDCG = (1 + 1/log2(3)) / (1 + 1 + 1/log2(3))
    retrieved = [[3, 1, 0, 4], [1], [2], [3], [4], [5]]
    m = shrec17_query_metrics(retrieved, LABELS)
    assert m["ndcg"][0] == pytest.approx((1 + 1 / L3) / (2 + 1 / L3))
    assert m["map"][0] == pytest.approx(7 / 18)


def test_micro_differs_from_macro():
    # labels [0, 0, 1]; every query retrieves [0, 1, 2] (one predicted class)
    #   q0, q1 (category 0, R=2): relevant [1, 1, 0] -> P 2/3, R 1, F1 0.8, AP 1, NDCG (3+3)/(3+3) = 1
    #   q2 (category 1, R=1):     relevant [0, 0, 1] -> P 1/3, R 1, F1 0.5, AP 1/3,
    #                             NDCG (3/log2(3)) / 3 = 1/log2(3)
    #   micro: P 5/9, R 1, F1 0.7, mAP 7/9, NDCG (2 + 1/log2 3)/3
    #   macro: P 1/2, R 1, F1 0.65, mAP 2/3, NDCG (1 + 1/log2 3)/2
    res = shrec17_metrics([np.array([0, 1, 2])] * 3, [0, 0, 1])
    expected = {
        "micro_precision": 5 / 9, "micro_recall": 1.0, "micro_f1": 0.7, "micro_map": 7 / 9,
        "micro_ndcg": (2 + 1 / L3) / 3,
        "macro_precision": 0.5, "macro_recall": 1.0, "macro_f1": 0.65, "macro_map": 2 / 3,
        "macro_ndcg": (1 + 1 / L3) / 2,
    }
    assert list(res) == list(METRIC_KEYS)
    assert res == pytest.approx(expected)
    assert all(isinstance(v, float) for v in res.values())


def test_cutoff_then_duplicates():
    # labels [0, 0, 0, 1]; query 0 retrieves [3, 0, 0, 1, 2] with cutoff 4:
    #   cut -> [3, 0, 0, 1]; de-duplicated -> [3, 0, 1] (N = 3): relevant [0, 1, 1]
    #   R_q = 3, R* = min(3, 4) = 3: P = 2/3, R = 2/3, F1 = 2/3, AP = (1/2 + 2/3)/3 = 7/18
    #   NDCG (binary, gain 3): (0 + 3 + 3/log2 3) / (3 + 3 + 3/log2 3)
    retrieved = [[3, 0, 0, 1, 2], [1], [2], [3]]
    m = shrec17_query_metrics(retrieved, [0, 0, 0, 1], cutoff=4)
    assert (m["precision"][0], m["recall"][0], m["f1"][0]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert m["map"][0] == pytest.approx(7 / 18)
    assert m["ndcg"][0] == pytest.approx((1 + 1 / L3) / (2 + 1 / L3))
    # cutoff 2 < R_q = 3: list [3, 0], R* = 2: P = 1/2, R = 1/2, AP = (1/2)/2
    #   NDCG: DCG [0, 3] = 3; ideal over all 3 members [3, 3, 3] = 6 + 3/log2 3
    m = shrec17_query_metrics(retrieved, [0, 0, 0, 1], cutoff=2)
    assert (m["precision"][0], m["recall"][0], m["map"][0]) == pytest.approx((0.5, 0.5, 0.25))
    assert m["ndcg"][0] == pytest.approx(3 / (6 + 3 / L3))


def test_empty_list_scores_zero():
    m = shrec17_query_metrics([[], [1]], [0, 0])
    assert [m[k][0] for k in ("precision", "recall", "f1", "map", "ndcg")] == [0.0] * 5
    assert m["recall"][1] == pytest.approx(0.5)


# ------------------------------------------------------------------ s2cnn retrieval lists

def test_lists_from_predictions_hand_checked():
    # class 0: objects 0, 1, 4 with scores .9, .5, .9 -> tie 0/4 broken by larger id: [4, 0, 1]
    # class 1: objects 2, 3 with equal scores -> [3, 2]
    lists = retrieval_lists_from_predictions([0, 0, 1, 1, 0], [0.9, 0.5, 0.7, 0.7, 0.9])
    assert [lst.tolist() for lst in lists] == [[4, 0, 1], [4, 0, 1], [3, 2], [3, 2], [4, 0, 1]]
    assert lists[0] is lists[1] is lists[4]           # shared per predicted class ...
    assert not lists[0].flags.writeable               # ... hence read-only
    assert lists[0].dtype == np.int64
    cut = retrieval_lists_from_predictions([0, 0, 1, 1, 0], [0.9, 0.5, 0.7, 0.7, 0.9], max_retrieved=2)
    assert [lst.tolist() for lst in cut] == [[4, 0], [4, 0], [3, 2], [3, 2], [4, 0]]


@pytest.mark.parametrize("seed", range(3))
def test_lists_match_s2cnn_procedure(seed):
    rng = np.random.default_rng(seed)
    n = 200
    predicted = rng.integers(0, 7, n)
    scores = np.round(rng.standard_normal(n), 1)      # many ties
    lists = retrieval_lists_from_predictions(predicted, scores)
    assert [lst.tolist() for lst in lists] == s2cnn_reference_lists(predicted.tolist(), scores.tolist())
    assert all(i in lst for i, lst in enumerate(lists))   # every query retrieves itself


# ------------------------------------------------------------------ perfect classifier

@pytest.mark.parametrize("cutoff", [None, 1000, 3])
def test_perfect_classifier_scores_one(cutoff):
    lab, sub, rng = random_problem(60, 4, seed=1)
    scores = rng.standard_normal(60)
    res = shrec17_metrics_from_predictions(lab, lab, scores, cutoff=cutoff)
    if cutoff == 3:
        # lists cut below the category sizes: P, R, F1, mAP normalised by min(R_q, cutoff) stay 1,
        # NDCG compares 3 hits with the ideal over the whole category
        assert res["micro_ndcg"] < 1
        res = {k: v for k, v in res.items() if not k.endswith("ndcg")}
    assert res == pytest.approx({k: 1.0 for k in res})
    graded = shrec17_metrics_from_predictions(lab, lab, scores, sub, cutoff=None)
    # category metrics are perfect; NDCG < 1 because the score order ignores subcategories
    assert {k: graded[k] for k in graded if not k.endswith("ndcg")} == pytest.approx(
        {k: 1.0 for k in graded if not k.endswith("ndcg")})
    assert 0 < graded["micro_ndcg"] < 1


def test_perfect_graded_ranking_scores_one():
    # lists holding the category ordered by grade (3 first, then 2, then 1): NDCG exactly 1
    lab, sub, _ = random_problem(40, 3, seed=2)
    retrieved = []
    for q in range(40):
        members = np.flatnonzero(lab == lab[q])
        grade = np.where(sub[members] == sub[q], 3, np.where(sub[members] == lab[q], 2, 1))
        retrieved.append(members[np.argsort(-grade, kind="stable")])
    assert shrec17_metrics(retrieved, lab, sub) == pytest.approx({k: 1.0 for k in METRIC_KEYS})


# ------------------------------------------------------------------ independent implementations

@pytest.mark.parametrize("seed", range(4))
def test_ap_matches_sklearn_on_full_rankings(seed):
    # a full ranking of all N objects, no cutoff: AP = sum of precisions at the relevant ranks /
    # number of relevant objects, which is sklearn's average_precision_score (no ties)
    rng = np.random.default_rng(seed)
    n = 80
    labels = rng.integers(0, 5, n)
    retrieved = [rng.permutation(n) for _ in range(n)]
    m = shrec17_query_metrics(retrieved, labels, cutoff=None)
    for q in range(n):
        y_score = np.empty(n)
        y_score[retrieved[q]] = np.arange(n, 0, -1)      # rank 1 -> highest score
        expected = average_precision_score(labels == labels[q], y_score)
        assert m["map"][q] == pytest.approx(expected, rel=1e-12)
        assert m["recall"][q] == pytest.approx(1.0)
        assert m["precision"][q] == pytest.approx(np.mean(labels == labels[q]))


@pytest.mark.parametrize("seed,cutoff", [(0, None), (1, 1000), (2, 7), (3, 25)])
def test_matches_reference_on_random_lists(seed, cutoff):
    # arbitrary lists: variable length (some empty), duplicates, foreign categories, cutoffs
    lab, sub, rng = random_problem(120, 5, seed)
    retrieved = [rng.integers(0, 120, rng.integers(0, 40)) for _ in range(120)]
    got = shrec17_query_metrics(retrieved, lab, sub, cutoff=cutoff)
    ref = np.array(reference_query_metrics(retrieved, lab, sub, cutoff))
    for col, name in enumerate(("precision", "recall", "f1", "map", "ndcg")):
        np.testing.assert_allclose(got[name], ref[:, col], rtol=1e-12, atol=1e-15)
    assert shrec17_metrics(retrieved, lab, sub, cutoff) == pytest.approx(reference_summary(retrieved, lab, sub, cutoff))


@pytest.mark.parametrize("seed", range(3))
def test_from_predictions_matches_reference(seed):
    # a noisy classifier (70 % right) with s2cnn lists, graded and binary, short cutoff included
    lab, sub, rng = random_problem(150, 6, seed)
    predicted = np.where(rng.random(150) < 0.7, lab, np.array([f"c{c}" for c in rng.integers(0, 6, 150)]))
    scores = rng.standard_normal(150)
    lists = s2cnn_reference_lists(predicted.tolist(), scores.tolist())
    for sublabels in (sub, None):
        for cutoff in (1000, 10):
            got = shrec17_metrics_from_predictions(lab, predicted, scores, sublabels, cutoff=cutoff)
            assert got == pytest.approx(reference_summary(lists, lab, sublabels, cutoff), rel=1e-12)


def test_integer_and_string_labels_agree():
    lab, sub, rng = random_problem(90, 4, seed=5)
    _, codes = np.unique(np.concatenate([lab, sub]), return_inverse=True)
    lab_i, sub_i = codes[:90], codes[90:]
    predicted = rng.integers(0, 4, 90)
    scores = rng.standard_normal(90)
    a = shrec17_metrics_from_predictions(lab, predicted, scores, sub)
    b = shrec17_metrics_from_predictions(lab_i, predicted, scores, sub_i)
    assert a == pytest.approx(b, rel=1e-14)


def test_array_of_lists_input():
    lab, sub, rng = random_problem(30, 3, seed=6)
    retrieved = np.stack([rng.permutation(30)[:10] for _ in range(30)])   # [N, K], as from kNN
    assert shrec17_metrics(retrieved, lab, sub) == pytest.approx(reference_summary(list(retrieved), lab, sub))


def test_scales_to_shrec17_sizes():
    # ~10k test objects over 55 classes: s2cnn lists are ~180 long (no O(N^2) Python work)
    lab, sub, rng = random_problem(10_000, 55, seed=7)
    predicted = np.where(rng.random(10_000) < 0.8, lab, np.array([f"c{c}" for c in rng.integers(0, 55, 10_000)]))
    t0 = time.perf_counter()
    res = shrec17_metrics_from_predictions(lab, predicted, rng.standard_normal(10_000), sub)
    assert time.perf_counter() - t0 < 20
    assert all(0 <= v <= 1 for v in res.values())


# ------------------------------------------------------------------ errors

def test_errors():
    with pytest.raises(ValueError, match="empty"):
        shrec17_metrics([], [])
    with pytest.raises(ValueError, match="one list per query"):
        shrec17_metrics([[0], [1]], [0, 0, 1])
    with pytest.raises(ValueError, match="sublabels differ in length"):
        shrec17_metrics([[0], [1]], [0, 0], [0])
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        shrec17_metrics([[0, 2], [1]], [0, 0])
    with pytest.raises(ValueError, match="outside"):
        shrec17_metrics([[-1], [1]], [0, 0])
    with pytest.raises(ValueError, match="integer indices"):
        shrec17_metrics([[0.0], [1]], [0, 0])
    with pytest.raises(ValueError, match="one-dimensional"):
        shrec17_metrics([[[0]], [1]], [0, 0])
    with pytest.raises(ValueError, match="cutoff"):
        shrec17_metrics([[0], [1]], [0, 0], cutoff=0)
    with pytest.raises(ValueError, match="one-dimensional"):
        shrec17_metrics([[0]], [[0]])
    with pytest.raises(ValueError, match="differ in length"):
        retrieval_lists_from_predictions([0, 1], [0.5])
    with pytest.raises(ValueError, match="empty"):
        retrieval_lists_from_predictions([], [])
    with pytest.raises(ValueError, match="finite"):
        retrieval_lists_from_predictions([0, 1], [0.5, np.nan])
    with pytest.raises(ValueError, match="max_retrieved"):
        retrieval_lists_from_predictions([0, 1], [0.5, 0.1], max_retrieved=0)
    with pytest.raises(ValueError, match="labels and predicted differ"):
        shrec17_metrics_from_predictions([0, 1, 1], [0, 1], [0.5, 0.1])
