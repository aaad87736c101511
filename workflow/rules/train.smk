# One H-(V)AE per variant of config mnist.variants.


rule train_mnist:
    input:
        unpack(mnist_data),
    output:
        model=f"{RESULTS}/mnist/models/{{variant}}/best.pt",
        history=f"{RESULTS}/mnist/models/{{variant}}/history.json",
    params:
        # the settings themselves are params, so editing a variant in the config retrains it
        settings=lambda wc: mnist_run_settings(wc.variant),
        set_args=lambda wc: as_set_args(mnist_run_settings(wc.variant)),
        out_dir=lambda wc, output: os.path.dirname(output.model),
    log:
        f"{RESULTS}/logs/train/mnist/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/mnist/{{variant}}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    shell:
        "holovae train --train {input.train} --val {input.val} {params.set_args}"
        " --set train.device={config[device]} --threads {threads} --out {params.out_dir} --no-progress > {log} 2>&1"
