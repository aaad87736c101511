# Amino-acid conformations: the training sets of the size and beta ablations, drawn from the
# training pool with the residue types balanced (one draw, and seed, per repeat), and the
# validation / test sets drawn from their pools.


rule subset_aminoacids_train:
    input:
        f"{RESULTS}/aminoacids/data/pool/train.h5",
    output:
        f"{RESULTS}/aminoacids/data/train_n{{n}}_r{{repeat}}.h5",
    wildcard_constraints:
        n=r"\d+",
        repeat=r"\d+",
    log:
        f"{RESULTS}/logs/subset/aminoacids/train_n{{n}}_r{{repeat}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/subset/aminoacids/train_n{{n}}_r{{repeat}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "holovae subset {input} --out {output} --n {wildcards.n} --balanced --seed {wildcards.repeat} > {log} 2>&1"


rule subset_aminoacids_eval:
    input:
        f"{RESULTS}/aminoacids/data/pool/{{part}}.h5",
    output:
        f"{RESULTS}/aminoacids/data/{{part}}.h5",
    wildcard_constraints:
        part="val|test",
    params:
        n=lambda wc: AMINO[f"n_{wc.part}"],
        seed=lambda wc: AMINO["seed"],
    log:
        f"{RESULTS}/logs/subset/aminoacids/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/subset/aminoacids/{{part}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "holovae subset {input} --out {output} --n {params.n} --seed {params.seed} > {log} 2>&1"
