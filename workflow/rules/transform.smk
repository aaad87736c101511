# Images -> sphere -> spherical Fourier coefficients (HDF5), one directory per training split.


def mnist_source_files(wildcards):
    if MNIST["source"] == "download":
        return expand(f"{RESULTS}/mnist/raw/{{file}}", file=MNIST_FILES)
    return []


rule prepare_mnist:
    input:
        mnist_source_files,
    output:
        train=f"{RESULTS}/mnist/data/{{split}}/train.h5",
        val=f"{RESULTS}/mnist/data/{{split}}/val.h5",
        test=f"{RESULTS}/mnist/data/{{split}}/test.h5",
    params:
        source=lambda wc: f"{RESULTS}/mnist/raw" if MNIST["source"] == "download" else "embedded",
        rotate=lambda wc: "--rotate-train" if wc.split == "R" else "",
        subset=" ".join(
            f"--{flag} {MNIST[key]}" for flag, key in (("n-train", "n_train"), ("n-test", "n_test")) if MNIST.get(key)
        ),
        out_dir=lambda wc, output: os.path.dirname(output.train),
    log:
        f"{RESULTS}/logs/prepare_mnist/{{split}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_mnist/{{split}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} holovae prepare-mnist --source {params.source} --out-dir {params.out_dir}"
        " {params.rotate} --rotate-test {params.subset} --bw {MNIST[bw]} --lmax {MNIST[lmax]}"
        " --quadrature {MNIST[quadrature]} --val-fraction {MNIST[val_fraction]}"
        " --rotation-chunk {MNIST[rotation_chunk]} --seed {MNIST[seed]} > {log} 2>&1"
