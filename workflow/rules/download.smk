# Raw data, checksum-verified. Only used when mnist.source is "download". Local rule: on a
# cluster it runs where the workflow runs, since compute nodes often have no internet.


localrules:
    download_mnist,


rule download_mnist:
    output:
        f"{RESULTS}/mnist/raw/{{file}}",
    params:
        urls=lambda wc: " ".join(f"--url {shlex.quote(u + wc.file)}" for u in MNIST["download"]["base_urls"]),
        checks=lambda wc: " ".join(
            f"--{flag} {value}"
            for flag, value in (
                ("md5", MNIST["download"]["files"][wc.file].get("md5")),
                ("decompressed-md5", MNIST["download"]["files"][wc.file].get("decompressed_md5")),
            )
            if value
        ),
        lock=DOWNLOAD_LOCK,
    log:
        f"{RESULTS}/logs/download/mnist/{{file}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/mnist/{{file}}.tsv"
    wildcard_constraints:
        file="|".join(MNIST_FILES),
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    shell:
        "holovae download {params.urls} {params.checks} --lock {params.lock} --out {output} --no-progress > {log} 2>&1"
