"""Reproduced-vs-paper tables: one builder per table of the paper, and a registry of them.

Each public builder (``table1_mnist``, ``tableS1``, ...) takes our eval dicts (one per
trained variant, as ``holovae evaluate`` writes them) and optionally the paper's rows
(default: the packaged CSV), and returns a list of dict rows: our value of every metric
the paper reports in ``<metric>``, the paper's in ``<metric>_paper`` (None when the paper
has no matching row). Only variants we ran get a row; paper rows we did not run are named
by :func:`build_table` in the table's footer instead of appearing as half-empty rows.

To add a table (LBA, ...), write a ``_build_x(evals, paper) -> Built`` and
:func:`register_table` a :class:`TableSpec` for it; the CLI picks it up by name. A spec's
``accepts`` picks the evals of its dataset: the others are skipped before their keys are
checked, so one folder of evals (MNIST and protein neighbourhoods) serves every table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .evals import check_evals, dataset_key, int_list, is_amino_acid, is_lba, is_protein, list_text
from .paper import load_paper

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


@dataclass(frozen=True)
class Built:
    """What a builder returns: rows, paper rows with no run of ours, and footer notes."""
    rows: list[dict]
    not_run: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableSpec:
    """A table by name: its builder, the paper CSV it compares with, the eval keys it reads."""
    name: str
    title: str
    caption: str
    paper_csv: str | None   # None: the paper's numbers are not available
    needs: tuple[str, ...]
    columns: tuple[str, ...]
    build: Callable[[list[dict], list[dict]], Built]
    labels: dict = field(default_factory=dict)   # Markdown header overrides
    formats: dict = field(default_factory=dict)  # %-formats overriding writers.default_format
    accepts: Callable[[dict], bool] | None = None  # evals of this table's dataset (None: all)

    def applies(self, ev) -> bool:
        """Whether eval ``ev`` belongs to this table's dataset (others are skipped)."""
        return self.accepts is None or bool(self.accepts(ev))


@dataclass(frozen=True)
class Table:
    """A built table, ready for :func:`holovae.report.writers.write_table`."""
    spec: TableSpec
    rows: list[dict]
    footer: str


TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    TABLES[spec.name] = spec
    return spec


