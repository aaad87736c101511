# Ligand binding affinity (Table 2, Table S10, Figure 4D): the pockets of protein–ligand
# complexes (PDBbind layout, or ATOM3D's LBA files) are cut into residue neighbourhoods with the
# ligand's atoms, transformed exactly as the training data of the protein model
# lba.protein_variant, embedded by its encoder and summed per complex; regressors are fitted on
# a split at <= 30% sequence identity (ATOM3D's lists when given) with several seeds.


rule extract_atom3d_lba:
    input:
        lambda wc: download_path("lba", LBA["atom3d"]["archive_name"]),
    output:
        directory(f"{RESULTS}/download/lba/extracted"),
    log:
        f"{RESULTS}/logs/download/lba/extract.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/lba/extract.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        # into a temporary folder first: an interrupted extraction leaves nothing that looks finished
        "(rm -rf {output}.part && mkdir -p {output}.part && tar -xf {input} -C {output}.part"
        " && mv {output}.part {output}) > {log} 2>&1"


rule prepare_lba:
    input:
        unpack(lba_prepare_inputs),
    output:
        **lba_prepare_outputs(),
    wildcard_constraints:
        other="|_other",
    params:
        complexes=lambda wc, input, output: lba_complex_options(input, output),
        # the "other element" channel: the model's transform with one more channel (no model has it)
        other=lambda wc: "--other-channel" if wc.other else "",
        options=lambda wc: lba_prepare_options(),
    log:
        f"{RESULTS}/logs/lba/prepare{{other}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lba/prepare{{other}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "holovae prepare-lba {params.complexes} --model {input.model} {params.other} {params.options}"
        " --out {output.h5} --skipped {output.skipped} --threads {threads} --no-progress > {log} 2>&1"


rule lba_split:
    input:
        unpack(lba_split_inputs),
    output:
        f"{RESULTS}/lba/split.json",
    params:
        options=lambda wc, input: lba_split_options(input),
        s=lambda wc: LBA["split"],
    log:
        f"{RESULTS}/logs/lba/split.log",
    benchmark:
        f"{RESULTS}/benchmarks/lba/split.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "holovae lba-split {params.options} --out {output}"
        " --method {params.s[method]} --min-identity {params.s[min_identity]} --seed {params.s[seed]}"
        " --val-fraction {params.s[val_fraction]} --threads {threads} > {log} 2>&1"


rule lba_regress:
    input:
        data=lambda wc: f"{RESULTS}/lba/data/pockets{'_other' if wc.features == 'zernike_inv_other' else ''}.h5",
        split=f"{RESULTS}/lba/split.json",
        model=lambda wc: lba_model() if wc.features == "hae" else [],
    output:
        json=f"{RESULTS}/lba/eval/{{features}}.json",
        predictions=f"{RESULTS}/lba/eval/{{features}}.predictions.csv",
    wildcard_constraints:
        features="|".join(LBA_FEATURES) or "none",
    params:
        kind=lambda wc: "hae" if wc.features == "hae" else "zernike_inv",
        model=lambda wc, input: f"--model {input.model}" if wc.features == "hae" else "",
        regressors=lambda wc: " ".join(LBA["regressors"]),
        seeds=lambda wc: " ".join(str(s) for s in LBA["seeds"]),
        lba=lambda wc: LBA,
        device=config["device"],
    log:
        f"{RESULTS}/logs/lba/regress_{{features}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lba/regress_{{features}}.tsv"
    conda:
        "../../envs/holovae.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "holovae lba-regress --data {input.data} --split {input.split} --features {params.kind} {params.model}"
        " --regressors {params.regressors} --seeds {params.seeds} --rf-grid {params.lba[rf_grid]}"
        " --protocol {params.lba[protocol]}"
        " --meta variant={wildcards.features} --meta dataset=LBA --threads {threads} --device {params.device}"
        " --out {output.json} --predictions {output.predictions} > {log} 2>&1"
