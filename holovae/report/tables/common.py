"""What the tables of several datasets share: column groups, caption sentences, pairing our
evals with the paper's rows, and the columns every "ours beside the paper's" table fills."""
from __future__ import annotations

from typing import Callable

from .registry import TableSpec, register_table

__all__ = ["COMMON", "CLUSTER", "EQUIV", "TP_LABEL", "OURS_VS_PAPER", "COSINE_NOTE", "UNITS_LOST", "EQUIV_CAPTION",
           "EQUIV_EXTRA", "EQUIV_LABELS", "match", "cell", "ratio", "is_main", "ours_vs_paper", "add_equivariance",
           "add_cosines", "paired", "register_equivariance_table"]

COMMON = ("variant", "dataset", "split", "model", "z", "decoder", "tp")
CLUSTER = ("purity", "v_measure", "lc_acc", "knn_acc")
EQUIV = ("equiv_error_mean", "equiv_error_std", "abs_value_mean", "abs_value_std")
TP_LABEL = {"efficient": "ETP", "full": "Full-TP"}  # our eval's tp -> the paper's tp_type

OURS_VS_PAPER = ("Columns `<metric>` are from our run, `<metric>_paper` from the paper (Visani et al., "
                 "Holographic-(V)AE); an empty paper cell means the paper has no matching row. Where the run "
                 "follows the paper's text, the authors' code, or neither: docs/fidelity.md.")
COSINE_NOTE = ("`cosine` is the degree-weighted cosine loss the paper reports (the authors' definition); "
               "`cosine_plain` is the unweighted cosine loss (ours only).")
UNITS_LOST = "paper (units lost in transcription; compare orders of magnitude)"
# Table S9 (equivariance error): what our columns are, the eval keys read beyond EQUIV, the † headers
EQUIV_CAPTION = ("Ours, in scientific notation: mean and std over test samples and random rotations R of "
                 "mean_i |D(R) f(x) - f(D(R) x)|_i (equiv_error) and of mean_i |D(R) f(x)|_i (abs_value); "
                 "equiv_relative_error_max is the largest ||D(R) f(x) - f(D(R) x)|| / ||D(R) f(x)||, "
                 "latent_invariance_error the largest relative change of z under rotation. Columns marked † are "
                 f"the {UNITS_LOST}.")
EQUIV_EXTRA = ("equiv_relative_error_max", "latent_invariance_error")
EQUIV_LABELS = {f"{m}_paper": f"{m}_paper †" for m in EQUIV}


def match(ours, paper, our_key, paper_key):
    """Pair each eval with the paper row of equal key.

    Pairs come in the paper's row order (so tables read like the paper), then unmatched
    evals in input order; returns ``(pairs, paper rows no eval matched)``.
    """
    by_key: dict = {}
    for p in paper:
        by_key.setdefault(paper_key(p), p)
    order = {k: i for i, k in enumerate(by_key)}
    pairs = sorted(((e, by_key.get(our_key(e))) for e in ours),
                   key=lambda ep: order.get(our_key(ep[0]), len(order)))
    ran = {our_key(e) for e in ours}
    return pairs, [p for k, p in by_key.items() if k not in ran]


def cell(prow, col):
    """The paper's value of column ``col`` in its row ``prow`` (None without a row)."""
    return None if prow is None else prow.get(col)


def ratio(num, den):
    """``num / den``, None when either is missing (or ``den`` is 0)."""
    return None if num is None or not den else num / den


def is_main(ev) -> bool:
    """The paper's main models (Table 1): equivariant decoder, efficient tensor product."""
    return ev["decoder"] == "equivariant" and ev["tp"] == "efficient"


def ours_vs_paper(row, ev, prow, metrics):
    """Fill ``row`` with each of ``metrics``: ours (from ``ev``) and the paper's (``<m>_paper``)."""
    for m in metrics:
        row[m], row[f"{m}_paper"] = ev[m], cell(prow, m)


def add_equivariance(row, ev, prow):
    """The equivariance-error columns of the Table S9 variants (ours beside the paper's)."""
    ours_vs_paper(row, ev, prow, EQUIV)
    row["equiv_relative_error_max"] = ev["equiv_relative_error_max"]
    row["equiv_relative_error_mean"] = ev.get("equiv_relative_error_mean")
    row["latent_invariance_error"] = ev["latent_invariance_error"]


def add_cosines(row, ev, prow):
    """The cosine columns: our weighted cosine (the paper's definition) beside the paper's, and our plain one."""
    row["cosine"], row["cosine_paper"], row["cosine_plain"] = ev["cosine_weighted"], cell(prow, "cosine"), ev["cosine"]


def paired(*metrics):
    """``("a", "a_paper", "b", "b_paper", ...)``: column names of metrics shown beside the paper's."""
    return tuple(c for m in metrics for c in (m, f"{m}_paper"))


def register_equivariance_table(name: str, dataset: str, title: str, caption: str, needs: tuple, columns: tuple,
                                build: Callable, extra: tuple = EQUIV_EXTRA) -> TableSpec:
    """Register one dataset's rows of Table S9 (equivariance error): ``needs`` and ``columns``
    name the eval keys and row columns before the equivariance ones (:data:`EQUIV` beside the
    paper's, then ``extra``), which :func:`add_equivariance` fills."""
    return register_table(TableSpec(
        name=name, dataset=dataset, title=title, caption=caption, paper_csv="tableS9_equivariance_error.csv",
        needs=needs + EQUIV + EQUIV_EXTRA, columns=columns + paired(*EQUIV) + extra, build=build,
        labels=EQUIV_LABELS))
