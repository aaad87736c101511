# A published model of the authors instead of a trained one (config proteins.pretrained): the
# archive is downloaded (no checksum is published: its sha256 is pinned in the checksum lock at
# the first download and checked on every later one) and converted by `holovae import-checkpoint`
# into the protein variant "pretrained", results/proteins/models/pretrained/best.pt, which
# lba.protein_variant and proteins.figures.umap_variant may name. Nothing here imports torch.
from holovae.pretrained import spec as pretrained_spec

PRETRAINED_VARIANT = "pretrained"
PRETRAINED = pretrained_spec(PROTEINS.get("pretrained")) if PROTEINS else None


def pretrained_model():
    if not PRETRAINED:
        raise ValueError(f"variant {PRETRAINED_VARIANT!r} needs config proteins.pretrained (a published model id)")
    return f"{RESULTS}/proteins/models/{PRETRAINED_VARIANT}/best.pt"


def pretrained_variant():
    """The "variant" entry of the pretrained model, for the rules that embed the protein splits
    with it: the splits are transformed by config proteins.transform at the model's degree."""
    pretrained_model()
    if PRETRAINED.lmax is None:
        raise ValueError(f"config proteins.pretrained: give `lmax` to embed the protein splits with {PRETRAINED.id!r}")
    return {"lmax": PRETRAINED.lmax}


if PRETRAINED:

    localrules:
        download_pretrained,

    rule download_pretrained:
        output:
            f"{RESULTS}/download/pretrained/{PRETRAINED.id}.tar.gz",
        params:
            urls=" ".join(f"--url {shlex.quote(u)}" for u in PRETRAINED.urls),
            checks=f"--sha256 {PRETRAINED.sha256}" if PRETRAINED.sha256 else "",
            lock=DOWNLOAD_LOCK,
        log:
            f"{RESULTS}/logs/download/pretrained.log",
        benchmark:
            f"{RESULTS}/benchmarks/download/pretrained.tsv"
        threads: 1
        resources:
            mem_mb=500,
            runtime=30,
        shell:
            "holovae download {params.urls} {params.checks} --lock {params.lock} --out {output:q} --no-progress"
            " > {log} 2>&1"

    rule import_pretrained:
        input:
            rules.download_pretrained.output,
        output:
            f"{RESULTS}/proteins/models/{PRETRAINED_VARIANT}/best.pt",
        params:
            model_id=shlex.quote(PRETRAINED.id),
        log:
            f"{RESULTS}/logs/import_pretrained.log",
        benchmark:
            f"{RESULTS}/benchmarks/import_pretrained.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=20,
        shell:
            "holovae import-checkpoint {input:q} --model-id {params.model_id} --out {output} > {log} 2>&1"

    # the model of the variant "pretrained" is imported, never trained
    ruleorder: import_pretrained > train_proteins
