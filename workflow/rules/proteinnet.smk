# ProteinNet CASP12 (the paper's protein data): the archive of split lists, then one mmCIF per
# PDB entry they name. A checkpoint: which structures exist (and so the shards of the protein
# and amino-acid rules) is known only once the downloads are done. Local rules: on a cluster
# they run where the workflow runs, since compute nodes often have no internet.
PROTEINNET = config.get("proteinnet")
PROTEINNET_DIR = f"{RESULTS}/download/proteinnet"


localrules:
    download_proteinnet_archive,
    proteinnet_structures,


rule download_proteinnet_archive:
    output:
        f"{PROTEINNET_DIR}/{PROTEINNET['archive_name'] if PROTEINNET else 'casp12.tar.gz'}",
    params:
        urls=lambda wc: " ".join(f"--url {shlex.quote(u)}" for u in PROTEINNET["archive_urls"]),
        checks=lambda wc: f"--md5 {PROTEINNET['archive_md5']}" if PROTEINNET.get("archive_md5") else "",
        lock=DOWNLOAD_LOCK,
    log:
        f"{RESULTS}/logs/download/proteinnet_archive.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/proteinnet_archive.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=240,
    shell:
        "holovae download {params.urls} {params.checks} --lock {params.lock} --out {output} --no-progress > {log} 2>&1"


checkpoint proteinnet_structures:
    input:
        rules.download_proteinnet_archive.output,
    output:
        structures=directory(f"{PROTEINNET_DIR}/structures"),
        lists=directory(f"{PROTEINNET_DIR}/lists"),
    params:
        p=lambda wc: PROTEINNET,
        max_entries=lambda wc: f"--max-entries {PROTEINNET['max_entries']}" if PROTEINNET.get("max_entries") else "",
        mirrors=lambda wc: proteinnet_mirror_args(),
    log:
        f"{RESULTS}/logs/download/proteinnet_structures.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/proteinnet_structures.tsv"
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


def proteinnet_mirror_args():
    mirrors = PROTEINNET.get("mirrors")
    if mirrors is None:   # the library's: the wwPDB and PDBe archives
        return ""
    return " ".join(f"--mirror {shlex.quote(m)}" for m in mirrors) if mirrors else "--no-mirrors"


def proteinnet_split():
    """{"train": [...], "val": [...], "test": [...]} files of the downloaded ProteinNet split
    (calling this from an input function makes the job wait for the checkpoint)."""
    lists = checkpoints.proteinnet_structures.get().output.lists
    split = {}
    for part in ("train", "val", "test"):
        path = Path(lists) / f"{part}_files.txt"
        split[part] = [line.strip() for line in path.read_text().splitlines()
                       if line.strip() and not line.startswith("#")]
    return split
