# Holographic-(V)AE: the paper's experiments as one workflow. The science lives in the
# `holovae` package; every rule below calls its CLI, so each step can be run by hand.
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


# `proteins: null` (config/paper.yaml) removes the section config/config.yaml brings
if config.get("proteins", False) is None:
    del config["proteins"]
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/transform.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/proteins.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
