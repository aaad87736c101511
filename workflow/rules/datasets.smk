# The dataset registry (no rules here): what the stage rules (train, embed, evaluate, figure,
# table, merge, download) need to know about each dataset, in one place. A dataset of trained
# models has variants, data files per (variant, part), the parts it embeds, the options of its
# evaluation, its tables and figures; LBA has tables and figures only (its own chain makes its
# evaluations). To add a dataset: a config section, an entry here, and a rule file for whatever
# is truly its own (how its data is made). See CONTRIBUTING.md.
from dataclasses import dataclass, field
from typing import Callable

MNIST = section("mnist")
PROTEINS = section("proteins")
AMINO = section("aminoacids")
LBA = section("lba")
SHREC = section("shrec17")
PROTEINNET = section("proteinnet")


@dataclass
class Dataset:
    """One dataset of the registry; paths are under ``{RESULTS}/{name}/``."""

    name: str
    label: str                                       # its name in the evals and tables
    variants: Callable[[], dict] = dict              # variant -> training settings (None: not trained here)
    data: Callable[[str, str], str] = None           # (variant, part) -> HDF5 file
    embed_parts: tuple = PARTS                       # the parts a variant's evaluation reads
    meta: Callable[[str], dict] = lambda v: {}       # copied into the variant's eval JSON
    eval_flags: Callable[[str], str] = lambda v: ""  # more `holovae evaluate` options
    tables: tuple = ()
    table_variants: Callable[[str], list] = None     # table -> the variants it is built from
    figures: Callable[[], dict] = dict               # figure name -> {"inputs": {...}, "args": str}


# ------------------------------------------------------------------------------------ MNIST
def mnist_variants():
    return {v: run_settings(MNIST, s) for v, s in MNIST["variants"].items()}


def mnist_data(variant, part):
    return f"{RESULTS}/mnist/data/{MNIST['variants'][variant]['train_split']}/{part}.h5"


def mnist_meta(variant):
    return {"variant": variant, "dataset": "MNIST", "split": f"{MNIST['variants'][variant]['train_split']}/R",
            "bw": MNIST["bw"]}


def mnist_figures():
    fig, out = MNIST.get("figures") or {}, {}
    kinds = [(fig.get("ae_variant"), ("canonical", "umap", "overlays")),
             (fig.get("vae_variant"), ("canonical", "umap", "prior_samples", "interpolations", "overlays"))]
    for variant, names in kinds:
        if not variant:
            continue
        for kind in names:
            prefix = "fig3" if kind == "overlays" else "fig2"
            out[f"{prefix}_{kind}_{variant}"] = figure_of_model("mnist", variant, kind.replace("_", "-"))
    return out


# ------------------------------------------------------------------------ protein neighbourhoods
PRETRAINED_VARIANT = "pretrained"   # config proteins.pretrained, imported instead of trained


def pretrained_spec():
    """``{"id", "urls", "sha256", "lmax"}`` of config proteins.pretrained, or None. The degree
    of the published models is in their id (``...-lmax=6-...``) unless the config gives one."""
    value = PROTEINS.get("pretrained") if PROTEINS else None
    if value is None:
        return None
    spec = {"id": value} if isinstance(value, str) else dict(value)
    if spec.get("lmax") is None:
        import re

        found = re.search(r"lmax=(\d+)", spec["id"])
        spec["lmax"] = int(found.group(1)) if found else None
    return spec


def protein_variants():
    out = {v: run_settings(PROTEINS, s) for v, s in PROTEINS["variants"].items()}
    if pretrained_spec():
        out[PRETRAINED_VARIANT] = None
    return out


def protein_lmax(variant):
    if variant == PRETRAINED_VARIANT:
        spec = pretrained_spec()
        if not spec or spec["lmax"] is None:
            raise ValueError("config proteins.pretrained: give `lmax` to embed the protein splits with it")
        return spec["lmax"]
    return PROTEINS["variants"][variant]["lmax"]


