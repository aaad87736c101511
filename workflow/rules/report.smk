# Tables (CSV + Markdown, the paper's value beside ours) and figures.


rule table:
    input:
        table_evals,
    output:
        csv=report(f"{RESULTS}/tables/{{table}}.csv", caption="../report/table.rst", category="Tables"),
        md=f"{RESULTS}/tables/{{table}}.md",
    wildcard_constraints:
        table="|".join(TABLES),
    log:
        f"{RESULTS}/logs/tables/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{table}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "holovae table {wildcards.table} --eval {input} --out {output.csv} > {log} 2>&1"


rule scorecard:
    input:
        expand(f"{RESULTS}/tables/{{table}}.csv", table=TABLES),
    output:
        report(f"{RESULTS}/reproduction.md", caption="../report/scorecard.rst", category="Scorecard"),
    params:
        sources=scorecard_sources(),
    log:
        f"{RESULTS}/logs/scorecard.log",
    benchmark:
        f"{RESULTS}/benchmarks/scorecard.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "holovae scorecard --tables {input} {params.sources} --out {output} > {log} 2>&1"


rule figure_mnist:
    input:
        model=f"{RESULTS}/mnist/models/{{variant}}/best.pt",
        data=lambda wc: f"{RESULTS}/mnist/data/{mnist_train_split(wc)}/test.h5",
        embeddings=f"{RESULTS}/mnist/embeddings/{{variant}}/test.h5",
    output:
        report(f"{RESULTS}/figures/{{fig}}_{{kind}}_{{variant}}.png", caption="../report/figure.rst", category="Figures"),
    wildcard_constraints:
        fig="fig2|fig3",
        kind="canonical|umap|prior_samples|interpolations|overlays",
    params:
        kind=lambda wc: wc.kind.replace("_", "-"),
        seed=config["evaluate"]["seed"],
    log:
        f"{RESULTS}/logs/figures/{{fig}}_{{kind}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{fig}}_{{kind}}_{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "holovae figure {params.kind} --model {input.model} --data {input.data} --embeddings {input.embeddings}"
        " --seed {params.seed} --out {output} > {log} 2>&1"
