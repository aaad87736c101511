# Holographic-(V)AE: the paper's experiments as one workflow. The science lives in the
# `holovae` package; every rule calls its CLI, so each step can be run by hand. Rules are by
# stage (workflow/rules/<stage>.smk), fed by the dataset registry (workflow/rules/datasets.smk);
# the DAG is built from paths and config alone (no holovae or torch import).
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# `proteins: null` removes a section config/config.yaml brings
for _section in ("proteins", "aminoacids", "lba", "shrec17"):
    if _section in config and config[_section] is None:
        del config[_section]
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/mnist.smk"
include: "workflow/rules/structures.smk"
include: "workflow/rules/shrec17.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/aminoacids.smk"
include: "workflow/rules/lba.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
