# Tables (CSV + Markdown, the paper's value beside ours), each built from the evaluations of the
# dataset that declares it, and the reproduction scorecard over all of them.


rule table:
    input:
        table_evals,
    output:
        csv=report(f"{RESULTS}/tables/{{table}}.csv", caption="../report/table.rst", category="Tables"),
        md=f"{RESULTS}/tables/{{table}}.md",
    wildcard_constraints:
        table="|".join(TABLE_DATASET) or "none",
    log:
        f"{RESULTS}/logs/tables/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{table}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "holovae table {wildcards.table} --eval {input} --out {output.csv} > {log} 2>&1"


rule scorecard:
    input:
        [f"{RESULTS}/tables/{t}.csv" for t in TABLE_DATASET],
    output:
        report(f"{RESULTS}/reproduction.md", caption="../report/scorecard.rst", category="Scorecard"),
    params:
        sources=scorecard_sources(),
    log:
        f"{RESULTS}/logs/scorecard.log",
    benchmark:
        f"{RESULTS}/benchmarks/scorecard.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "holovae scorecard --tables {input} {params.sources} --out {output} > {log} 2>&1"