def get_spec(name: str) -> TableSpec:
    """The registered table ``name``; ValueError listing the known names otherwise."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}")
    return TABLES[name]


def build_table(name: str, evals: list[dict], paper: list[dict] | None = None) -> Table:
    """Check ``evals`` carry the keys table ``name`` reads, build its rows and footer."""
    spec = get_spec(name)
    check_evals(evals, ("dataset",), name)   # every eval: needed to tell which table it is for
    evals = [e for e in evals if spec.applies(e)]
    check_evals(evals, spec.needs, name)
    if paper is None:
        paper = load_paper(spec.paper_csv) if spec.paper_csv else []
    built = spec.build(evals, paper)
    rows = [{c: r.get(c) for c in spec.columns} for r in built.rows]  # fixed column order
    lines = list(built.notes) + _classifier_notes(evals)
    if built.not_run:
        lines.append("Paper rows not run here: " + "; ".join(built.not_run) + ".")
    elif spec.paper_csv:
        lines.append("Every paper row of this table has a run here.")
    return Table(spec, rows, "\n\n".join(lines))


# ---------------------------------------------------------------- helpers

def _classifier_notes(evals: list[dict]) -> list[str]:
    """How the latent classifiers of these evals were fitted (docs/fidelity.md#evaluation)."""
    fits = sorted({e["knn_fit"] for e in evals if e.get("knn_fit")})
    scaling = sorted({bool(e["lc_standardize"]) for e in evals if "lc_standardize" in e})
    parts = []
    if fits:
        parts.append("KNN (scikit-learn's defaults) fitted on the " +
                     " / ".join({"train+val": "training + validation", "train": "training"}[f] for f in fits) +
                     " latents")
    if scaling:
        parts.append("linear classifier on " + " / ".join("standardised z" if v else "z as it is" for v in scaling))
    notes = []
    if parts:
        notes.append("Classifiers: " + "; ".join(parts) + " (the authors' protocol is training + validation "
                     "latents, z as it is: docs/fidelity.md#evaluation).")
    quadratures = sorted({e["quadrature"] for e in evals if e.get("quadrature")})
    if quadratures:
        names = {"lstsq-weights": "the authors' least-squares quadrature weights", "dh": "Driscoll-Healy quadrature",
                 "lstsq": "an unweighted least-squares fit (not the authors')"}
        notes.append("Spherical Fourier transform: " + " / ".join(names.get(q, q) for q in quadratures) +
                     " (docs/fidelity.md#transform).")
    return notes


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


def _p(prow, col):
    return None if prow is None else prow.get(col)


def _ratio(num, den):
    return None if num is None or not den else num / den


def _is_mnist(ev) -> bool:
    return dataset_key(ev) == "mnist"


def _is_main(ev) -> bool:
    """The paper's main models (Table 1): equivariant decoder, efficient tensor product."""
    return ev["decoder"] == "equivariant" and ev["tp"] == "efficient"


def _split_model_z(r):
    return (r["split"], r["model"], int(r["z"]))


def _ours_vs_paper(row, ev, prow, metrics):
    for m in metrics:
        row[m], row[f"{m}_paper"] = ev[m], _p(prow, m)


def _equivariance(row, ev, prow):
    """The equivariance-error columns of the Table S9 variants (ours beside the paper's)."""
    _ours_vs_paper(row, ev, prow, EQUIV)
    row["equiv_relative_error_max"] = ev["equiv_relative_error_max"]
    row["equiv_relative_error_mean"] = ev.get("equiv_relative_error_mean")
    row["latent_invariance_error"] = ev["latent_invariance_error"]


def _cosines(row, ev, prow):
    row["cosine"], row["cosine_paper"], row["cosine_plain"] = ev["cosine_weighted"], _p(prow, "cosine"), ev["cosine"]


def _paired(*metrics):
    return tuple(c for m in metrics for c in (m, f"{m}_paper"))


# ---------------------------------------------------------------- Table 1 / Table S3 (MNIST)

def _table1_pairs(evals, paper):
    ours = [e for e in evals if _is_mnist(e) and _is_main(e)]
    prows = [p for p in paper if p["dataset"] == "MNIST"]
    pairs, missing = match(ours, prows, _split_model_z, _split_model_z)
    return pairs, [f"{p['model']} {p['split']} z={p['z']}" for p in missing]


def _build_table1(evals, paper) -> Built:
    pairs, not_run = _table1_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = {"variant": e["variant"], "split": e["split"], "model": e["model"], "z": int(e["z"]),
               "bw": e.get("bw"), "n_train": e["n_train"]}
        _cosines(row, e, p)
        _ours_vs_paper(row, e, p, CLUSTER)
        rows.append(row)
    return Built(rows, not_run)


def _build_s3(evals, paper) -> Built:
    pairs, not_run = _table1_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = {"variant": e["variant"], "split": e["split"], "model": e["model"], "z": int(e["z"])}
        _ours_vs_paper(row, e, p, ("knn_acc",))
        rows.append(row)
    return Built(rows, not_run)


register_table(TableSpec(
    name="table1_mnist", title="Table 1 (MNIST): reconstruction and latent-space quality",
    caption=(f"{OURS_VS_PAPER} {COSINE_NOTE} Split is train/test rotation (NR: not rotated, R: rotated). "
             "purity and v_measure: K-means on the test latents; lc_acc: linear classifier; knn_acc: KNN."),
    paper_csv="table1_mnist.csv",
    needs=COMMON + ("n_train", "cosine_weighted", "cosine") + CLUSTER,
    columns=("variant", "split", "model", "z", "bw", "n_train", "cosine", "cosine_paper", "cosine_plain")
    + _paired(*CLUSTER),
    build=_build_table1, accepts=_is_mnist))

register_table(TableSpec(
    name="tableS3", title="Table S3 (MNIST): KNN classification accuracy on the latent space",
    caption=f"{OURS_VS_PAPER} Same variants as Table 1 (MNIST); no cosine shown.",
    paper_csv="table1_mnist.csv",  # Table S3 is the knn_acc column of Table 1's MNIST rows
    needs=COMMON + ("knn_acc",),
    columns=("variant", "split", "model", "z", "knn_acc", "knn_acc_paper"),
    build=_build_s3, accepts=_is_mnist))


# ---------------------------------------------------------------- Table S1 (unconstrained decoder)

def _s1_label(ev) -> str:
    return ev["model"] + (" unconstrained decoder" if ev["decoder"] == "mlp" else "")


def _build_s1(evals, paper) -> Built:
    ours = [e for e in evals if _is_mnist(e) and e["tp"] == "efficient" and e["split"] == "NR/R"
            and int(e["z"]) == 16]
    key = lambda r: (r["model"], r["split"], int(r["z"]))  # noqa: E731
    pairs, missing = match(ours, paper, lambda e: (_s1_label(e), e["split"], int(e["z"])), key)
    ref = next((e for e in ours if e["model"] == "H-AE" and e["decoder"] == "equivariant"), None)
    ref_s = None if ref is None else ref["seconds_per_epoch"]
    rows = []
    for e, p in pairs:
        row = {"variant": e["variant"], "model": _s1_label(e), "split": e["split"], "z": int(e["z"]),
               "seconds_per_epoch": e["seconds_per_epoch"],
               "relative_time": _ratio(e["seconds_per_epoch"], ref_s),
               "relative_time_paper": _p(p, "relative_time")}
        _cosines(row, e, p)
        _ours_vs_paper(row, e, p, CLUSTER)
        rows.append(row)
    if ref is None:
        notes = ["relative_time is empty: no equivariant-decoder H-AE NR/R z=16 run to divide by."]
    elif not ref_s:
        notes = [f"relative_time is empty: {ref['variant']} has no seconds_per_epoch."]
    else:
        notes = [f"relative_time = seconds per epoch / that of {ref['variant']} (H-AE, equivariant decoder)."]
    return Built(rows, [f"{p['model']} {p['split']} z={p['z']}" for p in missing], notes)


register_table(TableSpec(
    name="tableS1", title="Table S1 (MNIST NR/R, z=16): equivariant vs unconstrained (MLP) decoder",
    caption=(f"{OURS_VS_PAPER} {COSINE_NOTE} relative_time is seconds per training epoch relative to "
             "the H-AE with the equivariant decoder."),
    paper_csv="tableS1_unconstrained_decoder.csv",
    needs=COMMON + ("seconds_per_epoch", "cosine_weighted", "cosine") + CLUSTER,
    columns=("variant", "model", "split", "z", "seconds_per_epoch", "relative_time", "relative_time_paper",
             "cosine", "cosine_paper", "cosine_plain") + _paired(*CLUSTER),
    build=_build_s1, accepts=_is_mnist))


# ---------------------------------------------------------------- Table S8 (ETP vs full TP, MNIST)

def _build_s8(evals, paper) -> Built:
    ours = [e for e in evals if _is_mnist(e) and e["model"] == "H-AE" and e["decoder"] == "equivariant"
            and e["split"] == "NR/R" and int(e["z"]) == 16]
    prows = [p for p in paper if p["dataset"] == "MNIST"]
    pairs, missing = match(
        ours, prows,
        lambda e: (TP_LABEL[e["tp"]], int_list(e["channels"]), int_list(e["degrees"])),
        lambda p: (p["tp_type"], int_list(p["channels_list"]), int_list(p["degrees_list"])))
    # Divide by the ETP run that matches the paper's ETP architecture, else by any ETP run.
    etp = [e for e, p in pairs if e["tp"] == "efficient"]
    ref = next((e for e, p in pairs if e["tp"] == "efficient" and p is not None), etp[0] if etp else None)
    ref_s = None if ref is None else ref["seconds_per_epoch"]
    rows = []
    for e, p in pairs:
        row = {"variant": e["variant"], "tp_type": TP_LABEL[e["tp"]], "lmax": e["lmax"], "z": int(e["z"]),
               "channels": list_text(e["channels"]), "degrees": list_text(e["degrees"]),
               "params": e["params"], "params_paper": _p(p, "params"),
               "seconds_per_epoch": e["seconds_per_epoch"],
               "relative_time": _ratio(e["seconds_per_epoch"], ref_s),
               "relative_time_paper": _p(p, "relative_time")}
        _cosines(row, e, p)
        rows.append(row)
    if ref is None:
        notes = ["relative_time is empty: no ETP run to divide by."]
    elif not ref_s:
        notes = [f"relative_time is empty: {ref['variant']} has no seconds_per_epoch."]
    else:
        notes = [f"relative_time = seconds per epoch / that of {ref['variant']} (ETP)."]
    not_run = [f"{p['tp_type']} channels {p['channels_list']} degrees {p['degrees_list']} ({p['params']} params)"
               for p in missing]
    return Built(rows, not_run, notes)


register_table(TableSpec(
    name="tableS8_mnist", title="Table S8 (MNIST, H-AE NR/R z=16): efficient (ETP) vs full tensor product",
    caption=(f"{OURS_VS_PAPER} {COSINE_NOTE} Rows match the paper's on tensor product type plus channel and "
             "degree lists. params is our exact count, params_paper the paper's rounded one; relative_time "
             "is seconds per training epoch relative to the ETP model."),
    paper_csv="tableS8_tp_ablation.csv",
    needs=COMMON + ("channels", "degrees", "params", "lmax", "seconds_per_epoch", "cosine_weighted", "cosine"),
    columns=("variant", "tp_type", "lmax", "z", "channels", "degrees", "params", "params_paper",
             "seconds_per_epoch", "relative_time", "relative_time_paper", "cosine", "cosine_paper",
             "cosine_plain"),
    build=_build_s8, accepts=_is_mnist))


# ---------------------------------------------------------------- Table S9 (equivariance error, MNIST)

def _build_s9(evals, paper) -> Built:
    ours = [e for e in evals if _is_mnist(e)]
    # The paper's dataset cell is "MNIST NR/R"; its models are the main ones (Table 1).
    prows = [dict(p, split=p["dataset"].split()[1]) for p in paper if str(p["dataset"]).startswith("MNIST ")]
    pairs, missing = match(
        ours, prows,
        lambda e: (e["split"], e["model"], int(e["z"]), e["decoder"], e["tp"]),
        lambda p: (p["split"], p["model"], int(p["z"]), "equivariant", "efficient"))
    rows = []
    for e, p in pairs:
        row = {k: e[k] for k in ("variant", "split", "model", "lmax", "decoder", "tp")}
        row["z"] = int(e["z"])
        _equivariance(row, e, p)
        rows.append(row)
    notes = [f"† {UNITS_LOST}."]
    return Built(rows, [f"{p['model']} {p['split']} z={p['z']}" for p in missing], notes)


register_table(TableSpec(
    name="tableS9_mnist", title="Table S9 (MNIST): equivariance error of trained models",
    caption=(f"{OURS_VS_PAPER} Ours, in scientific notation: mean and std over test samples and random "
             "rotations R of mean_i |D(R) f(x) - f(D(R) x)|_i (equiv_error) and of mean_i |D(R) f(x)|_i "
             "(abs_value); equiv_relative_error_max is the largest ||D(R) f(x) - f(D(R) x)|| / ||D(R) f(x)||, "
             f"latent_invariance_error the largest relative change of z under rotation. Columns marked † are "
             f"the {UNITS_LOST}. No cosine shown."),
    paper_csv="tableS9_equivariance_error.csv",
    needs=COMMON + ("lmax",) + EQUIV + ("equiv_relative_error_max", "latent_invariance_error"),
    columns=("variant", "split", "model", "z", "lmax", "decoder", "tp") + _paired(*EQUIV)
    + ("equiv_relative_error_max", "latent_invariance_error"),
    build=_build_s9, accepts=_is_mnist,
    labels={f"{m}_paper": f"{m}_paper †" for m in EQUIV}))


# ---------------------------------------------------------------- protein neighbourhoods (S2, S7, S9)
# The paper's protein models (Tables S2, S7, S9) are H-AEs with the equivariant decoder and the
# efficient tensor product, one per (lmax, z). Our evals match them on exactly that, so an H-VAE or
# an ablated protein run gets a row of its own, with empty paper cells.

PROTEIN_DATA = ("The paper trained on ProteinNet CASP12 (10,957 training structures, 12 epochs, on an A40 GPU); "
                "ours may be a small local subset of structures: n_train is our number of training "
                "neighbourhoods, epochs our number of epochs.")
PROTEIN_MATCH = ("Rows match the paper's on (lmax, z) for H-AE models with the equivariant decoder and the "
                 "efficient tensor product; lmax is the maximum degree L of the Zernike projection of the "
                 "10 Å neighbourhoods.")


def _protein_key(ev):
    return (ev["model"], int(ev["lmax"]), int(ev["z"]), ev.get("decoder", "equivariant"), ev.get("tp", "efficient"))


def _paper_protein_key(p):
    return (p.get("model", "H-AE"), int(p["lmax"]), int(p["z"]), "equivariant", "efficient")


def _protein_pairs(evals, paper):
    ours = [e for e in evals if is_protein(e)]
    pairs, missing = match(ours, paper, _protein_key, _paper_protein_key)
    return pairs, [f"{p.get('model', 'H-AE')} L={p['lmax']} z={p['z']}" for p in missing]


def _protein_row(ev) -> dict:
    return {"variant": ev["variant"], "model": ev["model"], "lmax": int(ev["lmax"]), "z": int(ev["z"])}


def _train_hours(ev):
    s, n = ev.get("seconds_per_epoch"), ev.get("epochs")
    return None if s is None or n is None else s * n / 3600.0


def _n_train_note(evals) -> list[str]:
    sizes = sorted({int(e["n_train"]) for e in evals if is_protein(e) and e.get("n_train") is not None})
    if not sizes:
        return []
    text = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,} to {sizes[-1]:,}"
    return [f"Our runs trained on {text} neighbourhoods (the paper: all neighbourhoods of ProteinNet "
            "CASP12's 10,957 training structures)."]


