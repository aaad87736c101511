# The shards of one group of data (proteins L<lmax>/<part>, aminoacids pool/<part>, shrec17
# bw<bw>/<part>) -> one HDF5, and their skipped lists -> one TSV.


rule merge:
    input:
        h5=shards_of,
        skipped=lambda wc: shards_of(wc, ".skipped.tsv"),
    output:
        h5=f"{RESULTS}/{{dataset}}/data/{{group}}.h5",
        skipped=f"{RESULTS}/{{dataset}}/data/{{group}}.skipped.tsv",
    wildcard_constraints:
        dataset="proteins|aminoacids|shrec17",
        group=r"(L\d+|pool|bw\d+)/(train|val|test)",
    log:
        f"{RESULTS}/logs/merge/{{dataset}}/{{group}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/merge/{{dataset}}/{{group}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "holovae merge {input.h5} --out {output.h5} --skipped {input.skipped} --skipped-out {output.skipped} > {log} 2>&1"
