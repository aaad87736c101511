# Shrec17: meshes -> ray-cast spherical images -> spherical Fourier coefficients, in shards read
# straight out of the challenge's zips (group bw<bw>/<part>; `merge` joins them). Offline
# (source: synthetic) the meshes are procedural primitives in SHREC's layout, labelled SYNTHETIC
# wherever they appear.


rule synthetic_shrec17:
    output:
        labels=expand(f"{RESULTS}/shrec17/synthetic/{{part}}.csv", part=PARTS),
        meshes=directory(expand(f"{RESULTS}/shrec17/synthetic/{{part}}_perturbed", part=PARTS)),
    params:
        s=lambda wc: SHREC["synthetic"],
        out_dir=lambda wc, output: os.path.dirname(output.labels[0]),
    log:
        f"{RESULTS}/logs/prepare/shrec17/synthetic.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/shrec17/synthetic.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "holovae synthetic-meshes --out-dir {params.out_dir} --train {params.s[train]} --val {params.s[val]}"
        " --test {params.s[test]} --stretch {params.s[stretch]} --jitter {params.s[jitter]} --seed {params.s[seed]}"
        " > {log} 2>&1"


rule raycast_shrec17_shard:
    input:
        meshes=lambda wc: shrec_meshes(wc.part),
        labels=lambda wc: shrec_labels(),
    output:
        h5=f"{RESULTS}/shrec17/data/bw{{bw}}/{{part}}/shard{{shard}}.h5",
        skipped=f"{RESULTS}/shrec17/data/bw{{bw}}/{{part}}/shard{{shard}}.skipped.tsv",
    wildcard_constraints:
        bw=r"\d+",
        part="train|val|test",
        shard=r"\d+",
    params:
        labels=lambda wc, input: " ".join(f"--labels {shlex.quote(p)}" for p in input.labels),
        shards=lambda wc: SHREC["shards"][wc.part],
        s=lambda wc: SHREC,
    log:
        f"{RESULTS}/logs/prepare/shrec17/bw{{bw}}/{{part}}/shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/shrec17/bw{{bw}}/{{part}}/shard{{shard}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        "holovae prepare-shrec17 --meshes {input.meshes} {params.labels} --out {output.h5}"
        " --skipped {output.skipped} --shard {wildcards.shard} --shards {params.shards}"
        " --bw {wildcards.bw} --lmax {params.s[lmax]} --quadrature {params.s[quadrature]}"
        " --standardize {params.s[standardize]} --max-skipped-fraction {params.s[max_skipped_fraction]}"
        " --threads {threads} --no-progress > {log} 2>&1"