def _build_s7(evals, paper) -> Built:
    pairs, not_run = _protein_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = _protein_row(e)
        row.update(n_train=e["n_train"], epochs=e["epochs"], params=e["params"], params_paper=_p(p, "params"),
                   train_hours=_train_hours(e), train_hours_paper=_p(p, "train_hours_a40"))
        _cosines(row, e, p)
        rows.append(row)
    return Built(rows, not_run, _n_train_note(evals))


register_table(TableSpec(
    name="tableS7", title="Table S7 (protein neighbourhoods): reconstruction cosine loss of H-AE models",
    caption=(f"{OURS_VS_PAPER} {COSINE_NOTE} {PROTEIN_MATCH} {PROTEIN_DATA} params is our exact count, "
             "params_paper the paper's rounded one; train_hours is ours (seconds per epoch x epochs, on our "
             "hardware), train_hours_paper the paper's on an A40."),
    paper_csv="tableS7_protein_neighborhoods.csv",
    needs=("variant", "dataset", "model", "z", "lmax", "params", "n_train", "epochs", "cosine_weighted", "cosine"),
    columns=("variant", "model", "lmax", "z", "n_train", "epochs", "params", "params_paper",
             "cosine", "cosine_paper", "cosine_plain", "train_hours", "train_hours_paper"),
    build=_build_s7, accepts=is_protein))


