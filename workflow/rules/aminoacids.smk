# Amino-acid conformations (Tables S5, S6, S9 amino-acid rows; Figure 4A): each residue's own
# atoms, centred at its Cα, transformed to L = 4. Structures are split by structure like the
# protein neighbourhoods; training sets of each size are drawn from the training pool with the
# residue types balanced, one draw (and seed) per repeat; the classifiers are fitted by 5-fold
# cross-validation on the test embeddings.

AMINO = config.get("aminoacids")


wildcard_constraints:
    run=r"[A-Za-z0-9_.\-]+",
    n=r"\d+",
    repeat=r"\d+",


def amino_shards(part):
    return shards(split_of(AMINO, "aminoacids"), part, AMINO["shard_size"])


def amino_runs():
    """{run name: settings} of every model the configured ablations need (shared runs once)."""
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


def amino_run(run):
    try:
        return AMINO_RUNS[run]
    except KeyError:
        raise ValueError(f"amino-acid run {run!r} is not one the config's ablations need") from None


def amino_run_settings(run):
    r = amino_run(run)
    m = AMINO["models"][r["model"]]
    model = dict(AMINO["architecture"], vae=m["vae"])
    train = dict(AMINO["train"], batch_size=r["batch_size"], seed=r["repeat"], lambda_kl=m["beta"])
    if r["n"] == 0:   # the untrained model (the n_train = 0 rows)
        train["epochs"] = 0
    return {"model": model, "train": train}


def amino_meta(run):
    r = amino_run(run)
    meta = {"variant": run, "dataset": "Amino acids", "n_train": r["n"], "repeat": r["repeat"],
            "beta": AMINO["models"][r["model"]]["beta"]}
    return " ".join(f"--meta {shlex.quote(f'{k}={v}')}" for k, v in meta.items())


def amino_train_data(wildcards):
    n = amino_run(wildcards.run)["n"]
    # n = 0: no training, but the input normalisation still comes from the training pool
    return f"{RESULTS}/aminoacids/data/train_pool.h5" if n == 0 else \
        f"{RESULTS}/aminoacids/data/train_n{n}_r{amino_run(wildcards.run)['repeat']}.h5"


def amino_evals_for(table):
    if table == "tableS5":
        runs = [r for r, s in AMINO_RUNS.items() if s["model"] in AMINO["size_ablation"]["models"]
                and s["n"] in {x["n"] for x in AMINO["size_ablation"]["sizes"]}]
    elif table == "tableS6":
        b = AMINO["beta_ablation"]
        runs = [r for r, s in AMINO_RUNS.items() if s["model"] in b["models"] and s["n"] == b["n_train"]]
    else:
        runs = list(AMINO_RUNS)
    return [f"{RESULTS}/aminoacids/eval/{r}.json" for r in runs]


def amino_targets():
    if not AMINO:
        return []
    targets = expand(f"{RESULTS}/tables/{{table}}.{{ext}}", table=AMINO["tables"], ext=("csv", "md"))
    run = (AMINO.get("figures") or {}).get("latent_run")
    if run:
        amino_run(run)
        targets.append(f"{RESULTS}/figures/fig4A_latent_{run}.png")
    return targets


rule prepare_residues_shard:
    input:
        lambda wc: amino_shards(wc.part)[int(wc.shard)],
    output:
        h5=f"{RESULTS}/aminoacids/data/{{part}}/shard{{shard}}.h5",
        skipped=f"{RESULTS}/aminoacids/data/{{part}}/shard{{shard}}.skipped.tsv",
    wildcard_constraints:
        shard=r"\d+",
    params:
        t=lambda wc: AMINO["transform"],
        elements=lambda wc: ",".join(AMINO["transform"]["elements"]),
        drop_ca=lambda wc: "--drop-ca" if AMINO["transform"]["drop_ca"] else "--no-drop-ca",
    log:
        f"{RESULTS}/logs/prepare_residues/{{part}}_shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_residues/{{part}}_shard{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "holovae prepare-structures {input} --clouds residue --out {output.h5} --skipped {output.skipped}"
        " --split {wildcards.part} {params.drop_ca}"
        " --lmax {params.t[lmax]} --n-max {params.t[n_max]} --r-max {params.t[r_max]} --elements {params.elements}"
        " --normalization {params.t[normalization]} --radial {params.t[radial]} --secondary none"
        " --threads {threads} --no-progress > {log} 2>&1"


