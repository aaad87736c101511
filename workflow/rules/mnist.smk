# MNIST: images -> the sphere -> spherical Fourier coefficients, one folder per training
# rotation (NR: upright training digits, R: rotated; the test digits are rotated either way).


rule prepare_mnist:
    input:
        lambda wc: [download_path("mnist", f) for f in MNIST["download"]["files"]] if MNIST["source"] == "download" else [],
    output:
        train=f"{RESULTS}/mnist/data/{{rotation}}/train.h5",
        val=f"{RESULTS}/mnist/data/{{rotation}}/val.h5",
        test=f"{RESULTS}/mnist/data/{{rotation}}/test.h5",
    wildcard_constraints:
        rotation="NR|R",
    params:
        source=lambda wc: f"{RESULTS}/download/mnist" if MNIST["source"] == "download" else "embedded",
        rotate=lambda wc: "--rotate-train" if wc.rotation == "R" else "",
        subset=lambda wc: " ".join(
            f"--{flag} {MNIST[key]}" for flag, key in (("n-train", "n_train"), ("n-test", "n_test")) if MNIST.get(key)
        ),
        m=lambda wc: MNIST,
        out_dir=lambda wc, output: os.path.dirname(output.train),
    log:
        f"{RESULTS}/logs/prepare/mnist/{{rotation}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/mnist/{{rotation}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} holovae prepare-mnist --source {params.source} --out-dir {params.out_dir}"
        " {params.rotate} --rotate-test {params.subset} --bw {params.m[bw]} --lmax {params.m[lmax]}"
        " --quadrature {params.m[quadrature]} --val-fraction {params.m[val_fraction]}"
        " --rotation-chunk {params.m[rotation_chunk]} --seed {params.m[seed]} > {log} 2>&1"
