# Ligand binding affinity (Table 2, Table S10, Figure 4D): the pockets of protein–ligand
# complexes (PDBbind layout) are cut into residue neighbourhoods with the ligand's atoms,
# transformed exactly as the training data of the protein-neighbourhood model
# lba.protein_variant, embedded by its encoder and summed per complex; regressors are fitted on
# a split at <= 30% sequence identity (ATOM3D's lists when given) with several seeds.
from holovae.data.embedded import embedded_lba_directory

LBA = config.get("lba")
LBA_FEATURE_RUNS = ("hae", "zernike_inv") + (("zernike_inv_other",) if LBA and LBA.get("other_channel_baseline") else ())


ATOM3D_DIR = f"{RESULTS}/download/atom3d_lba"


localrules:
    download_atom3d_lba,


rule download_atom3d_lba:
    output:
        f"{ATOM3D_DIR}/{LBA['atom3d']['archive_name'] if LBA and LBA.get('atom3d') else 'lba.tar.gz'}",
    params:
        urls=lambda wc: " ".join(f"--url {shlex.quote(u)}" for u in LBA["atom3d"]["urls"]),
        checks=lambda wc: f"--md5 {LBA['atom3d']['md5']}" if LBA["atom3d"].get("md5") else "",
        lock=DOWNLOAD_LOCK,
    log:
        f"{RESULTS}/logs/download/atom3d_lba.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/atom3d_lba.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=240,
    shell:
        "holovae download {params.urls} {params.checks} --lock {params.lock} --out {output} --no-progress > {log} 2>&1"


rule extract_atom3d_lba:
    input:
        rules.download_atom3d_lba.output,
    output:
        directory(f"{ATOM3D_DIR}/extracted"),
    log:
        f"{RESULTS}/logs/download/atom3d_lba_extract.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/atom3d_lba_extract.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        # into a temporary folder first: an interrupted extraction leaves nothing that looks finished
        "(rm -rf {output}.part && mkdir -p {output}.part && tar -xf {input} -C {output}.part"
        " && mv {output}.part {output}) > {log} 2>&1"


def lba_complexes():
    if LBA["source"] == "embedded":
        return str(embedded_lba_directory())
    folder = Path(LBA["directory"] or "")
    if not folder.is_dir():
        raise ValueError(f"config lba.directory: {folder} is not a directory")
    return str(folder)


def lba_index():
    if LBA["source"] == "embedded":
        return str(embedded_lba_directory() / "affinities.csv")
    return LBA["index"]


def lba_pocket_options():
    """The pocket of lba.protocol (paper: Cα within 10 Å; authors: ATOM3D's 6 Å pocket), its
    distance replaced by lba.pocket_cutoff when that is set."""
    cutoff = LBA.get("pocket_cutoff")
    return f"--protocol {LBA['protocol']}" + (f" --pocket-cutoff {cutoff}" if cutoff is not None else "")


def lba_model():
    variant = LBA["protein_variant"]
    if variant == PRETRAINED_VARIANT:       # the authors' published encoder (pretrained.smk)
        return pretrained_model()
    if not PROTEINS or variant not in PROTEINS["variants"]:
        raise ValueError(f"config lba.protein_variant: {variant!r} is not a variant of config proteins.variants")
    return f"{RESULTS}/proteins/models/{variant}/best.pt"


def lba_targets():
    if not LBA:
        return []
    targets = expand(f"{RESULTS}/tables/{{table}}.{{ext}}", table=LBA["tables"], ext=("csv", "md"))
    if LBA.get("figures", {}).get("scatter", True):
        targets.append(f"{RESULTS}/figures/fig4D_lba_hae.png")
    return targets


def lba_evals(wildcards=None):
    return [f"{RESULTS}/lba/eval/{f}.json" for f in LBA_FEATURE_RUNS] if LBA else []


if LBA and LBA["source"] == "atom3d":

    rule prepare_lba_atom3d:
        input:
            model=lambda wc: lba_model(),
            atom3d=f"{ATOM3D_DIR}/extracted",
        output:
            h5=f"{RESULTS}/lba/data/pockets{{other}}.h5",
            skipped=f"{RESULTS}/lba/data/pockets{{other}}.skipped.tsv",
            lists=directory(f"{RESULTS}/lba/data/pockets{{other}}.lists"),
        wildcard_constraints:
            other="|_other",
        params:
            complexes=lambda wc, input: " ".join(
                f"--atom3d {input.atom3d}/{LBA['atom3d']['dataset_dir']}/data/{p}" for p in ("train", "val", "test")),
            index=lambda wc: f"--index {shlex.quote(lba_index())}" if lba_index() else "",
            # the "other element" channel: the transform of the model, one more channel (no model has it)
            transform=lambda wc, input: "--model " + input.model if not wc.other else _lba_other_transform(input.model),
            ids=lambda wc: f"--ids {shlex.quote(LBA['ids'])}" if LBA.get("ids") else "",
            pocket=lambda wc: lba_pocket_options(),
        log:
            f"{RESULTS}/logs/lba/prepare_lba{{other}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/lba/prepare_lba{{other}}.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=240,
        shell:
            "holovae prepare-lba {params.complexes} --lists-out {output.lists} {params.index} {params.transform} {params.ids}"
            " {params.pocket} --receptor larger"
            " --out {output.h5} --skipped {output.skipped} --threads {threads} --no-progress > {log} 2>&1"

