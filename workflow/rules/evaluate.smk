# Reconstruction, latent-space classification / clustering (and SHREC'17 retrieval) and
# equivariance of one variant: one JSON, the input of the tables.


rule evaluate:
    input:
        model=f"{RESULTS}/{{dataset}}/models/{{variant}}/best.pt",
        history=f"{RESULTS}/{{dataset}}/models/{{variant}}/history.json",
        embeddings=lambda wc: [f"{RESULTS}/{wc.dataset}/embeddings/{wc.variant}/{p}.h5"
                               for p in dataset(wc.dataset).embed_parts],
        test=lambda wc: dataset(wc.dataset).data(wc.variant, "test"),
    output:
        f"{RESULTS}/{{dataset}}/eval/{{variant}}.json",
    wildcard_constraints:
        dataset="|".join(TRAINED) or "none",
    params:
        emb_dir=lambda wc, input: os.path.dirname(input.embeddings[0]),
        meta=lambda wc: meta_args(dataset(wc.dataset).meta(wc.variant)),
        options=lambda wc: f"{dataset(wc.dataset).eval_flags(wc.variant)} {evaluate_args()}",
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{dataset}}/{{variant}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=stage_mem_mb("evaluate"),
        runtime=stage_runtime("evaluate"),
    shell:
        "holovae evaluate --model {input.model} --embeddings {params.emb_dir} --test-data {input.test}"
        " --history {input.history} {params.meta} {params.options} --threads {threads} --out {output} > {log} 2>&1"
