# Shrec17 (Table 1 Shrec rows, Table S4, Table S9 Shrec rows): meshes are ray-cast onto the
# sphere and transformed in shards (one job per shard: 51k meshes spread over cores or cluster
# nodes, read straight out of the challenge's zips), merged per split, and every variant of
# config shrec17.variants is trained, embedded and evaluated with the SHREC'17 retrieval metrics.
# Offline (source: synthetic) the meshes are procedural primitives in SHREC's layout, labelled
# SYNTHETIC wherever they appear.
import re

SHREC = config.get("shrec17")
SHREC_DIR = f"{RESULTS}/shrec17"
SHREC_DOWNLOAD = f"{RESULTS}/download/shrec17"
SHREC_SPLITS = ("train", "val", "test")


localrules:
    download_shrec17,


rule download_shrec17:
    output:
        f"{SHREC_DOWNLOAD}/{{file}}",
    params:
        urls=lambda wc: " ".join(
            f"--url {shlex.quote(u)}" for u in SHREC["download"]["files"][wc.file].get("urls")
            or [base + wc.file for base in SHREC["download"]["base_urls"]]
        ),
        checks=lambda wc: " ".join(
            f"--{flag} {SHREC['download']['files'][wc.file][flag]}"
            for flag in ("md5", "sha256")
            if SHREC["download"]["files"][wc.file].get(flag)
        ),
        lock=DOWNLOAD_LOCK,
    log:
        f"{RESULTS}/logs/download/shrec17/{{file}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/shrec17/{{file}}.tsv"
    wildcard_constraints:
        file="|".join(re.escape(f) for f in (SHREC["download"]["files"] if SHREC else {"none": 0})),
    threads: 1
    resources:
        mem_mb=500,
        runtime=600,
    shell:
        "holovae download {params.urls} {params.checks} --lock {params.lock} --out {output} --no-progress > {log} 2>&1"


rule synthetic_shrec17:
    output:
        labels=expand(f"{SHREC_DIR}/synthetic/{{split}}.csv", split=SHREC_SPLITS),
        meshes=directory(expand(f"{SHREC_DIR}/synthetic/{{split}}_perturbed", split=SHREC_SPLITS)),
    params:
        s=lambda wc: SHREC["synthetic"],
        out_dir=f"{SHREC_DIR}/synthetic",
    log:
        f"{RESULTS}/logs/shrec17/synthetic.log",
    benchmark:
        f"{RESULTS}/benchmarks/shrec17/synthetic.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "holovae synthetic-meshes --out-dir {params.out_dir} --train {params.s[train]} --val {params.s[val]}"
        " --test {params.s[test]} --stretch {params.s[stretch]} --jitter {params.s[jitter]} --seed {params.s[seed]}"
        " > {log} 2>&1"


def shrec_meshes(split):
    """The meshes of one split: a folder (synthetic) or the challenge's zip."""
    if SHREC["source"] == "synthetic":
        return f"{SHREC_DIR}/synthetic/{split}_perturbed"
    name = SHREC["meshes"][split]
    if SHREC["source"] == "download":
        return f"{SHREC_DOWNLOAD}/{name}"
    path = Path(SHREC["directory"] or "") / name
    if not path.exists():
        raise ValueError(f"config shrec17.directory: {path} (meshes of the {split} split) does not exist")
    return str(path)


def shrec_labels():
    """Every label file (all splits, so the class indices agree between splits and shards)."""
    if SHREC["source"] == "synthetic":
        return expand(f"{SHREC_DIR}/synthetic/{{split}}.csv", split=SHREC_SPLITS)
    if SHREC["source"] == "download":
        return [f"{SHREC_DOWNLOAD}/{name}" for name in SHREC["labels"]]
    paths = [Path(SHREC["directory"] or "") / name for name in SHREC["labels"]]
    for p in paths:
        if not p.is_file():
            raise ValueError(f"config shrec17.labels: {p} does not exist")
    return [str(p) for p in paths]


def shrec_variant(variant):
    try:
        return SHREC["variants"][variant]
    except KeyError:
        raise ValueError(f"Shrec17 variant {variant!r} is not in config shrec17.variants") from None


def shrec_run_settings(variant):
    return run_settings(SHREC, shrec_variant(variant))


def shrec_data_label():
    return "SYNTHETIC" if SHREC["source"] == "synthetic" else "SHREC17 perturbed"


def shrec_evals(wildcards=None):
    return expand(f"{SHREC_DIR}/eval/{{variant}}.json", variant=SHREC["variants"]) if SHREC else []


def shrec_targets():
    if not SHREC:
        return []
    return expand(f"{RESULTS}/tables/{{table}}.{{ext}}", table=SHREC["tables"], ext=("csv", "md"))


