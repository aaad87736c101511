# Protein neighbourhoods (Tables S2, S7, S9 protein rows; Figure 4B): structures, split by
# structure, are prepared in shards (one job per shard, so thousands of structures spread over
# cores or cluster nodes), merged per split, and every variant of config proteins.variants is
# trained, embedded and evaluated.
import random

from holovae.data.embedded import embedded_structure_paths

PROTEINS = config.get("proteins")
STRUCTURE_SUFFIXES = (".cif", ".cif.gz", ".pdb", ".pdb.gz", ".ent", ".ent.gz", ".mmcif", ".mmcif.gz")


def structure_files(section, name):
    """Structure files of a config section's source (embedded or a folder), sorted."""
    if section["source"] == "proteinnet":
        raise ValueError(f"{name}: the ProteinNet files are known only after the download (split_of)")
    if section["source"] == "embedded":
        files = [str(p) for p in embedded_structure_paths()]
    else:
        folder = Path(section["directory"])
        if not folder.is_dir():
            raise ValueError(f"config {name}.directory: {folder} is not a directory")
        files = sorted(str(p) for p in folder.iterdir() if p.name.lower().endswith(STRUCTURE_SUFFIXES))
    if section.get("max_structures"):
        files = files[: section["max_structures"]]
    if len(files) < 3:
        raise ValueError(f"{name}: need at least 3 structures (train/val/test), found {len(files)}")
    return files


def structure_split(section, name):
    """{"train": [...], "val": [...], "test": [...]}: a seeded split by structure (never by residue,
    so no residue of a test structure is seen in training)."""
    order = list(structure_files(section, name))
    random.Random(section["seed"]).shuffle(order)
    n_test = max(1, round(section["test_fraction"] * len(order)))
    n_val = max(1, round(section["val_fraction"] * len(order)))
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def shards(split, part, size):
    files = split[part]
    return [files[i:i + size] for i in range(0, len(files), size)]


_SPLITS = {}


def split_of(section, name):
    """The train/val/test structure files of a config section (``proteins``, ``aminoacids``):
    the downloaded ProteinNet split, or a seeded split of the embedded set or a folder."""
    if section["source"] == "proteinnet":
        split = proteinnet_split()
        if section.get("max_structures"):   # a quick look at the real data: the first files of each part
            split = {p: files[: section["max_structures"]] for p, files in split.items()}
        return split
    if name not in _SPLITS:
        _SPLITS[name] = structure_split(section, name)
    return _SPLITS[name]


def protein_shards(part):
    return shards(split_of(PROTEINS, "proteins"), part, PROTEINS["shard_size"])


def protein_variant(variant):
    if variant == PRETRAINED_VARIANT:       # imported, not trained (pretrained.smk)
        return pretrained_variant()
    try:
        return PROTEINS["variants"][variant]
    except KeyError:
        raise ValueError(f"protein variant {variant!r} is not in config proteins.variants") from None


def protein_run_settings(variant):
    return run_settings(PROTEINS, protein_variant(variant))


def protein_data(wildcards, part=None):
    L = protein_variant(wildcards.variant)["lmax"]
    parts = [part] if part else ["train", "val", "test"]
    return {p: f"{RESULTS}/proteins/data/L{L}/{p}.h5" for p in parts}


def protein_evals(wildcards=None):
    return expand(f"{RESULTS}/proteins/eval/{{variant}}.json", variant=PROTEINS["variants"]) if PROTEINS else []


def protein_targets():
    if not PROTEINS:
        return []
    targets = expand(f"{RESULTS}/tables/{{table}}.{{ext}}", table=PROTEINS["tables"], ext=("csv", "md"))
    if PROTEINS.get("figures", {}).get("umap_variant"):
        targets.append(f"{RESULTS}/figures/fig4B_umap_{PROTEINS['figures']['umap_variant']}.png")
    return targets


rule prepare_structures_shard:
    input:
        lambda wc: protein_shards(wc.part)[int(wc.shard)],
    output:
        h5=f"{RESULTS}/proteins/data/L{{lmax}}/{{part}}/shard{{shard}}.h5",
        skipped=f"{RESULTS}/proteins/data/L{{lmax}}/{{part}}/shard{{shard}}.skipped.tsv",
    wildcard_constraints:
        lmax=r"\d+",
        shard=r"\d+",
    params:
        t=lambda wc: PROTEINS["transform"],
        elements=lambda wc: ",".join(PROTEINS["transform"]["elements"]),
    log:
        f"{RESULTS}/logs/prepare_structures/L{{lmax}}_{{part}}_shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_structures/L{{lmax}}_{{part}}_shard{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "holovae prepare-structures {input} --out {output.h5} --skipped {output.skipped} --split {wildcards.part}"
        " --lmax {wildcards.lmax} --n-max {params.t[n_max]} --r-max {params.t[r_max]}"
        " --elements {params.elements} --normalization {params.t[normalization]} --radial {params.t[radial]}"
        " --secondary {params.t[secondary]} --threads {threads} --no-progress > {log} 2>&1"