def protein_data(variant, part):
    return f"{RESULTS}/proteins/data/L{protein_lmax(variant)}/{part}.h5"


def protein_figures():
    variant = (PROTEINS.get("figures") or {}).get("umap_variant")
    if not variant:
        return {}
    if variant not in protein_variants():
        raise ValueError(f"config proteins.figures.umap_variant: {variant!r} is not a protein variant "
                         f"({', '.join(protein_variants())}); name one, or null for no Figure 4B")
    return {f"fig4B_umap_{variant}": figure_of_model("proteins", variant, "umap", "--color-by secondary_structure",
                                                     caption="figure4.rst")}


# ------------------------------------------------------------------------- amino-acid conformations
def amino_runs():
    """{run: (model, n, batch size, repeat)} of every model the configured ablations need."""
    runs = {}

    def add(model, n, batch_size):
        if model not in AMINO["models"]:
            raise ValueError(f"aminoacids: model {model!r} is not in aminoacids.models")
        for r in range(AMINO["repeats"]):
            runs[f"{model}_n{n}_r{r}"] = {"model": model, "n": n, "batch_size": batch_size, "repeat": r}

    size = AMINO.get("size_ablation") or {}
    for model in size.get("models", []):
        for s in size["sizes"]:
            add(model, s["n"], s["batch_size"])
    beta = AMINO.get("beta_ablation") or {}
    for model in beta.get("models", []):
        add(model, beta["n_train"], beta["batch_size"])
    return runs


AMINO_RUNS = amino_runs() if AMINO else {}


def amino_variants():
    out = {}
    for run, r in AMINO_RUNS.items():
        m = AMINO["models"][r["model"]]
        train = dict(AMINO["train"], batch_size=r["batch_size"], seed=r["repeat"], lambda_kl=m["beta"])
        if r["n"] == 0:   # the untrained model (the n_train = 0 rows)
            train["epochs"] = 0
        out[run] = {"model": dict(AMINO["architecture"], vae=m["vae"]), "train": train}
    return out


def amino_data(run, part):
    if part != "train":
        return f"{RESULTS}/aminoacids/data/{part}.h5"
    r = AMINO_RUNS[run]
    # n = 0: no training, but the input normalisation still comes from the training pool
    return f"{RESULTS}/aminoacids/data/pool/train.h5" if r["n"] == 0 else \
        f"{RESULTS}/aminoacids/data/train_n{r['n']}_r{r['repeat']}.h5"


def amino_meta(run):
    r = AMINO_RUNS[run]
    return {"variant": run, "dataset": "Amino acids", "n_train": r["n"], "repeat": r["repeat"],
            "beta": AMINO["models"][r["model"]]["beta"]}


def amino_table_variants(table):
    if table == "tableS5":
        size = AMINO["size_ablation"]
        return [r for r, s in AMINO_RUNS.items() if s["model"] in size["models"]
                and s["n"] in {x["n"] for x in size["sizes"]}]
    if table == "tableS6":
        b = AMINO["beta_ablation"]
        return [r for r, s in AMINO_RUNS.items() if s["model"] in b["models"] and s["n"] == b["n_train"]]
    return list(AMINO_RUNS)


def amino_figures():
    run = (AMINO.get("figures") or {}).get("latent_run")
    if not run:
        return {}
    if run not in AMINO_RUNS:
        raise ValueError(f"config aminoacids.figures.latent_run: {run!r} is not a run the ablations make")
    return {f"fig4A_latent_{run}": figure_of_model("aminoacids", run, "umap", caption="figure4A.rst")}


# ----------------------------------------------------------------------------------- Shrec17
def shrec_variants():
    return {v: run_settings(SHREC, s) for v, s in SHREC["variants"].items()}


def shrec_data(variant, part):
    return f"{RESULTS}/shrec17/data/bw{SHREC['bw']}/{part}.h5"


