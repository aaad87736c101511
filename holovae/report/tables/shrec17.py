"""Shrec17 tables: Table 1 rows (with SHREC'17 retrieval), S4 (KNN accuracy), S9 rows."""
from __future__ import annotations

from ..evals import dataset_key
from .build import table_rows
from .common import (COMMON, COSINE_NOTE, EQUIV_CAPTION, OURS_VS_PAPER, UNITS_LOST, add_cosines, add_equivariance,
                     cell, is_main, match, ours_vs_paper, paired, register_equivariance_table)
from .registry import Built, TableSpec, register_table

__all__ = ["table1_shrec17", "tableS4", "is_shrec"]


RETRIEVAL = ("p_at_n", "r_at_n", "f1_at_n", "map", "ndcg")   # the paper's names
_RETRIEVAL_KEYS = dict(zip(RETRIEVAL, ("precision", "recall", "f1", "map", "ndcg")))
SHREC_DATA = ("data says what our model saw: 'SHREC17 perturbed' is the challenge's rotated set (the paper's); "
              "'SYNTHETIC' is holovae's procedural offline stand-in (a few classes of primitives): its rows "
              "demonstrate the chain and reproduce nothing, so compare them with the paper's at your peril.")


def is_shrec(ev) -> bool:
    return dataset_key(ev) == "shrec17"


def _shrec_pairs(evals, paper):
    ours = [e for e in evals if is_shrec(e) and is_main(e)]
    prows = [p for p in paper if dataset_key(p) == "shrec17"]
    pairs, missing = match(ours, prows, lambda e: (e["model"], int(e["z"])), lambda p: (p["model"], int(p["z"])))
    return pairs, [f"{p['model']} z={p['z']}" for p in missing]


def _shrec_row(e) -> dict:
    return {"variant": e["variant"], "data": e.get("data", ""), "model": e["model"], "z": int(e["z"]),
            "bw": e.get("bw"), "n_train": e["n_train"], "n_test": e["n_test"]}


def _build_table1_shrec(evals, paper) -> Built:
    pairs, not_run = _shrec_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = _shrec_row(e)
        add_cosines(row, e, p)
        ours_vs_paper(row, e, p, ("purity", "v_measure", "lc_acc"))
        for name, key in _RETRIEVAL_KEYS.items():
            row[name], row[f"{name}_paper"] = e[f"micro_{key}"], cell(p, name)
            row[f"{name}_macro"] = e[f"macro_{key}"]
        rows.append(row)
    return Built(rows, not_run, [SHREC_DATA])


register_table(TableSpec(
    name="table1_shrec17", dataset="shrec17",
    title="Table 1 (Shrec17): reconstruction, latent space and SHREC'17 retrieval",
    caption=(f"{OURS_VS_PAPER} {COSINE_NOTE} purity and v_measure: K-means (one centroid per class) on the test "
             "latents; lc_acc: linear classifier on z. Retrieval (SHREC'17 evaluator's definitions, "
             "holovae.evaluate.retrieval): every test model queries the test set, its list is the models the "
             "linear classifier puts in the same class, ordered by their logit (as Spherical CNNs did); "
             "p_at_n ... ndcg are micro averages (over queries; the convention of Spherical CNNs' table; the "
             "paper does not say which it shows), `_macro` the averages over classes (ours only). bw is the "
             "ray-casting grid's bandwidth; the spherical Fourier transform stops at L = 14."),
    paper_csv="table1_shrec17.csv",
    needs=COMMON + ("n_train", "n_test", "cosine_weighted", "cosine", "purity", "v_measure", "lc_acc")
    + tuple(f"{a}_{k}" for a in ("micro", "macro") for k in _RETRIEVAL_KEYS.values()),
    columns=("variant", "data", "model", "z", "bw", "n_train", "n_test", "cosine", "cosine_paper", "cosine_plain")
    + paired("purity", "v_measure", "lc_acc")
    + tuple(c for m in RETRIEVAL for c in (m, f"{m}_paper", f"{m}_macro")),
    build=_build_table1_shrec))


def _build_s4(evals, paper) -> Built:
    pairs, not_run = _shrec_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = _shrec_row(e)
        ours_vs_paper(row, e, p, ("knn_acc",))
        rows.append(row)
    return Built(rows, not_run, [SHREC_DATA])


register_table(TableSpec(
    name="tableS4", dataset="shrec17",
    title="Table S4 (Shrec17): KNN classification accuracy on the latent space",
    caption=f"{OURS_VS_PAPER} Same models as Table 1 (Shrec17); scikit-learn's KNN with its defaults.",
    paper_csv="table1_shrec17.csv",   # Table S4 is the knn_acc column of Table 1's Shrec17 rows
    needs=COMMON + ("n_train", "n_test", "knn_acc"),
    columns=("variant", "data", "model", "z", "bw", "n_train", "n_test", "knn_acc", "knn_acc_paper"),
    build=_build_s4))


def _build_s9_shrec(evals, paper) -> Built:
    ours = [e for e in evals if is_shrec(e)]
    prows = [p for p in paper if dataset_key(p) == "shrec17"]
    pairs, missing = match(ours, prows, lambda e: (e["model"], int(e["z"]), e["decoder"], e["tp"]),
                           lambda p: (p["model"], int(p["z"]), "equivariant", "efficient"))
    rows = []
    for e, p in pairs:
        row = {k: e[k] for k in ("variant", "model", "lmax", "decoder", "tp")}
        row["data"], row["z"] = e.get("data", ""), int(e["z"])
        add_equivariance(row, e, p)
        rows.append(row)
    return Built(rows, [f"{p['model']} z={p['z']}" for p in missing], [f"† {UNITS_LOST}.", SHREC_DATA])


register_equivariance_table(
    "tableS9_shrec17", "shrec17", "Table S9 (Shrec17): equivariance error of trained models",
    f"{OURS_VS_PAPER} {EQUIV_CAPTION}", needs=COMMON + ("lmax",),
    columns=("variant", "data", "model", "z", "lmax", "decoder", "tp"), build=_build_s9_shrec)


# the rows of one table, for callers that want no more than that
table1_shrec17 = table_rows(
    "table1_shrec17", "Table 1, Shrec17 rows (matched on model, z) with the SHREC'17 retrieval metrics.")
tableS4 = table_rows("tableS4", "Table S4: the KNN accuracy of Table 1's Shrec17 rows.")
