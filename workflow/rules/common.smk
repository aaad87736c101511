# Helpers shared by the rules: paths, per-variant settings, the targets of `rule all`.
import shlex

RESULTS = config["results"]
# sha256 of every download without a published checksum, pinned at its first complete download
DOWNLOAD_LOCK = f"{RESULTS}/checksums.lock"
MNIST = config["mnist"]
MNIST_FILES = list(MNIST["download"]["files"])
TABLES = (MNIST["tables"] + (config["proteins"]["tables"] if config.get("proteins") else [])
          + (config["aminoacids"]["tables"] if config.get("aminoacids") else [])
          + (config["lba"]["tables"] if config.get("lba") else [])
          + (config["shrec17"]["tables"] if config.get("shrec17") else []))
PROTEIN_TABLES = {"tableS2", "tableS7", "tableS9_proteins"}
AMINO_TABLES = {"tableS5", "tableS6", "tableS9_aminoacids"}
LBA_TABLES = {"table2_lba", "tableS10_lba"}
SHREC_TABLES = {"table1_shrec17", "tableS4", "tableS9_shrec17"}


wildcard_constraints:
    variant="[A-Za-z0-9_\-]+",
    split="NR|R",
    part="train|val|test",


def mnist_variant(variant):
    try:
        return MNIST["variants"][variant]
    except KeyError:
        raise ValueError(
            f"MNIST variant {variant!r} is not in config mnist.variants "
            f"({', '.join(MNIST['variants'])})"
        ) from None


def mnist_train_split(wildcards):
    return mnist_variant(wildcards.variant)["train_split"]


def run_settings(section, variant):
    """The `holovae train --set` overrides of one variant of a config section:
    architecture < variant's `model` < `vae`; section `train` < variant's `train`."""
    model = dict(section["architectures"][variant["architecture"]])
    model.update(variant.get("model", {}))
    model["vae"] = variant.get("vae", False)
    train = dict(section["train"])
    train.update(variant.get("train", {}))
    return {"model": model, "train": train}


def mnist_run_settings(variant):
    return run_settings(MNIST, mnist_variant(variant))


def as_set_args(settings):
    """{"model": {"z": 16}} -> "--set model.z=16 ..." (values as inline YAML/JSON)."""
    import json

    args = []
    for section, values in settings.items():
        for key, value in values.items():
            args.append(f"--set {shlex.quote(f'{section}.{key}={json.dumps(value)}')}")
    return " ".join(args)


def evaluate_args():
    """`holovae evaluate` options from config `evaluate` (shared by every dataset)."""
    ev = config["evaluate"]
    args = (f"--equivariance-samples {ev['equivariance_samples']} --seed {ev['seed']}"
            f" --knn-fit {ev['knn_fit']}")
    return args + (" --lc-standardize" if ev["lc_standardize"] else "")


def mnist_data(wildcards):
    split = mnist_train_split(wildcards)
    return {p: f"{RESULTS}/mnist/data/{split}/{p}.h5" for p in ("train", "val", "test")}


def mnist_variant_meta(variant):
    v = mnist_variant(variant)
    meta = {"variant": variant, "dataset": "MNIST", "split": f"{v['train_split']}/R",
            "bw": MNIST["bw"]}
    return " ".join(f"--meta {shlex.quote(f'{k}={val}')}" for k, val in meta.items())


def mnist_evals(wildcards=None):
    return expand(f"{RESULTS}/mnist/eval/{{variant}}.json", variant=MNIST["variants"])


def mnist_figure_targets():
    fig = MNIST["figures"]
    targets = []
    if fig.get("ae_variant"):
        targets += [f"{RESULTS}/figures/fig2_canonical_{fig['ae_variant']}.png",
                    f"{RESULTS}/figures/fig2_umap_{fig['ae_variant']}.png",
                    f"{RESULTS}/figures/fig3_overlays_{fig['ae_variant']}.png"]
    if fig.get("vae_variant"):
        v = fig["vae_variant"]
        targets += [f"{RESULTS}/figures/fig2_{kind}_{v}.png"
                    for kind in ("canonical", "umap", "prior_samples", "interpolations")]
        targets += [f"{RESULTS}/figures/fig3_overlays_{v}.png"]
    return sorted(set(targets))


def table_evals(wildcards):
    """The evaluations a table is built from: each dataset's tables from its own runs."""
    if wildcards.table in PROTEIN_TABLES:
        return protein_evals()
    if wildcards.table in AMINO_TABLES:
        return amino_evals_for(wildcards.table)
    if wildcards.table in LBA_TABLES:
        return lba_evals()
    if wildcards.table in SHREC_TABLES:
        return shrec_evals()
    return mnist_evals()


def all_targets():
    tables = expand(f"{RESULTS}/tables/{{table}}.{{ext}}", table=MNIST["tables"], ext=("csv", "md"))
    return (tables + mnist_figure_targets() + protein_targets() + amino_targets() + lba_targets()
            + shrec_targets() + [f"{RESULTS}/reproduction.md"])


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
    for section in ("mnist", "proteins", "aminoacids", "lba", "shrec17"):
        if config.get(section):
            text = SOURCE_TEXT[(section, config[section]["source"])]
            out.append(f"--source {shlex.quote(f'{section}=config {section}.source: ' + config[section]['source'] + ', ' + text)}")
    return " ".join(out)
