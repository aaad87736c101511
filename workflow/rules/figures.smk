# The paper's figures (Figures 2, 3, 4A, 4B, 4D): one job per figure of the registry
# (FIGURES in datasets.smk), each drawn by `holovae figure` from its inputs.


rule figure:
    input:
        unpack(lambda wc: figure_spec(wc.figure)["inputs"]),
    output:
        report(f"{RESULTS}/figures/{{figure}}.png", caption="../report/figure.rst", category="Figures"),
    wildcard_constraints:
        figure="|".join(FIGURES) or "none",
    params:
        args=lambda wc, input: figure_spec(wc.figure)["args"].format(input=input),
    log:
        f"{RESULTS}/logs/figures/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{figure}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "holovae figure {params.args} --out {output} > {log} 2>&1"
