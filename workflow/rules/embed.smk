# Invariants z, frames and reconstructions of the train/val/test splits under each variant
# (one job per variant: loading the model costs more than embedding a few thousand digits).


rule embed_mnist:
    input:
        model=f"{RESULTS}/mnist/models/{{variant}}/best.pt",
        data=lambda wc: expand(
            f"{RESULTS}/mnist/data/{mnist_train_split(wc)}/{{part}}.h5", part=("train", "val", "test")
        ),
    output:
        expand(f"{RESULTS}/mnist/embeddings/{{{{variant}}}}/{{part}}.h5", part=("train", "val", "test")),
    log:
        f"{RESULTS}/logs/embed/mnist/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/mnist/{{variant}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    shell:
        "OMP_NUM_THREADS={threads} holovae embed --model {input.model} --data {input.data} --out {output}"
        " --device {config[device]} --no-progress > {log} 2>&1"
