# Protein structures -> Zernike coefficients, in shards: the neighbourhoods of every residue
# (proteins: group L<lmax>/<part>) or each residue's own atoms (aminoacids: group pool/<part>).
# One job per shard of structures, so thousands of them spread over cores or cluster nodes;
# `merge` joins the shards of a group.


rule prepare_structures_shard:
    input:
        lambda wc: structure_shards(wc.dataset, Path(wc.group).name)[int(wc.shard)],
    output:
        h5=f"{RESULTS}/{{dataset}}/data/{{group}}/shard{{shard}}.h5",
        skipped=f"{RESULTS}/{{dataset}}/data/{{group}}/shard{{shard}}.skipped.tsv",
    wildcard_constraints:
        dataset="proteins|aminoacids",
        group=r"(L\d+|pool)/(train|val|test)",
        shard=r"\d+",
    params:
        options=structure_options,
        part=lambda wc: Path(wc.group).name,
    log:
        f"{RESULTS}/logs/prepare/{{dataset}}/{{group}}/shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/{{dataset}}/{{group}}/shard{{shard}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "holovae prepare-structures {input} --out {output.h5} --skipped {output.skipped} --split {params.part}"
        " {params.options} --threads {threads} --no-progress > {log} 2>&1"