def _build_s2(evals, paper) -> Built:
    pairs, not_run = _protein_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = _protein_row(e)
        row.update(channels=list_text(e["channels"]), channels_paper=_p(p, "channels_list"),
                   degrees=list_text(e["degrees"]), degrees_paper=_p(p, "degrees_list"),
                   initial_channels=e.get("initial_channels"), initial_channels_paper=_p(p, "initial_channels"),
                   params=e["params"], params_paper=_p(p, "params"),
                   tensor_size=e.get("data_dim"), tensor_size_paper=_p(p, "tensor_size"))
        rows.append(row)
    notes = []
    if any(e.get("data_dim") is None for e, _ in pairs):
        notes.append("tensor_size is empty where the eval has no data_dim (the input irreps' dimension).")
    return Built(rows, not_run, notes + _n_train_note(evals))


register_table(TableSpec(
    name="tableS2", title="Table S2 (protein neighbourhoods): architectures of the H-AE models",
    caption=(f"{OURS_VS_PAPER} {PROTEIN_MATCH} channels and degrees are the encoder's per-block lists; "
             "initial_channels the channels of the first (input) linear layer; tensor_size the dimension of "
             "the input tensor (the Zernike coefficients of one neighbourhood, all channels and degrees up to "
             "lmax); params is our exact count, params_paper the paper's rounded one."),
    paper_csv="tableS2_protein_architectures.csv",
    needs=("variant", "dataset", "model", "z", "lmax", "channels", "degrees", "params"),
    columns=("variant", "model", "lmax", "z") + _paired("channels", "degrees", "initial_channels", "params",
                                                         "tensor_size"),
    build=_build_s2, accepts=is_protein))