rule raycast_shrec17_shard:
    input:
        meshes=lambda wc: shrec_meshes(wc.part),
        labels=lambda wc: shrec_labels(),
    output:
        h5=f"{SHREC_DIR}/data/{{part}}/shard{{shard}}.h5",
        skipped=f"{SHREC_DIR}/data/{{part}}/shard{{shard}}.skipped.tsv",
    wildcard_constraints:
        shard=r"\d+",
    params:
        labels=lambda wc, input: " ".join(f"--labels {shlex.quote(p)}" for p in input.labels),
        shards=lambda wc: SHREC["shards"][wc.part],
    log:
        f"{RESULTS}/logs/shrec17/raycast_{{part}}_shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/shrec17/raycast_{{part}}_shard{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        "holovae prepare-shrec17 --meshes {input.meshes} {params.labels} --out {output.h5}"
        " --skipped {output.skipped} --shard {wildcards.shard} --shards {params.shards}"
        " --bw {SHREC[bw]} --lmax {SHREC[lmax]} --quadrature {SHREC[quadrature]} --standardize {SHREC[standardize]}"
        " --max-skipped-fraction {SHREC[max_skipped_fraction]} --threads {threads} --no-progress > {log} 2>&1"


rule merge_shrec17:
    input:
        h5=lambda wc: expand(f"{SHREC_DIR}/data/{wc.part}/shard{{i}}.h5", i=range(SHREC["shards"][wc.part])),
        skipped=lambda wc: expand(f"{SHREC_DIR}/data/{wc.part}/shard{{i}}.skipped.tsv", i=range(SHREC["shards"][wc.part])),
    output:
        h5=f"{SHREC_DIR}/data/{{part}}.h5",
        skipped=f"{SHREC_DIR}/data/{{part}}.skipped.tsv",
    log:
        f"{RESULTS}/logs/shrec17/merge_{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/shrec17/merge_{{part}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "holovae merge {input.h5} --out {output.h5} --skipped {input.skipped} --skipped-out {output.skipped} > {log} 2>&1"


rule train_shrec17:
    input:
        train=f"{SHREC_DIR}/data/train.h5",
        val=f"{SHREC_DIR}/data/val.h5",
    output:
        model=f"{SHREC_DIR}/models/{{variant}}/best.pt",
        history=f"{SHREC_DIR}/models/{{variant}}/history.json",
    params:
        settings=lambda wc: shrec_run_settings(wc.variant),
        set_args=lambda wc: as_set_args(shrec_run_settings(wc.variant)),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    log:
        f"{RESULTS}/logs/train/shrec17/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/shrec17/{{variant}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=1440,
    shell:
        "holovae train --train {input.train} --val {input.val} {params.set_args}"
        " --set train.device={config[device]} --threads {threads} --out {params.out_dir} --no-progress > {log} 2>&1"


rule embed_shrec17:
    input:
        model=f"{SHREC_DIR}/models/{{variant}}/best.pt",
        data=expand(f"{SHREC_DIR}/data/{{part}}.h5", part=SHREC_SPLITS),
    output:
        expand(f"{SHREC_DIR}/embeddings/{{{{variant}}}}/{{part}}.h5", part=SHREC_SPLITS),
    log:
        f"{RESULTS}/logs/embed/shrec17/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/shrec17/{{variant}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} holovae embed --model {input.model} --data {input.data} --out {output}"
        " --device {config[device]} --no-progress > {log} 2>&1"


rule evaluate_shrec17:
    input:
        model=f"{SHREC_DIR}/models/{{variant}}/best.pt",
        history=f"{SHREC_DIR}/models/{{variant}}/history.json",
        embeddings=expand(f"{SHREC_DIR}/embeddings/{{{{variant}}}}/{{part}}.h5", part=SHREC_SPLITS),
        test=f"{SHREC_DIR}/data/test.h5",
    output:
        f"{SHREC_DIR}/eval/{{variant}}.json",
    params:
        emb_dir=lambda wc, input: os.path.dirname(input.embeddings[0]),
        ev_args=evaluate_args(),
        data=lambda wc: shlex.quote(f"data={shrec_data_label()}"),
    log:
        f"{RESULTS}/logs/evaluate/shrec17/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/shrec17/{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        # SHREC'17 perturbed: every model rotated, in training and test alike (split R/R)
        "holovae evaluate --model {input.model} --embeddings {params.emb_dir} --test-data {input.test}"
        " --history {input.history} --meta variant={wildcards.variant} --meta dataset=Shrec17 --meta split=R/R"
        " --meta {params.data} --meta bw={SHREC[bw]} --retrieval --clusters 0"
        " {params.ev_args}"
        " --threads {threads} --out {output} > {log} 2>&1"
