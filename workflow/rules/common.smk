# Everything the rules need from params.yaml, computed once: the validated settings of the chosen
# preset, the grid's run ids, and helpers. Rules stay thin and hold no logic.
import socket
import sys
import time
from pathlib import Path

from wconv.errors import UserError
from wconv.io import write_yaml
import json

import yaml

from wconv.study import PREFIX_TO_STUDY, resolve_params, run_config, run_ids

PARAMS_FILE = "params.yaml"
# Settings flow one way: params.yaml <- its preset <- --configfile files <- --config (later
# wins; docs/cluster.md). Snakemake's own `config` cannot tell them apart (and a --configfile
# replaces the Snakefile's configfile), so params.yaml is read here and the command-line layer
# comes from Snakemake's settings. Jobs get these settings as files, never params.yaml again.
try:
    with open(PARAMS_FILE) as handle:
        PARAMS = resolve_params(
            yaml.safe_load(handle) or {},
            overrides=workflow.config_settings.overwrite_config,
        )
except UserError as error:
    raise WorkflowError(str(error)) from None

PRESET = PARAMS.get("preset") or ""
# The rules call the CLI of the interpreter that runs Snakemake, so jobs find the same install
# (SLURM jobs inherit it through the executor's job script). A global on purpose, since a
# moved venv would otherwise change every job's params and retrain every run.
WCONV = f"{sys.executable} -m wconv.cli"
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


def scaled(rule_name, key, default):
    # A retried job (time-out, out of memory, preemption) gets more on each attempt.
    return lambda wildcards, attempt: resource(rule_name, key, default) * attempt


def scaled_runtime(rule_name, default):
    return scaled(rule_name, "runtime", default)


def scaled_mem(rule_name, default):
    return scaled(rule_name, "mem_mb", default)


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


def job_settings_file(step, name):
    return f"{RESULTS}/logs/{step}/{name}.settings.yaml"


def write_job_settings(path):
    """The settings Snakemake resolved, as the params file of one job (`wconv ... --params`).

    Written by the job itself, atomically: prepare, report and the CoordGate experiments see
    every --configfile/--config override, never params.yaml again. The preset is already
    applied; its entry stays, empty, so the settings keep their preset's name.
    """
    document = {key: value for key, value in PARAMS.items() if key != "preset"}
    if PRESET:
        document |= {"preset": PRESET, "presets": {PRESET: {}}}
    write_yaml(path, document)
    return path


def start_train_job(job_config, log, run_id):
    # The run config goes next to the run (atomically: a killed job never leaves half a file)
    # and is handed to `wconv train --config`: the job trains exactly what Snakemake resolved.
    write_yaml(job_config, run_config(PARAMS, run_id))
    # Appended, with a header per session: a retry keeps the first session's log (and the
    # SIGTERM message that explains why it stopped).
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        handle.write(f"=== wconv train {run_id}: {socket.gethostname()}, {time.ctime()}\n")


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
    # summary.json too: DVC tracks it, and a copy DVC removed must be rewritten.
    return [
        f"{RESULTS}/index.html",
        f"{RESULTS}/summary.json",
        *run_metrics(),
        *coordgate_experiments(),
    ]