def _build_s9_proteins(evals, paper) -> Built:
    prows = [p for p in paper if is_protein(p)]
    pairs, not_run = _protein_pairs(evals, prows)
    rows = []
    for e, p in pairs:
        row = _protein_row(e)
        _equivariance(row, e, p)
        rows.append(row)
    return Built(rows, not_run, [f"† {UNITS_LOST}."])


register_table(TableSpec(
    name="tableS9_proteins", title="Table S9 (protein neighbourhoods): equivariance error of trained models",
    caption=(f"{OURS_VS_PAPER} {PROTEIN_MATCH} Ours, in scientific notation: mean and std over test samples and "
             "random rotations R of mean_i |D(R) f(x) - f(D(R) x)|_i (equiv_error) and of mean_i |D(R) f(x)|_i "
             "(abs_value); equiv_relative_error_max / _mean are the largest / mean "
             "||D(R) f(x) - f(D(R) x)|| / ||D(R) f(x)||, latent_invariance_error the largest relative change of "
             f"z under rotation. Columns marked † are the {UNITS_LOST}. No cosine shown."),
    paper_csv="tableS9_equivariance_error.csv",
    needs=("variant", "dataset", "model", "z", "lmax") + EQUIV + ("equiv_relative_error_max",
                                                                  "latent_invariance_error"),
    columns=("variant", "model", "lmax", "z") + _paired(*EQUIV)
    + ("equiv_relative_error_max", "equiv_relative_error_mean", "latent_invariance_error"),
    build=_build_s9_proteins, accepts=is_protein,
    labels={f"{m}_paper": f"{m}_paper †" for m in EQUIV}))