def shrec_meta(variant):
    # SHREC'17 perturbed: every model rotated, in training and test alike (split R/R)
    return {"variant": variant, "dataset": "Shrec17", "split": "R/R",
            "data": "SYNTHETIC" if SHREC["source"] == "synthetic" else "SHREC17 perturbed", "bw": SHREC["bw"]}


# ------------------------------------------------------------------------------------- LBA
LBA_FEATURES = ("hae", "zernike_inv") + (("zernike_inv_other",) if LBA and LBA.get("other_channel_baseline") else ())


def lba_figures():
    if not (LBA.get("figures") or {}).get("scatter", True):
        return {}
    return {"fig4D_lba_hae": {"inputs": {"predictions": f"{RESULTS}/lba/eval/hae.predictions.csv"},
                              "args": "lba-scatter --predictions {input.predictions} --regressor random_forest"
                                      " --title 'H-AE pocket embedding + random forest'",
                              "caption": "figure4D.rst"}}


# ----------------------------------------------------------------------------------- registry
def figure_of_model(dataset, variant, kind, options="", caption="figure.rst"):
    """A figure drawn from one variant's model, test data and test embeddings."""
    ds = DATASETS[dataset]
    inputs = {"model": f"{RESULTS}/{dataset}/models/{variant}/best.pt", "data": ds.data(variant, "test"),
              "embeddings": f"{RESULTS}/{dataset}/embeddings/{variant}/test.h5"}
    args = (f"{kind} --model {{input.model}} --data {{input.data}} --embeddings {{input.embeddings}} {options}"
            f" --seed {config['evaluate']['seed']}")
    return {"inputs": inputs, "args": args, "caption": caption}


DATASETS = {}
if MNIST:
    DATASETS["mnist"] = Dataset("mnist", "MNIST", mnist_variants, mnist_data, meta=mnist_meta,
                                tables=tuple(MNIST["tables"]), figures=mnist_figures)
if PROTEINS:
    DATASETS["proteins"] = Dataset(
        "proteins", "Protein NBs", protein_variants, protein_data,
        meta=lambda v: {"variant": v, "dataset": "Protein NBs"}, eval_flags=lambda v: "--clusters 20",
        tables=tuple(PROTEINS["tables"]), figures=protein_figures,
        # the imported model has no training run: the tables are about trained ones
        table_variants=lambda t: list(PROTEINS["variants"]))
if AMINO:
    DATASETS["aminoacids"] = Dataset(
        "aminoacids", "Amino acids", amino_variants, amino_data, embed_parts=("test",), meta=amino_meta,
        eval_flags=lambda v: f"--cv-folds {AMINO['cv_folds']} --clusters 20",
        tables=tuple(AMINO["tables"]), table_variants=amino_table_variants, figures=amino_figures)
if SHREC:
    DATASETS["shrec17"] = Dataset(
        "shrec17", "Shrec17", shrec_variants, shrec_data, meta=shrec_meta, eval_flags=lambda v: "--retrieval --clusters 0",
        tables=tuple(SHREC["tables"]))
if LBA:
    DATASETS["lba"] = Dataset("lba", "LBA", tables=tuple(LBA["tables"]), figures=lba_figures,
                              table_variants=lambda t: list(LBA_FEATURES))

TRAINED = [name for name, ds in DATASETS.items() if ds.data is not None]
# every table is declared by the dataset whose section lists it
TABLE_DATASET = {table: name for name, ds in DATASETS.items() for table in ds.tables}


