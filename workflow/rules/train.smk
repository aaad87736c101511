# One H-(V)AE per variant of every dataset (MNIST, protein neighbourhoods, amino-acid runs,
# Shrec17): `holovae train` with the variant's settings; a changed setting retrains the variant,
# an interrupted training resumes. A published model of the authors (proteins.pretrained) is
# imported instead: the variant "pretrained".


rule train:
    input:
        train=lambda wc: dataset(wc.dataset).data(wc.variant, "train"),
        val=lambda wc: dataset(wc.dataset).data(wc.variant, "val"),
    output:
        model=f"{RESULTS}/{{dataset}}/models/{{variant}}/best.pt",
        history=f"{RESULTS}/{{dataset}}/models/{{variant}}/history.json",
    wildcard_constraints:
        dataset="|".join(TRAINED) or "none",
        variant=r"[A-Za-z0-9_.\-]+",
    params:
        # the settings themselves are params, so editing a variant in the config retrains it
        settings=lambda wc: variant_settings(wc.dataset, wc.variant),
        set_args=lambda wc: as_set_args(variant_settings(wc.dataset, wc.variant)),
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.model),
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{variant}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=stage_mem_mb("train"),
        runtime=stage_runtime("train"),
    shell:
        "holovae train --train {input.train} --val {input.val} {params.set_args}"
        " --set train.device={params.device} --threads {threads} --out {params.out_dir} --no-progress > {log} 2>&1"


localrules:
    import_pretrained,


# downloads (its sha256 pinned in the checksum lock at the first download) and converts
rule import_pretrained:
    output:
        model=f"{RESULTS}/proteins/models/{PRETRAINED_VARIANT}/best.pt",
    params:
        source=lambda wc: shlex.quote(pretrained_spec()["id"]),
        urls=lambda wc: " ".join(f"--url {shlex.quote(u)}" for u in pretrained_spec().get("urls") or []),
        sha256=lambda wc: f"--sha256 {pretrained_spec()['sha256']}" if pretrained_spec().get("sha256") else "",
        lock=DOWNLOAD_LOCK,
        download_dir=f"{RESULTS}/download/pretrained",
    log:
        f"{RESULTS}/logs/train/proteins/{PRETRAINED_VARIANT}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/proteins/{PRETRAINED_VARIANT}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "holovae import-checkpoint {params.source} {params.urls} {params.sha256} --lock {params.lock}"
        " --download-dir {params.download_dir} --out {output.model} --no-progress > {log} 2>&1"


# the variant "pretrained" is imported, never trained (its name is reserved by the schema)
ruleorder: import_pretrained > train