# ---------------------------------------------------------------- amino-acid conformations (S5, S6, S9)
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
        row[f"{m}_paper"] = _p(prow, m)
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
    name="tableS5", title="Table S5 (amino-acid conformations): training-set size ablation",
    caption=f"{OURS_VS_PAPER} {AMINO_PROTOCOL} Training residues are drawn with the residue types balanced.",
    paper_csv="tableS5_aminoacids_data_ablation.csv", needs=AMINO_NEEDS, columns=AMINO_COLUMNS,
    build=_build_s5, accepts=is_amino_acid))


def _build_s6(evals, paper) -> Built:
    groups = _amino_groups(evals, _beta)
    prows = {_beta(p): p for p in paper}
    rows = [_amino_row(groups[b], prows.get(b)) for b in sorted(groups)]
    sizes = sorted({int(e["n_train"]) for g in groups.values() for e in g})
    notes = [f"Our runs trained on {', '.join(f'{n:,}' for n in sizes)} residues (the paper: 20,000)."] if sizes else []
    return Built(rows, [f"beta={b}" for b in prows if b not in groups], notes)


register_table(TableSpec(
    name="tableS6", title="Table S6 (amino-acid conformations): KL-weight (beta) ablation",
    caption=f"{OURS_VS_PAPER} {AMINO_PROTOCOL} beta = 0 is the H-AE, beta > 0 H-VAEs with that final KL weight.",
    paper_csv="tableS6_aminoacids_beta_ablation.csv", needs=AMINO_NEEDS, columns=AMINO_COLUMNS,
    build=_build_s6, accepts=is_amino_acid))


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
        _equivariance(row, e, p)
        rows.append(row)
    return Built(rows, [f"{p['model']} n_train={p['n_train']}" for p in missing], [f"† {UNITS_LOST}."])


