"""Amino-acid-conformation tables: S5 (training-set size), S6 (KL weight), S9 (equivariance error)."""
from __future__ import annotations

from ..evals import is_amino_acid
from .common import (EQUIV_CAPTION, OURS_VS_PAPER, UNITS_LOST, add_equivariance, cell, match,
                     register_equivariance_table)
from .registry import Built, TableSpec, register_table

# One eval per trained model and repeat (the data subset and the seed change with the repeat);
# a row is the mean and standard deviation over the repeats of one (n_train, model, beta).

AMINO_PROTOCOL = ("Residue-only clouds (C, N, O, S; L = 4), z = 2. cosine is the mean over repeats (training "
                  "subsets and seeds) of the degree-weighted cosine loss on the test residues, `_std` its standard "
                  "deviation; lc_acc / knn_acc are residue-type accuracies of a linear / KNN classifier fitted by "
                  "5-fold cross-validation on the test embeddings (the paper's protocol). n_train = 0 is the "
                  "untrained (randomly initialised) model. The paper used 10,000 test residues of ProteinNet "
                  "structures; ours are from the configured structures (n_test gives their number).")
AMINO_METRICS = ("cosine", "lc_acc", "knn_acc")


def _beta(ev) -> float:
    return round(float(ev.get("beta") or 0.0), 6)


def _mean_std(values):
    import statistics

    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def _amino_groups(evals, key):
    groups: dict = {}
    for e in evals:
        if is_amino_acid(e):
            groups.setdefault(key(e), []).append(e)
    return groups


def _amino_row(group, prow) -> dict:
    first = group[0]
    row = {"model": first["model"], "beta": _beta(first), "n_train": int(first["n_train"]), "repeats": len(group),
           "n_test": first.get("n_test")}
    values = {"cosine": [e["cosine_weighted"] for e in group], "lc_acc": [e["lc_acc"] for e in group],
              "knn_acc": [e["knn_acc"] for e in group]}
    for m in AMINO_METRICS:
        row[m], row[f"{m}_std"] = _mean_std(values[m])
        row[f"{m}_paper"] = cell(prow, m)
    row["cosine_plain"] = _mean_std(e["cosine"] for e in group)[0]
    return row


def _amino_key(e):
    return (int(e["n_train"]), e["model"], _beta(e))


def _build_s5(evals, paper) -> Built:
    groups = _amino_groups(evals, _amino_key)
    prows = {(int(p["n_train"]), p["model"], _beta(p)): p for p in paper}
    order = list(prows)
    keys = sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k))
    rows = [_amino_row(groups[k], prows.get(k)) for k in keys]
    not_run = [f"{m} beta={b} n_train={n}" for (n, m, b) in order if (n, m, b) not in groups]
    return Built(rows, not_run)


AMINO_COLUMNS = ("model", "beta", "n_train", "repeats", "n_test") + tuple(
    c for m in AMINO_METRICS for c in (m, f"{m}_std", f"{m}_paper")) + ("cosine_plain",)
AMINO_NEEDS = ("variant", "dataset", "model", "n_train", "beta", "cosine_weighted", "cosine", "lc_acc", "knn_acc")

register_table(TableSpec(
    name="tableS5", dataset="aminoacids",
    title="Table S5 (amino-acid conformations): training-set size ablation",
    caption=f"{OURS_VS_PAPER} {AMINO_PROTOCOL} Training residues are drawn with the residue types balanced.",
    paper_csv="tableS5_aminoacids_data_ablation.csv", needs=AMINO_NEEDS, columns=AMINO_COLUMNS,
    build=_build_s5))


def _build_s6(evals, paper) -> Built:
    groups = _amino_groups(evals, _beta)
    prows = {_beta(p): p for p in paper}
    rows = [_amino_row(groups[b], prows.get(b)) for b in sorted(groups)]
    sizes = sorted({int(e["n_train"]) for g in groups.values() for e in g})
    notes = [f"Our runs trained on {', '.join(f'{n:,}' for n in sizes)} residues (the paper: 20,000)."] if sizes else []
    return Built(rows, [f"beta={b}" for b in prows if b not in groups], notes)


register_table(TableSpec(
    name="tableS6", dataset="aminoacids",
    title="Table S6 (amino-acid conformations): KL-weight (beta) ablation",
    caption=f"{OURS_VS_PAPER} {AMINO_PROTOCOL} beta = 0 is the H-AE, beta > 0 H-VAEs with that final KL weight.",
    paper_csv="tableS6_aminoacids_beta_ablation.csv", needs=AMINO_NEEDS, columns=AMINO_COLUMNS,
    build=_build_s6))


def _build_s9_amino(evals, paper) -> Built:
    prows = [dict(p, n_train=int(p["n_train"])) for p in paper if str(p["dataset"]) == "Toy aminoacids"]
    # one row per (model, n_train, beta): its first repeat's model
    firsts = {}
    for e in sorted((e for e in evals if is_amino_acid(e)), key=lambda e: int(e.get("repeat", 0))):
        firsts.setdefault(_amino_key(e), e)
    pairs, missing = match(list(firsts.values()), prows,
                           lambda e: (e["model"], int(e["lmax"]), int(e["z"]), int(e["n_train"])),
                           lambda p: (p["model"], int(p["lmax"]), int(p["z"]), p["n_train"]))
    rows = []
    for e, p in pairs:
        row = {"variant": e["variant"], "model": e["model"], "beta": _beta(e), "lmax": int(e["lmax"]),
               "z": int(e["z"]), "n_train": int(e["n_train"])}
        add_equivariance(row, e, p)
        rows.append(row)
    return Built(rows, [f"{p['model']} n_train={p['n_train']}" for p in missing], [f"† {UNITS_LOST}."])


register_equivariance_table(
    "tableS9_aminoacids", "aminoacids", "Table S9 (amino-acid conformations): equivariance error of trained models",
    f"{OURS_VS_PAPER} One row per (model, beta, n_train): the model of the first repeat. {EQUIV_CAPTION}",
    needs=("variant", "dataset", "model", "z", "lmax", "n_train"),
    columns=("variant", "model", "beta", "lmax", "z", "n_train"), build=_build_s9_amino)
