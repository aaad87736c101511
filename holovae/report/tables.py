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

from .evals import check_evals, dataset_key, int_list, is_protein, list_text
from .paper import load_paper

COMMON = ("variant", "dataset", "split", "model", "z", "decoder", "tp")
CLUSTER = ("purity", "v_measure", "lc_acc", "knn_acc")
EQUIV = ("equiv_error_mean", "equiv_error_std", "abs_value_mean", "abs_value_std")
TP_LABEL = {"efficient": "ETP", "full": "Full-TP"}  # our eval's tp -> the paper's tp_type

OURS_VS_PAPER = ("Columns `<metric>` are from our run, `<metric>_paper` from the paper (Visani et al., "
                 "Holographic-(V)AE); an empty paper cell means the paper has no matching row.")
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
    paper_csv: str
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
    built = spec.build(evals, load_paper(spec.paper_csv) if paper is None else paper)
    rows = [{c: r.get(c) for c in spec.columns} for r in built.rows]  # fixed column order
    lines = list(built.notes)
    if built.not_run:
        lines.append("Paper rows not run here: " + "; ".join(built.not_run) + ".")
    else:
        lines.append("Every paper row of this table has a run here.")
    return Table(spec, rows, "\n\n".join(lines))


# ---------------------------------------------------------------- helpers

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
        _ours_vs_paper(row, e, p, EQUIV)
        row["equiv_relative_error_max"] = e["equiv_relative_error_max"]
        row["latent_invariance_error"] = e["latent_invariance_error"]
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
        _ours_vs_paper(row, e, p, EQUIV)
        row["equiv_relative_error_max"] = e["equiv_relative_error_max"]
        row["equiv_relative_error_mean"] = e.get("equiv_relative_error_mean")
        row["latent_invariance_error"] = e["latent_invariance_error"]
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