register_table(TableSpec(
    name="tableS9_aminoacids", title="Table S9 (amino-acid conformations): equivariance error of trained models",
    caption=(f"{OURS_VS_PAPER} One row per (model, beta, n_train): the model of the first repeat. Ours, in "
             "scientific notation: mean and std over test samples and random rotations R of "
             "mean_i |D(R) f(x) - f(D(R) x)|_i (equiv_error) and of mean_i |D(R) f(x)|_i (abs_value); "
             "equiv_relative_error_max is the largest ||D(R) f(x) - f(D(R) x)|| / ||D(R) f(x)||, "
             f"latent_invariance_error the largest relative change of z under rotation. Columns marked † are the "
             f"{UNITS_LOST}."),
    paper_csv="tableS9_equivariance_error.csv",
    needs=("variant", "dataset", "model", "z", "lmax", "n_train") + EQUIV + ("equiv_relative_error_max",
                                                                             "latent_invariance_error"),
    columns=("variant", "model", "beta", "lmax", "z", "n_train") + _paired(*EQUIV)
    + ("equiv_relative_error_max", "latent_invariance_error"),
    build=_build_s9_amino, accepts=is_amino_acid,
    labels={f"{m}_paper": f"{m}_paper †" for m in EQUIV}))


# ---------------------------------------------------------------- ligand binding affinity (Table 2, S10)
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
    name="table2_lba", title="Table 2 (ligand binding affinity): H-AE pocket embeddings",
    caption=f"{LBA_CAPTION} The mean predictor is the trivial baseline a useful model must beat.",
    paper_csv=None, needs=LBA_NEEDS, columns=LBA_COLUMNS + ("rf_params",),
    build=_build_table2, accepts=is_lba))


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
    name="tableS10_lba", title="Table S10 (ligand binding affinity): H-AE embeddings vs Zernike invariants",
    caption=(f"{LBA_CAPTION} Zernike invariants: the rotation-invariant l = 0 coefficients of the same "
             "neighbourhoods, without any model (the paper's baseline); the 'other element' variant adds a channel "
             "for every element other than C, N, O, S (the paper suggests it; ours, not the paper's)."),
    paper_csv=None, needs=LBA_NEEDS, columns=LBA_COLUMNS + ("rf_params",),
    build=_build_s10, accepts=is_lba))


# ---------------------------------------------------------------- Shrec17 (Table 1 rows, S4, S9 rows)

RETRIEVAL = ("p_at_n", "r_at_n", "f1_at_n", "map", "ndcg")   # the paper's names
_RETRIEVAL_KEYS = dict(zip(RETRIEVAL, ("precision", "recall", "f1", "map", "ndcg")))
SHREC_DATA = ("data says what our model saw: 'SHREC17 perturbed' is the challenge's rotated set (the paper's); "
              "'SYNTHETIC' is holovae's procedural offline stand-in (a few classes of primitives): its rows "
              "demonstrate the chain and reproduce nothing, so compare them with the paper's at your peril.")


def _is_shrec(ev) -> bool:
    return dataset_key(ev) == "shrec17"


def _shrec_pairs(evals, paper):
    ours = [e for e in evals if _is_shrec(e) and _is_main(e)]
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
        _cosines(row, e, p)
        _ours_vs_paper(row, e, p, ("purity", "v_measure", "lc_acc"))
        for name, key in _RETRIEVAL_KEYS.items():
            row[name], row[f"{name}_paper"] = e[f"micro_{key}"], _p(p, name)
            row[f"{name}_macro"] = e[f"macro_{key}"]
        rows.append(row)
    return Built(rows, not_run, [SHREC_DATA])


register_table(TableSpec(
    name="table1_shrec17", title="Table 1 (Shrec17): reconstruction, latent space and SHREC'17 retrieval",
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
    + _paired("purity", "v_measure", "lc_acc")
    + tuple(c for m in RETRIEVAL for c in (m, f"{m}_paper", f"{m}_macro")),
    build=_build_table1_shrec, accepts=_is_shrec))


def _build_s4(evals, paper) -> Built:
    pairs, not_run = _shrec_pairs(evals, paper)
    rows = []
    for e, p in pairs:
        row = _shrec_row(e)
        _ours_vs_paper(row, e, p, ("knn_acc",))
        rows.append(row)
    return Built(rows, not_run, [SHREC_DATA])


register_table(TableSpec(
    name="tableS4", title="Table S4 (Shrec17): KNN classification accuracy on the latent space",
    caption=f"{OURS_VS_PAPER} Same models as Table 1 (Shrec17); scikit-learn's KNN with its defaults.",
    paper_csv="table1_shrec17.csv",   # Table S4 is the knn_acc column of Table 1's Shrec17 rows
    needs=COMMON + ("n_train", "n_test", "knn_acc"),
    columns=("variant", "data", "model", "z", "bw", "n_train", "n_test", "knn_acc", "knn_acc_paper"),
    build=_build_s4, accepts=_is_shrec))


