# Functions shared by the rules (no rules here): paths, settings -> CLI options, structure
# splits. Nothing here imports holovae or torch: the DAG is built from paths and config alone,
# so `snakemake -n` works on a login node without them.
import json
import random
import shlex
from pathlib import Path

RESULTS = config["results"]
# sha256 of every download without a published checksum, pinned at its first complete download
DOWNLOAD_LOCK = f"{RESULTS}/checksums.lock"
# the package's own data, found beside this workflow (a checkout of the repository)
EMBEDDED = Path(workflow.basedir) / "holovae" / "data" / "embedded"
PARTS = ("train", "val", "test")
STRUCTURE_SUFFIXES = (".cif", ".cif.gz", ".pdb", ".pdb.gz", ".ent", ".ent.gz", ".mmcif", ".mmcif.gz")


def section(name):
    """A dataset's config section, or None when it is not configured."""
    return config.get(name) or None


def run_settings(sec, variant):
    """The `holovae train --set` settings of one variant of a config section:
    architecture < variant's `model` < `vae`; section `train` < variant's `train`."""
    model = dict(sec["architectures"][variant["architecture"]])
    model.update(variant.get("model", {}))
    model["vae"] = variant.get("vae", False)
    train = dict(sec["train"])
    train.update(variant.get("train", {}))
    return {"model": model, "train": train}


def as_set_args(settings):
    """{"model": {"z": 16}} -> "--set model.z=16 ..." (values as inline YAML/JSON)."""
    args = []
    for sec, values in settings.items():
        for key, value in values.items():
            args.append(f"--set {shlex.quote(f'{sec}.{key}={json.dumps(value)}')}")
    return " ".join(args)


def meta_args(meta):
    """{"variant": "a", "bw": 30} -> "--meta variant=a --meta bw=30" (quoted)."""
    return " ".join(f"--meta {shlex.quote(f'{k}={v}')}" for k, v in meta.items())


def evaluate_args():
    """`holovae evaluate` options from config `evaluate` (shared by every dataset)."""
    ev = config["evaluate"]
    args = (f"--equivariance-samples {ev['equivariance_samples']} --seed {ev['seed']}"
            f" --knn-fit {ev['knn_fit']}")
    return args + (" --lc-standardize" if ev["lc_standardize"] else "")


def download_args(urls, checks):
    """`holovae download` options: mirrors in order, then the configured checksums."""
    flags = [f"--url {shlex.quote(u)}" for u in urls]
    flags += [f"--{flag.replace('_', '-')} {value}" for flag, value in checks.items() if value]
    return " ".join(flags)


# --------------------------------------------------------------------- structures of a section
def structure_files(sec, name):
    """Structure files of a config section's source (embedded or a folder), sorted."""
    if sec["source"] == "embedded":
        files = sorted(str(p) for p in (EMBEDDED / "structures").iterdir()
                       if p.name.lower().endswith(STRUCTURE_SUFFIXES))
    else:
        folder = Path(sec["directory"] or "")
        if not folder.is_dir():
            raise ValueError(f"config {name}.directory: {folder} is not a directory")
        files = sorted(str(p) for p in folder.iterdir() if p.name.lower().endswith(STRUCTURE_SUFFIXES))
    if sec.get("max_structures"):
        files = files[: sec["max_structures"]]
    if len(files) < 3:
        raise ValueError(f"{name}: need at least 3 structures (train/val/test), found {len(files)}")
    return files


_SPLITS = {}


def split_of(sec, name):
    """{"train": [...], "val": [...], "test": [...]}: the structure files of a config section
    (`proteins`, `aminoacids`): the downloaded ProteinNet split, or a seeded split by structure
    of the embedded set or a folder (never by residue: no residue of a test structure is seen
    in training)."""
    if sec["source"] == "proteinnet":
        split = proteinnet_split()
        if sec.get("max_structures"):   # a quick look at the real data: the first files of each part
            split = {p: files[: sec["max_structures"]] for p, files in split.items()}
        return split
    if name not in _SPLITS:
        order = list(structure_files(sec, name))
        random.Random(sec["seed"]).shuffle(order)
        n_test = max(1, round(sec["test_fraction"] * len(order)))
        n_val = max(1, round(sec["val_fraction"] * len(order)))
        _SPLITS[name] = {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
                         "train": sorted(order[n_test + n_val:])}
    return _SPLITS[name]


def structure_shards(name, part):
    """The structure files of each preparation job of a section's part."""
    sec = section(name)
    files = split_of(sec, name)[part]
    size = sec["shard_size"]
    return [files[i:i + size] for i in range(0, len(files), size)]


def proteinnet_split():
    """{"train": [...], "val": [...], "test": [...]} files of the downloaded ProteinNet split
    (calling this from an input function makes the job wait for the checkpoint)."""
    lists = checkpoints.proteinnet_structures.get().output.lists
    split = {}
    for part in PARTS:
        path = Path(lists) / f"{part}_files.txt"
        split[part] = [line.strip() for line in path.read_text().splitlines()
                       if line.strip() and not line.startswith("#")]
    return split