def dataset(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset {name!r} is not configured (configured: {', '.join(DATASETS)})") from None


def variant_settings(name, variant):
    """The training settings of a variant; ValueError naming the config section otherwise."""
    variants = dataset(name).variants()
    if variant not in variants:
        raise ValueError(f"{name} variant {variant!r} is not in config {name} ({', '.join(variants)})")
    return variants[variant]


def evals_of(name, variants=None):
    """Eval JSONs of a dataset's variants (default: every trained one)."""
    if variants is None:
        variants = [v for v, s in dataset(name).variants().items() if s is not None]
    return [f"{RESULTS}/{name}/eval/{v}.json" for v in variants]


def table_evals(wildcards):
    """The evaluations a table is built from: those of the dataset that declares it."""
    if wildcards.table not in TABLE_DATASET:
        raise ValueError(f"table {wildcards.table!r} is not in the `tables` of any configured dataset "
                         f"({', '.join(sorted(TABLE_DATASET))})")
    ds = dataset(TABLE_DATASET[wildcards.table])
    variants = ds.table_variants(wildcards.table) if ds.table_variants else None
    return evals_of(ds.name, variants)


FIGURES = {name: fig for ds in DATASETS.values() for name, fig in ds.figures().items()}


# ------------------------------------------------------------------- downloads and shards
def downloads():
    """{dataset: {file: {"urls": [...], "checks": {...}}}} of every download the config needs
    (its mirrors in order, and the checksums it publishes; none: pinned in the lock)."""
    out = {}
    if MNIST and MNIST["source"] == "download":
        out["mnist"] = {f: {"urls": [b + f for b in MNIST["download"]["base_urls"]],
                            "checks": {"md5": c.get("md5"), "decompressed_md5": c.get("decompressed_md5")}}
                        for f, c in MNIST["download"]["files"].items()}
    if SHREC and SHREC["source"] == "download":
        out["shrec17"] = {f: {"urls": c.get("urls") or [b + f for b in SHREC["download"]["base_urls"]],
                              "checks": {"md5": c.get("md5"), "sha256": c.get("sha256")}}
                          for f, c in SHREC["download"]["files"].items()}
    if LBA and LBA["source"] == "atom3d":
        a = LBA["atom3d"]
        out["lba"] = {a["archive_name"]: {"urls": a["urls"], "checks": {"md5": a.get("md5")}}}
    if PROTEINNET and any((section(s) or {}).get("source") == "proteinnet" for s in ("proteins", "aminoacids")):
        out["proteinnet"] = {PROTEINNET["archive_name"]: {"urls": PROTEINNET["archive_urls"],
                                                          "checks": {"md5": PROTEINNET.get("archive_md5")}}}
    return out


DOWNLOADS = downloads()


def download_spec(wildcards):
    try:
        return DOWNLOADS[wildcards.dataset][wildcards.file]
    except KeyError:
        raise ValueError(f"{wildcards.dataset}/{wildcards.file} is not a download of the config") from None


def download_path(name, file):
    return f"{RESULTS}/download/{name}/{file}"


def structure_options(wildcards):
    """`holovae prepare-structures` options of a dataset's transform."""
    t = section(wildcards.dataset)["transform"]
    common = (f"--n-max {t['n_max']} --r-max {t['r_max']} --elements {','.join(t['elements'])}"
              f" --normalization {t['normalization']} --radial {t['radial']}")
    if wildcards.dataset == "proteins":
        return f"--lmax {Path(wildcards.group).parent.name[1:]} {common} --secondary {t['secondary']}"
    return (f"--clouds residue {'--drop-ca' if t['drop_ca'] else '--no-drop-ca'} --lmax {t['lmax']} {common}"
            " --secondary none")


def shard_count(name, group):
    """Preparation jobs of a group of data (proteins ``L<l>/<part>``, aminoacids
    ``pool/<part>``, shrec17 ``bw<bw>/<part>``) -- the shards `merge` joins."""
    part = Path(group).name
    if name == "shrec17":
        return SHREC["shards"][part]
    return len(structure_shards(name, part))


def shards_of(wildcards, suffix=".h5"):
    base = f"{RESULTS}/{wildcards.dataset}/data/{wildcards.group}"
    return [f"{base}/shard{i}{suffix}" for i in range(shard_count(wildcards.dataset, wildcards.group))]


def figure_spec(name):
    try:
        return FIGURES[name]
    except KeyError:
        raise ValueError(f"figure {name!r} is not one the config asks for ({', '.join(sorted(FIGURES))})") from None


def all_targets():
    tables = [f"{RESULTS}/tables/{t}.{ext}" for t in TABLE_DATASET for ext in ("csv", "md")]
    figures = [f"{RESULTS}/figures/{name}.png" for name in FIGURES]
    return tables + figures + [f"{RESULTS}/reproduction.md"]


def shrec_meshes(part):
    """The meshes of one Shrec17 split: a folder (synthetic) or the challenge's zip."""
    if SHREC["source"] == "synthetic":
        return f"{RESULTS}/shrec17/synthetic/{part}_perturbed"
    name = SHREC["meshes"][part]
    if SHREC["source"] == "download":
        return download_path("shrec17", name)
    path = Path(SHREC["directory"] or "") / name
    if not path.exists():
        raise ValueError(f"config shrec17.directory: {path} (meshes of the {part} split) does not exist")
    return str(path)


def shrec_labels():
    """Every Shrec17 label file (all splits, so the class indices agree between splits and shards)."""
    if SHREC["source"] == "synthetic":
        return [f"{RESULTS}/shrec17/synthetic/{part}.csv" for part in PARTS]
    if SHREC["source"] == "download":
        return [download_path("shrec17", name) for name in SHREC["labels"]]
    paths = [Path(SHREC["directory"] or "") / name for name in SHREC["labels"]]
    for p in paths:
        if not p.is_file():
            raise ValueError(f"config shrec17.labels: {p} does not exist")
    return [str(p) for p in paths]


# ------------------------------------------------------------------------------ LBA inputs
def lba_model():
    """The protein model whose encoder embeds the pockets (lba.protein_variant)."""
    variant = LBA["protein_variant"]
    if not PROTEINS or variant not in protein_variants():
        raise ValueError(f"config lba.protein_variant: {variant!r} is not a variant of config proteins.variants"
                         " (nor 'pretrained' with proteins.pretrained set)")
    return f"{RESULTS}/proteins/models/{variant}/best.pt"


def lba_complexes():
    if LBA["source"] == "embedded":
        return str(EMBEDDED / "lba")
    folder = Path(LBA["directory"] or "")
    if not folder.is_dir():
        raise ValueError(f"config lba.directory: {folder} is not a directory")
    return str(folder)


def lba_prepare_inputs(wildcards):
    inputs = {"model": lba_model()}
    if LBA["source"] == "atom3d":
        inputs["atom3d"] = f"{RESULTS}/download/lba/extracted"
    return inputs


def lba_prepare_outputs():
    """The pockets' HDF5 and skipped list; from ATOM3D's files also their split lists."""
    out = {"h5": f"{RESULTS}/lba/data/pockets{{other}}.h5", "skipped": f"{RESULTS}/lba/data/pockets{{other}}.skipped.tsv"}
    if LBA and LBA["source"] == "atom3d":
        out["lists"] = directory(f"{RESULTS}/lba/data/pockets{{other}}.lists")
    return out


def lba_complex_options(input, output):
    """Where the complexes are: ATOM3D's three LMDB parts (their split lists written beside the
    data), or a PDBbind-layout folder with its affinity index."""
    if LBA["source"] == "atom3d":
        parts = " ".join(f"--atom3d {input.atom3d}/{LBA['atom3d']['dataset_dir']}/data/{p}" for p in PARTS)
        return f"{parts} --lists-out {output.lists} --receptor larger"
    index = str(EMBEDDED / "lba" / "affinities.csv") if LBA["source"] == "embedded" else LBA["index"]
    # the embedded complexes ship pockets cut to what their 10 Å neighbourhoods need
    receptor = "pocket" if LBA["source"] == "embedded" else LBA["receptor"]
    return (f"--complexes {shlex.quote(lba_complexes())} --receptor {receptor}"
            + (f" --index {shlex.quote(index)}" if index else ""))


def lba_prepare_options():
    """The pocket of lba.protocol (paper: Cα within 10 Å; authors: ATOM3D's 6 Å pocket), its
    distance replaced by lba.pocket_cutoff when that is set; the configured complex ids."""
    cutoff = LBA.get("pocket_cutoff")
    options = f"--protocol {LBA['protocol']}" + (f" --pocket-cutoff {cutoff}" if cutoff is not None else "")
    return options + (f" --ids {shlex.quote(LBA['ids'])}" if LBA.get("ids") else "")


def lba_split_inputs(wildcards):
    # ATOM3D's split lists come with its data (written by prepare_lba)
    return {"lists": f"{RESULTS}/lba/data/pockets.lists"} if LBA["source"] == "atom3d" else {}


def lba_split_options(input):
    if LBA["source"] == "atom3d":
        return f"--lists {input.lists}"
    options = f"--complexes {shlex.quote(lba_complexes())}"
    if LBA.get("lists"):
        options += f" --lists {shlex.quote(LBA['lists'])}"
    elif LBA["split"].get("folds"):
        options += f" --folds {LBA['split']['folds']}"
    return options + (f" --ids {shlex.quote(LBA['ids'])}" if LBA.get("ids") else "")


# ------------------------------------------------------------------------------- scorecard
# what each data source is, for the scorecard's header
SOURCE_TEXT = {
    ("mnist", "embedded"): "the real MNIST digits shipped with holovae (thousands; the paper: 60,000 + 10,000)",
    ("mnist", "download"): "the official MNIST files, 60,000 + 10,000 digits (as the paper)",
    ("proteins", "embedded"): "ten structures shipped with holovae (the paper: ProteinNet CASP12, 10,957 structures)",
    ("proteins", "directory"): "the structures of a folder (the paper: ProteinNet CASP12)",
    ("proteins", "proteinnet"): "ProteinNet CASP12 (as the paper)",
    ("aminoacids", "embedded"): "residues of ten structures shipped with holovae (the paper: ProteinNet CASP12)",
    ("aminoacids", "directory"): "residues of the structures of a folder (the paper: ProteinNet CASP12)",
    ("aminoacids", "proteinnet"): "residues of ProteinNet CASP12 (as the paper)",
    ("lba", "embedded"): "complexes shipped with holovae (the paper: ATOM3D LBA, 4,463 complexes)",
    ("lba", "directory"): "PDBbind-layout complexes of a folder (the paper: ATOM3D LBA)",
    ("lba", "atom3d"): "ATOM3D LBA, 30% sequence-identity split (as the paper)",
    ("shrec17", "synthetic"): "SYNTHETIC procedural meshes (SHREC'17's may not be redistributed)",
    ("shrec17", "download"): "SHREC'17 perturbed (as the paper)",
    ("shrec17", "directory"): "SHREC'17-layout meshes of a folder",
}


def scorecard_sources():
    """`--source` options of `holovae scorecard`: each configured dataset's data."""
    out = []
    for name in ("mnist", "proteins", "aminoacids", "lba", "shrec17"):
        sec = section(name)
        if sec:
            text = f"config {name}.source: {sec['source']}, {SOURCE_TEXT[(name, sec['source'])]}"
            out.append(f"--source {shlex.quote(f'{name}={text}')}")
    return " ".join(out)


# ------------------------------------------------------------------------------- resources
# (mem_mb, runtime in minutes) of the stage jobs per dataset: MNIST's models and data are small,
# the protein and Shrec17 ones are not. A cluster profile may override any (set-resources).
RESOURCES = {
    "train": {"mnist": (8000, 720), "aminoacids": (8000, 720), "proteins": (16000, 1440), "shrec17": (16000, 1440)},
    "embed": {"mnist": (4000, 30), "aminoacids": (8000, 60), "proteins": (8000, 60), "shrec17": (8000, 60)},
    "evaluate": {"mnist": (4000, 60), "aminoacids": (8000, 60), "proteins": (8000, 60), "shrec17": (8000, 120)},
}


def stage_mem_mb(stage):
    return lambda wc: RESOURCES[stage][wc.dataset][0]


def stage_runtime(stage):
    return lambda wc: RESOURCES[stage][wc.dataset][1]