def _build_s9_shrec(evals, paper) -> Built:
    ours = [e for e in evals if _is_shrec(e)]
    prows = [p for p in paper if dataset_key(p) == "shrec17"]
    pairs, missing = match(ours, prows, lambda e: (e["model"], int(e["z"]), e["decoder"], e["tp"]),
                           lambda p: (p["model"], int(p["z"]), "equivariant", "efficient"))
    rows = []
    for e, p in pairs:
        row = {k: e[k] for k in ("variant", "model", "lmax", "decoder", "tp")}
        row["data"], row["z"] = e.get("data", ""), int(e["z"])
        _equivariance(row, e, p)
        rows.append(row)
    return Built(rows, [f"{p['model']} z={p['z']}" for p in missing], [f"† {UNITS_LOST}.", SHREC_DATA])


register_table(TableSpec(
    name="tableS9_shrec17", title="Table S9 (Shrec17): equivariance error of trained models",
    caption=(f"{OURS_VS_PAPER} Ours, in scientific notation: mean and std over test samples and random rotations "
             "R of mean_i |D(R) f(x) - f(D(R) x)|_i (equiv_error) and of mean_i |D(R) f(x)|_i (abs_value); "
             "equiv_relative_error_max is the largest ||D(R) f(x) - f(D(R) x)|| / ||D(R) f(x)||, "
             "latent_invariance_error the largest relative change of z under rotation. Columns marked † are the "
             f"{UNITS_LOST}."),
    paper_csv="tableS9_equivariance_error.csv",
    needs=COMMON + ("lmax",) + EQUIV + ("equiv_relative_error_max", "latent_invariance_error"),
    columns=("variant", "data", "model", "z", "lmax", "decoder", "tp") + _paired(*EQUIV)
    + ("equiv_relative_error_max", "latent_invariance_error"),
    build=_build_s9_shrec, accepts=_is_shrec,
    labels={f"{m}_paper": f"{m}_paper †" for m in EQUIV}))


# ---------------------------------------------------------------- public builders

def table1_mnist(evals, paper=None) -> list[dict]:
    """Table 1, MNIST rows (matched on split, model, z); ``cosine`` is our weighted cosine."""
    return build_table("table1_mnist", evals, paper).rows


def tableS3(evals, paper=None) -> list[dict]:
    """Table S3: the KNN accuracy of Table 1's MNIST rows."""
    return build_table("tableS3", evals, paper).rows


def tableS1(evals, paper=None) -> list[dict]:
    """Table S1: equivariant vs MLP decoder at MNIST NR/R z=16, with relative epoch time."""
    return build_table("tableS1", evals, paper).rows


def tableS8_mnist(evals, paper=None) -> list[dict]:
    """Table S8, MNIST rows: ETP vs full tensor product (matched on tp, channels, degrees)."""
    return build_table("tableS8_mnist", evals, paper).rows


def tableS9_mnist(evals, paper=None) -> list[dict]:
    """Table S9, MNIST rows: equivariance error (the paper's scale was lost; orders of magnitude)."""
    return build_table("tableS9_mnist", evals, paper).rows


def tableS7(evals, paper=None) -> list[dict]:
    """Table S7: protein-neighbourhood reconstruction (matched on lmax, z); ``cosine`` is our weighted one."""
    return build_table("tableS7", evals, paper).rows


def tableS2(evals, paper=None) -> list[dict]:
    """Table S2: protein-neighbourhood architectures (matched on lmax, z), with parameter counts."""
    return build_table("tableS2", evals, paper).rows


def tableS9_proteins(evals, paper=None) -> list[dict]:
    """Table S9, protein rows: equivariance error (the paper's scale was lost; orders of magnitude)."""
    return build_table("tableS9_proteins", evals, paper).rows


def table1_shrec17(evals, paper=None) -> list[dict]:
    """Table 1, Shrec17 rows (matched on model, z) with the SHREC'17 retrieval metrics."""
    return build_table("table1_shrec17", evals, paper).rows


def tableS4(evals, paper=None) -> list[dict]:
    """Table S4: the KNN accuracy of Table 1's Shrec17 rows."""
    return build_table("tableS4", evals, paper).rows
