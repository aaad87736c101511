"""Ligand-binding-affinity tables: Table 2 (H-AE pocket embeddings) and S10 (vs Zernike invariants)."""
from __future__ import annotations

from ..evals import is_lba
from .registry import Built, TableSpec, register_table

# One eval per feature kind (``holovae lba-regress``): every regressor's metrics, mean and std over
# fits with different seeds. The paper's Table 2 numbers did not survive transcription (see the
# packaged paper README), so these tables have no paper column; the footer says so.

LBA_METRICS = ("rmsd", "pearson", "spearman", "kendall")
LBA_FEATURES = {"hae": "H-AE embedding (z summed over the pocket)",
                "zernike_inv": "Zernike invariants (l = 0 coefficients summed over the pocket)",
                "zernike_inv_other": "Zernike invariants with an 'other element' channel (ours)"}
LBA_REGRESSORS = {"linear": "linear", "random_forest": "random forest", "mean": "mean of training affinities"}
LBA_NO_PAPER = ("The paper's Table 2 values (ATOM3D LBA, 30% identity split) did not survive transcription, so no "
                "paper column is shown; compare with the paper's PDF.")
LBA_CAPTION = ("Regression of -log Kd/Ki from per-complex features: each pocket residue's 10 Å neighbourhood "
               "(protein and ligand atoms) is Zernike-transformed as the protein model's training data; the pocket "
               "and the regressors follow the protocol named below (paper or authors' code; every difference: "
               "docs/fidelity.md#lba). Metrics on the pooled test predictions, mean and std (`_std`) over fits with "
               "different seeds; rmsd is the root mean squared error.")
LBA_PROTOCOLS = {
    "paper": "the paper's text (random forest: one forest per grid point fitted on the train set, chosen on "
             "validation RMSE; linear: one layer on standardised features, LR ÷10 after 10 epochs without "
             "validation gain, the best validation epoch's weights)",
    "authors": "the authors' released code (one bootstrap resample of the train set; random forest: grid chosen on "
               "the mean validation RMSE of 5 forests per point, prediction = mean of 10 forests; linear: one layer on "
               "raw features, LR ÷10 on training-loss plateaus, final weights, 10 continued fits averaged)",
}


def _lba_name(ev) -> str:
    """The run's name (its --meta variant: hae, zernike_inv, zernike_inv_other), else its feature kind."""
    return ev.get("variant") or ev["features"]


def _lba_rows(evals, features_order, regressors):
    rows = []
    evs = sorted((e for e in evals if is_lba(e)),
                 key=lambda e: features_order.index(_lba_name(e)) if _lba_name(e) in features_order else 99)
    for e in evs:
        for reg in regressors:
            res = e["results"].get(reg)
            if res is None:
                continue
            row = {"features": _lba_name(e), "regressor": LBA_REGRESSORS.get(reg, reg),
                   "n_complexes": e.get("n_complexes"), "seeds": len(e.get("seeds") or [])}
            for m in LBA_METRICS:
                row[m], row[f"{m}_std"] = res.get(m), res.get(f"{m}_std")
            if reg == "random_forest" and res.get("rf_params"):
                row["rf_params"] = _rf_params_text(res["rf_params"])
            rows.append(row)
    return rows


def _rf_params_text(entries) -> str:
    """The grid point chosen most often over seeds and folds, with its count."""
    import json
    from collections import Counter

    counts = Counter(json.dumps(e.get("params", e), sort_keys=True) for e in entries)
    best, n = counts.most_common(1)[0]
    return f"{best} ({n}/{sum(counts.values())} fits)"


def _lba_protocol_note(ev) -> str:
    """One eval's protocol in words: the regressors' and, from the data, the pocket's."""
    protocol = ev.get("protocol")
    regressors = LBA_PROTOCOLS.get(protocol, "not recorded (made before protocols existed: the paper's text)")
    pocket = ev.get("pocket") or {}
    pocket_text = pocket.get("text") or "residues whose Cα lies within 10 Å of a ligand heavy atom"
    pocket_protocol = pocket.get("protocol", "paper")
    mixed = f" ({pocket_protocol} pocket)" if protocol and pocket_protocol != protocol else ""
    return (f"Protocol: {protocol or 'unrecorded'}{mixed}. Pocket: {pocket_text}. Regressors: {regressors}. "
            "See docs/fidelity.md#lba.")


