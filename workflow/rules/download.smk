# Raw data: every download of the config (MNIST, SHREC'17, ATOM3D LBA, ProteinNet's split
# archive), checksum-verified or pinned in the checksum lock at the first download; ProteinNet's
# structures, a checkpoint (which files exist is known only once they are downloaded). Local
# rules: on a cluster they run where the workflow runs, as compute nodes often have no internet.


localrules:
    download,
    proteinnet_structures,


rule download:
    output:
        f"{RESULTS}/download/{{dataset}}/{{file}}",
    wildcard_constraints:
        dataset="|".join(DOWNLOADS) or "none",
        file="[^/]+",
    params:
        args=lambda wc: download_args(download_spec(wc)["urls"], download_spec(wc)["checks"]),
        lock=DOWNLOAD_LOCK,
    log:
        f"{RESULTS}/logs/download/{{dataset}}/{{file}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/{{dataset}}/{{file}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=600,
    shell:
        "holovae download {params.args} --lock {params.lock} --out {output} --no-progress > {log} 2>&1"


checkpoint proteinnet_structures:
    input:
        lambda wc: download_path("proteinnet", PROTEINNET["archive_name"]),
    output:
        structures=directory(f"{RESULTS}/download/proteinnet/structures"),
        lists=directory(f"{RESULTS}/download/proteinnet/lists"),
    params:
        p=lambda wc: PROTEINNET,
        max_entries=lambda wc: f"--max-entries {PROTEINNET['max_entries']}" if PROTEINNET.get("max_entries") else "",
        # null: the library's mirrors (the wwPDB and PDBe archives); [] none
        mirrors=lambda wc: "" if PROTEINNET.get("mirrors") is None else (
            " ".join(f"--mirror {shlex.quote(m)}" for m in PROTEINNET["mirrors"]) or "--no-mirrors"),
    log:
        f"{RESULTS}/logs/download/proteinnet/structures.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/proteinnet/structures.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 4
    resources:
        mem_mb=2000,
        runtime=1440,
    shell:
        "holovae download-structures --training {input}::{params.p[training_member]}"
        " --validation {input}::{params.p[validation_member]}"
        " --validation-fraction {params.p[validation_fraction]} --seed {params.p[seed]}"
        " --split-out {output.lists} --out {output.structures} --url-template {params.p[url_template]:q}"
        " {params.mirrors} --jobs {threads} --max-failures-fraction {params.p[max_failures_fraction]} {params.max_entries}"
        " --no-progress > {log} 2>&1"