else:

    rule prepare_lba:
        input:
            model=lambda wc: lba_model(),
        output:
            h5=f"{RESULTS}/lba/data/pockets{{other}}.h5",
            skipped=f"{RESULTS}/lba/data/pockets{{other}}.skipped.tsv",
        wildcard_constraints:
            other="|_other",
        params:
            complexes=lambda wc: lba_complexes(),
            # the embedded complexes ship pockets cut to what their 10 Å neighbourhoods need
            receptor=lambda wc: "pocket" if LBA["source"] == "embedded" else LBA["receptor"],
            index=lambda wc: f"--index {shlex.quote(lba_index())}" if lba_index() else "",
            # the "other element" channel: the transform of the model, one more channel (no model has it)
            transform=lambda wc, input: "--model " + input.model if not wc.other else _lba_other_transform(input.model),
            ids=lambda wc: f"--ids {shlex.quote(LBA['ids'])}" if LBA.get("ids") else "",
            pocket=lambda wc: lba_pocket_options(),
        log:
            f"{RESULTS}/logs/lba/prepare_lba{{other}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/lba/prepare_lba{{other}}.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=240,
        shell:
            "holovae prepare-lba --complexes {params.complexes:q} {params.index} {params.transform} {params.ids}"
            " {params.pocket} --receptor {params.receptor}"
            " --out {output.h5} --skipped {output.skipped} --threads {threads} --no-progress > {log} 2>&1"


def _lba_other_transform(model_path):
    """The protein model's transform options with the extra channel, read from its training data's
    parameters in the model file (at job time: the model exists then)."""
    import torch

    attrs = torch.load(model_path, map_location="cpu", weights_only=False).get("data_attrs") or {}
    return (f"--lmax {attrs['lmax']} --n-max {attrs['n_max']} --r-max {attrs['r_max']}"
            f" --elements {','.join(attrs['elements'])} --other-channel"
            f" --normalization {attrs['normalization'] or 'none'} --radial {attrs['radial']}")


def lba_fixed_lists():
    return LBA["source"] == "atom3d" or bool(LBA.get("lists"))


def lba_split_lists(input):
    if LBA["source"] == "atom3d":
        return f"--lists {input.lists}"
    return f"--lists {shlex.quote(LBA['lists'])}" if LBA.get("lists") else ""


rule lba_split:
    input:
        lists=lambda wc: f"{RESULTS}/lba/data/pockets.lists" if LBA["source"] == "atom3d" else [],
    output:
        f"{RESULTS}/lba/split.json",
    params:
        complexes=lambda wc: "" if LBA["source"] == "atom3d" else f"--complexes {shlex.quote(lba_complexes())}",
        s=lambda wc: LBA["split"],
        lists=lambda wc, input: lba_split_lists(input),
        folds=lambda wc: f"--folds {LBA['split']['folds']}" if LBA["split"].get("folds") and not lba_fixed_lists() else "",
        ids=lambda wc: f"--ids {shlex.quote(LBA['ids'])}" if LBA.get("ids") else "",
    log:
        f"{RESULTS}/logs/lba/split.log",
    benchmark:
        f"{RESULTS}/benchmarks/lba/split.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "holovae lba-split {params.complexes} --out {output} {params.lists} {params.folds} {params.ids}"
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
        features="hae|zernike_inv|zernike_inv_other",
    params:
        kind=lambda wc: "hae" if wc.features == "hae" else "zernike_inv",
        model=lambda wc, input: f"--model {input.model}" if wc.features == "hae" else "",
        regressors=lambda wc: " ".join(LBA["regressors"]),
        seeds=lambda wc: " ".join(str(s) for s in LBA["seeds"]),
    log:
        f"{RESULTS}/logs/lba/regress_{{features}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lba/regress_{{features}}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "holovae lba-regress --data {input.data} --split {input.split} --features {params.kind} {params.model}"
        " --regressors {params.regressors} --seeds {params.seeds} --rf-grid {config[lba][rf_grid]}"
        " --protocol {config[lba][protocol]}"
        " --meta variant={wildcards.features} --meta dataset=LBA --threads {threads} --device {config[device]}"
        " --out {output.json} --predictions {output.predictions} > {log} 2>&1"


rule figure_lba_scatter:
    input:
        f"{RESULTS}/lba/eval/{{features}}.predictions.csv",
    output:
        report(f"{RESULTS}/figures/fig4D_lba_{{features}}.png", caption="../report/figure4D.rst", category="Figures"),
    wildcard_constraints:
        features="hae|zernike_inv|zernike_inv_other",
    log:
        f"{RESULTS}/logs/figures/fig4D_lba_{{features}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/fig4D_lba_{{features}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "holovae figure lba-scatter --predictions {input} --regressor random_forest"
        " --title 'H-AE pocket embedding + random forest' --out {output} > {log} 2>&1"