rule merge_structures:
    input:
        h5=lambda wc: [f"{RESULTS}/proteins/data/L{wc.lmax}/{wc.part}/shard{i}.h5" for i in range(len(protein_shards(wc.part)))],
        skipped=lambda wc: [f"{RESULTS}/proteins/data/L{wc.lmax}/{wc.part}/shard{i}.skipped.tsv" for i in range(len(protein_shards(wc.part)))],
    output:
        h5=f"{RESULTS}/proteins/data/L{{lmax}}/{{part}}.h5",
        skipped=f"{RESULTS}/proteins/data/L{{lmax}}/{{part}}.skipped.tsv",
    wildcard_constraints:
        lmax=r"\d+",
    log:
        f"{RESULTS}/logs/merge_structures/L{{lmax}}_{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/merge_structures/L{{lmax}}_{{part}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "holovae merge {input.h5} --out {output.h5} --skipped {input.skipped} --skipped-out {output.skipped} > {log} 2>&1"


rule train_proteins:
    input:
        train=lambda wc: protein_data(wc, "train")["train"],
        val=lambda wc: protein_data(wc, "val")["val"],
    output:
        model=f"{RESULTS}/proteins/models/{{variant}}/best.pt",
        history=f"{RESULTS}/proteins/models/{{variant}}/history.json",
    params:
        settings=lambda wc: protein_run_settings(wc.variant),
        set_args=lambda wc: as_set_args(protein_run_settings(wc.variant)),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    log:
        f"{RESULTS}/logs/train/proteins/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/proteins/{{variant}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=1440,
    shell:
        "holovae train --train {input.train} --val {input.val} {params.set_args}"
        " --set train.device={config[device]} --threads {threads} --out {params.out_dir} --no-progress > {log} 2>&1"


rule embed_proteins:
    input:
        model=f"{RESULTS}/proteins/models/{{variant}}/best.pt",
        data=lambda wc: list(protein_data(wc).values()),
    output:
        expand(f"{RESULTS}/proteins/embeddings/{{{{variant}}}}/{{part}}.h5", part=("train", "val", "test")),
    log:
        f"{RESULTS}/logs/embed/proteins/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/proteins/{{variant}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} holovae embed --model {input.model} --data {input.data} --out {output}"
        " --device {config[device]} --no-progress > {log} 2>&1"


rule evaluate_proteins:
    input:
        model=f"{RESULTS}/proteins/models/{{variant}}/best.pt",
        history=f"{RESULTS}/proteins/models/{{variant}}/history.json",
        embeddings=expand(f"{RESULTS}/proteins/embeddings/{{{{variant}}}}/{{part}}.h5", part=("train", "val", "test")),
        test=lambda wc: protein_data(wc, "test")["test"],
    output:
        f"{RESULTS}/proteins/eval/{{variant}}.json",
    params:
        emb_dir=lambda wc, input: os.path.dirname(input.embeddings[0]),
        ev_args=evaluate_args(),
    log:
        f"{RESULTS}/logs/evaluate/proteins/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/proteins/{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "holovae evaluate --model {input.model} --embeddings {params.emb_dir} --test-data {input.test}"
        " --history {input.history} --meta variant={wildcards.variant} --meta 'dataset=Protein NBs'"
        " --clusters 20 {params.ev_args}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule figure_proteins_umap:
    input:
        model=f"{RESULTS}/proteins/models/{{variant}}/best.pt",
        data=lambda wc: protein_data(wc, "test")["test"],
        embeddings=f"{RESULTS}/proteins/embeddings/{{variant}}/test.h5",
    output:
        report(f"{RESULTS}/figures/fig4B_umap_{{variant}}.png", caption="../report/figure4.rst", category="Figures"),
    params:
        seed=config["evaluate"]["seed"],
    log:
        f"{RESULTS}/logs/figures/fig4B_umap_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/fig4B_umap_{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "holovae figure umap --model {input.model} --data {input.data} --embeddings {input.embeddings}"
        " --color-by secondary_structure --seed {params.seed} --out {output} > {log} 2>&1"