rule merge_residues:
    input:
        h5=lambda wc: [f"{RESULTS}/aminoacids/data/{wc.part}/shard{i}.h5"
                       for i in range(len(amino_shards(wc.part)))],
        skipped=lambda wc: [f"{RESULTS}/aminoacids/data/{wc.part}/shard{i}.skipped.tsv"
                            for i in range(len(amino_shards(wc.part)))],
    output:
        h5=f"{RESULTS}/aminoacids/data/{{part}}_pool.h5",
        skipped=f"{RESULTS}/aminoacids/data/{{part}}_pool.skipped.tsv",
    log:
        f"{RESULTS}/logs/merge_residues/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/merge_residues/{{part}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "holovae merge {input.h5} --out {output.h5} --skipped {input.skipped} --skipped-out {output.skipped} > {log} 2>&1"


rule subset_residues_train:
    input:
        f"{RESULTS}/aminoacids/data/train_pool.h5",
    output:
        f"{RESULTS}/aminoacids/data/train_n{{n}}_r{{repeat}}.h5",
    log:
        f"{RESULTS}/logs/subset_residues/train_n{{n}}_r{{repeat}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/subset_residues/train_n{{n}}_r{{repeat}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "holovae subset {input} --out {output} --n {wildcards.n} --balanced --seed {wildcards.repeat} > {log} 2>&1"


rule subset_residues_eval:
    input:
        f"{RESULTS}/aminoacids/data/{{part}}_pool.h5",
    output:
        f"{RESULTS}/aminoacids/data/{{part}}.h5",
    wildcard_constraints:
        part="val|test",
    params:
        n=lambda wc: AMINO[f"n_{wc.part}"],
        seed=lambda wc: AMINO["seed"],
    log:
        f"{RESULTS}/logs/subset_residues/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/subset_residues/{{part}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "holovae subset {input} --out {output} --n {params.n} --seed {params.seed} > {log} 2>&1"


rule train_aminoacids:
    input:
        train=amino_train_data,
        val=f"{RESULTS}/aminoacids/data/val.h5",
    output:
        model=f"{RESULTS}/aminoacids/models/{{run}}/best.pt",
        history=f"{RESULTS}/aminoacids/models/{{run}}/history.json",
    params:
        set_args=lambda wc: as_set_args(amino_run_settings(wc.run)),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    log:
        f"{RESULTS}/logs/train/aminoacids/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/aminoacids/{{run}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    shell:
        "holovae train --train {input.train} --val {input.val} {params.set_args}"
        " --set train.device={config[device]} --threads {threads} --out {params.out_dir} --no-progress > {log} 2>&1"


rule embed_aminoacids:
    input:
        model=f"{RESULTS}/aminoacids/models/{{run}}/best.pt",
        data=f"{RESULTS}/aminoacids/data/test.h5",
    output:
        f"{RESULTS}/aminoacids/embeddings/{{run}}/test.h5",
    log:
        f"{RESULTS}/logs/embed/aminoacids/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/aminoacids/{{run}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} holovae embed --model {input.model} --data {input.data} --out {output}"
        " --device {config[device]} --no-progress > {log} 2>&1"


rule evaluate_aminoacids:
    input:
        model=f"{RESULTS}/aminoacids/models/{{run}}/best.pt",
        history=f"{RESULTS}/aminoacids/models/{{run}}/history.json",
        embeddings=f"{RESULTS}/aminoacids/embeddings/{{run}}/test.h5",
        test=f"{RESULTS}/aminoacids/data/test.h5",
    output:
        f"{RESULTS}/aminoacids/eval/{{run}}.json",
    params:
        emb_dir=lambda wc, input: os.path.dirname(input.embeddings),
        meta=lambda wc: amino_meta(wc.run),
        ev_args=evaluate_args(),
        folds=lambda wc: AMINO["cv_folds"],
    log:
        f"{RESULTS}/logs/evaluate/aminoacids/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/aminoacids/{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "holovae evaluate --model {input.model} --embeddings {params.emb_dir} --test-data {input.test}"
        " --history {input.history} {params.meta} --cv-folds {params.folds} --clusters 20"
        " {params.ev_args}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule figure_aminoacids_latent:
    input:
        model=f"{RESULTS}/aminoacids/models/{{run}}/best.pt",
        data=f"{RESULTS}/aminoacids/data/test.h5",
        embeddings=f"{RESULTS}/aminoacids/embeddings/{{run}}/test.h5",
    output:
        report(f"{RESULTS}/figures/fig4A_latent_{{run}}.png", caption="../report/figure4A.rst", category="Figures"),
    params:
        seed=config["evaluate"]["seed"],
    log:
        f"{RESULTS}/logs/figures/fig4A_latent_{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/fig4A_latent_{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "holovae figure umap --model {input.model} --data {input.data} --embeddings {input.embeddings}"
        " --seed {params.seed} --out {output} > {log} 2>&1"