def _lba_n_scored(ev):
    """How many test predictions one seed's metrics pool: every complex of a cross-validation
    split, the test set of a fixed one."""
    n_test = ev.get("n_test")
    if ev.get("split_kind") == "fixed" and isinstance(n_test, list) and n_test:
        return int(sum(n_test))
    return ev.get("n_complexes")


def _lba_error_notes(evals) -> list[str]:
    """What the spread over seeds does not show: the sampling error of a correlation over n test
    complexes, and why the mean predictor correlates at all under cross-validation."""
    import math

    notes = []
    ns = sorted({n for n in (_lba_n_scored(e) for e in evals) if isinstance(n, int) and n > 2})
    if ns:
        se = ", ".join(f"{1 / math.sqrt(n - 2):.2f} at n = {n}" for n in ns)
        notes.append(f"Sampling error: a Pearson r over n test complexes has a standard error of up to 1/√(n − 2) "
                     f"({se}); `_std` is the spread over seeds, i.e. the fitting noise only, so rows closer than "
                     "about twice that error are not told apart.")
    if any(e.get("split_kind") == "cv" and "mean" in (e.get("results") or {}) for e in evals):
        notes.append("Under cross-validation the mean predictor's correlations are not 0: its prediction is each "
                     "fold's training mean, which is high where the held-out fold is low, so they come out negative.")
    return notes


def _lba_notes(evals) -> list[str]:
    evals = [e for e in evals if is_lba(e)]
    notes = sorted({e["split_caption"] for e in evals if e.get("split_caption")})
    notes += list(dict.fromkeys(_lba_protocol_note(e) for e in evals))
    notes += _lba_error_notes(evals)
    used = [f"{_lba_name(e)}: {LBA_FEATURES.get(_lba_name(e), LBA_FEATURES.get(e['features'], e['features']))}"
            for e in evals]
    return notes + (["Features: " + "; ".join(used) + "."] if used else []) + [LBA_NO_PAPER]


def _build_table2(evals, paper) -> Built:
    hae = [e for e in evals if is_lba(e) and e["features"] == "hae"]
    rows = _lba_rows(hae, ["hae"], ("random_forest", "linear", "mean"))
    return Built(rows, [], _lba_notes(hae))


LBA_NEEDS = ("variant", "dataset", "features", "results")
LBA_COLUMNS = ("features", "regressor", "n_complexes", "seeds") + tuple(
    c for m in LBA_METRICS for c in (m, f"{m}_std"))

register_table(TableSpec(
    name="table2_lba", dataset="lba",
    title="Table 2 (ligand binding affinity): H-AE pocket embeddings",
    caption=f"{LBA_CAPTION} The mean predictor is the trivial baseline a useful model must beat.",
    paper_csv=None, needs=LBA_NEEDS, columns=LBA_COLUMNS + ("rf_params",),
    build=_build_table2))


def _build_s10(evals, paper) -> Built:
    rows = _lba_rows(evals, list(LBA_FEATURES), ("linear", "random_forest", "mean"))
    # the mean predictor ignores the features: one row of it is enough
    seen_mean, kept = False, []
    for r in rows:
        if r["regressor"] == LBA_REGRESSORS["mean"]:
            if seen_mean:
                continue
            seen_mean, r["features"] = True, "(none)"
        kept.append(r)
    return Built(kept, [], _lba_notes(evals))


register_table(TableSpec(
    name="tableS10_lba", dataset="lba",
    title="Table S10 (ligand binding affinity): H-AE embeddings vs Zernike invariants",
    caption=(f"{LBA_CAPTION} Zernike invariants: the rotation-invariant l = 0 coefficients of the same "
             "neighbourhoods, without any model (the paper's baseline); the 'other element' variant adds a channel "
             "for every element other than C, N, O, S (the paper suggests it; ours, not the paper's)."),
    paper_csv=None, needs=LBA_NEEDS, columns=LBA_COLUMNS + ("rf_params",),
    build=_build_s10))
