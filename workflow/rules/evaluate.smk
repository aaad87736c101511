# Reconstruction, latent-space classification/clustering and equivariance of one variant.


rule evaluate_mnist:
    input:
        model=f"{RESULTS}/mnist/models/{{variant}}/best.pt",
        history=f"{RESULTS}/mnist/models/{{variant}}/history.json",
        embeddings=expand(f"{RESULTS}/mnist/embeddings/{{{{variant}}}}/{{part}}.h5", part=("train", "val", "test")),
        test=lambda wc: f"{RESULTS}/mnist/data/{mnist_train_split(wc)}/test.h5",
    output:
        f"{RESULTS}/mnist/eval/{{variant}}.json",
    params:
        meta=lambda wc: mnist_variant_meta(wc.variant),
        emb_dir=lambda wc, input: os.path.dirname(input.embeddings[0]),
        ev_args=evaluate_args(),
    log:
        f"{RESULTS}/logs/evaluate/mnist/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/mnist/{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "holovae evaluate --model {input.model} --embeddings {params.emb_dir} --test-data {input.test}"
        " --history {input.history} {params.meta} {params.ev_args}"
        " --threads {threads} --out {output} > {log} 2>&1"
