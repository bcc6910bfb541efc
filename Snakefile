# The wconv study: prepare data -> one training job per grid cell -> tables, figures, index page.
# Every setting lives in params.yaml (validated before any job starts). Run it with
#   snakemake --profile slurm                      # on an HPC login node, one SLURM job per run
#   snakemake --profile profiles/local             # on this machine
#   snakemake --profile slurm --config preset=paper
#   snakemake --profile slurm --config preset=paper rehearse=20   # cost estimate first
#
# `snakemake --lint`: rules declare no conda env or container on purpose: every job runs in the
# project's .venv (`make install`), which SLURM jobs inherit; a per-rule env would rebuild torch.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/coordgate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/rehearse.smk"


rule all:
    input:
        study_targets(),
    default_target: True
