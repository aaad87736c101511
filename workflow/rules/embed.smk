# Invariants z, frames and reconstructions of one part (train / val / test) of a variant's data.


rule embed:
    input:
        model=f"{RESULTS}/{{dataset}}/models/{{variant}}/best.pt",
        data=lambda wc: dataset(wc.dataset).data(wc.variant, wc.part),
    output:
        f"{RESULTS}/{{dataset}}/embeddings/{{variant}}/{{part}}.h5",
    wildcard_constraints:
        dataset="|".join(TRAINED) or "none",
        part="train|val|test",
    params:
        device=config["device"],
    log:
        f"{RESULTS}/logs/embed/{{dataset}}/{{variant}}/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{dataset}}/{{variant}}/{{part}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=stage_mem_mb("embed"),
        runtime=stage_runtime("embed"),
    shell:
        "OMP_NUM_THREADS={threads} holovae embed --model {input.model} --data {input.data} --out {output}"
        " --device {params.device} --no-progress > {log} 2>&1"
