# Holographic-(V)AE: the paper's experiments as one workflow. The science lives in the
# `holovae` package; every rule below calls its CLI, so each step can be run by hand.
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


# `proteins: null` removes a section config/config.yaml brings
for section in ("proteins", "aminoacids", "lba", "shrec17"):
    if section in config and config[section] is None:
        del config[section]
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/transform.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/proteinnet.smk"
include: "workflow/rules/proteins.smk"
include: "workflow/rules/pretrained.smk"
include: "workflow/rules/aminoacids.smk"
include: "workflow/rules/lba.smk"
include: "workflow/rules/shrec17.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
