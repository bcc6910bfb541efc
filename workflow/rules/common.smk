# Everything the rules need from params.yaml, computed once: the validated settings of the chosen
# preset, the grid's run ids, and helpers. Rules stay thin and hold no logic.
import sys

from wconv.errors import UserError
import json

from wconv.study import PREFIX_TO_STUDY, resolve_params, run_config, run_ids

try:
    PARAMS = resolve_params(config, config.get("preset"))
except UserError as error:
    raise WorkflowError(str(error)) from None

PRESET = PARAMS.get("preset") or ""
PARAMS_FILE = "params.yaml"
# The rules call the CLI of the interpreter that runs Snakemake, so jobs find the same install
# (SLURM jobs inherit it through the executor's job script).
WCONV = f"{sys.executable} -m wconv.cli"
PRESET_ARG = f"--params {PARAMS_FILE}" + (f" --preset {PRESET}" if PRESET else "")
DATA = PARAMS["paths"]["data"]
RUNS = PARAMS["paths"]["runs"]
RESULTS = PARAMS["paths"]["results"]
RUN_IDS = run_ids(PARAMS)
ACTIVE_STUDIES = sorted({run_id.split("/", 1)[0] for run_id in RUN_IDS})


wildcard_constraints:
    run=r"(cls|den|cg)/[^/]+/[^/]+/k\d+/s\d+",
    study=r"cls|den|cg",
    experiment=r"oned|padding",


def resource(rule_name, key, default):
    return PARAMS.get("resources", {}).get(rule_name, {}).get(key, default)


def scaled_runtime(rule_name, default):
    # A retried job (time-out, preemption, bad node) gets more time on each attempt.
    return lambda wildcards, attempt: resource(rule_name, "runtime", default) * attempt


def prepared_stamp(study):
    return f"{DATA}/.prepared/{study}.json"


def study_of_run(wildcards):
    return prepared_stamp(wildcards.run.split("/", 1)[0])


# As rule params these make Snakemake rerun a job whose settings changed in params.yaml (its
# default rerun trigger "params"); compute settings (device, threads, amp) do not retrain a run.
def data_settings(wildcards):
    return json.dumps(PARAMS[PREFIX_TO_STUDY[wildcards.study]]["data"], sort_keys=True)


def run_settings(wildcards):
    config = run_config(PARAMS, wildcards.run)
    return json.dumps({k: v for k, v in config.items() if k != "compute"}, sort_keys=True)


def run_metrics():
    return [f"{RUNS}/{run_id}/metrics.json" for run_id in RUN_IDS]


def coordgate_experiments():
    experiments = (PARAMS.get("coordgate") or {}).get("experiments", {})
    if not (PARAMS.get("coordgate") or {}).get("activate", False):
        return []
    return [
        f"{RESULTS}/coordgate/{name}/results.json"
        for name, settings in experiments.items()
        if settings.get("activate", False)
    ]


def report_outputs():
    # The run folders are targets themselves: a deleted run is retrained even though the
    # report that once read it still exists.
    return [f"{RESULTS}/index.html", *run_metrics(), *coordgate_experiments()]
