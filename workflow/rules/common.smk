# Everything the rules need from params.yaml, computed once: the validated settings of the chosen
# preset, the grid's run ids, and helpers. Rules stay thin and hold no logic.
import dataclasses
import json
import re
import socket
import sys
import time
from pathlib import Path

import yaml

from wconv.errors import UserError
from wconv.io import write_yaml
from wconv.study import resolve_params, run_config, run_ids
from wconv.vocabulary import PREFIX_TO_STUDY, RUN_ID_PATTERN, STUDY_PREFIX_PATTERN, RunId

PARAMS_FILE = "params.yaml"
# Settings flow one way: params.yaml <- its preset <- --configfile files <- --config (later
# wins; docs/cluster.md). Snakemake's own `config` cannot tell them apart (and a --configfile
# replaces the Snakefile's configfile), so params.yaml is read here and the command-line layer
# comes from Snakemake's settings. Jobs get these settings as files, never params.yaml again.
OVERRIDES = dict(workflow.config_settings.overwrite_config)
# `--config rehearse=N` (docs/rehearsal.md): every cell of the grid runs N real training steps,
# a validation pass and a checkpoint round trip instead of training, into its own folder, and
# the workflow ends with the cost estimate. It is a mode of the workflow, not a study setting.
try:
    REHEARSE_STEPS = int(OVERRIDES.pop("rehearse", 0) or 0)
    if REHEARSE_STEPS < 0:
        raise ValueError(REHEARSE_STEPS)
except ValueError:
    raise WorkflowError("--config rehearse=N needs a whole number of steps, e.g. rehearse=20")
try:
    with open(PARAMS_FILE) as handle:
        PARAMS = resolve_params(yaml.safe_load(handle) or {}, overrides=OVERRIDES)
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
TRAIN_JOB = PARAMS.get("workflow", {}).get("train_job", "run")
# Rehearsals never share a folder with runs: nothing there can pass for a finished run.
REHEARSALS = f"{RESULTS}/rehearsals/{PRESET or 'default'}"


# Downloads and the report need no GPU and little time: on a cluster they run in the Snakemake
# process on the login node (which has the internet access compute nodes often lack), not as
# jobs; only training and the CoordGate experiments are submitted (docs/cluster.md).
localrules:
    prepare,
    report,
    estimate,


wildcard_constraints:
    run=RUN_ID_PATTERN,
    study=STUDY_PREFIX_PATTERN,
    experiment=r"oned|padding",


def resource(rule_name, key, default):
    return PARAMS.get("resources", {}).get(rule_name, {}).get(key, default)


def scaled(rule_name, key, default, runs=1):
    # A retried job (time-out, out of memory, preemption) gets more on each attempt.
    return lambda wildcards, attempt: resource(rule_name, key, default) * attempt * runs


def scaled_runtime(rule_name, default, runs=1):
    # `runs`: a job that trains several runs one after another needs the time of all.
    return scaled(rule_name, "runtime", default, runs)


def scaled_mem(rule_name, default):
    return scaled(rule_name, "mem_mb", default)


def prepared_stamp(study):
    return f"{DATA}/.prepared/{study}.json"


def study_of_run(wildcards):
    return prepared_stamp(RunId.parse(wildcards.run).prefix)


def study_of_cell(wildcards):
    return prepared_stamp(wildcards.cell.split("/", 1)[0])


def cell_jobs():
    """`workflow.train_job: cell`: the grid cells by their tuple of seeds (one train rule each,
    since a rule's outputs are fixed patterns), each cell as a wildcard constraint."""
    seeds = {}
    for run_id in map(RunId.parse, RUN_IDS):
        seeds.setdefault(run_id.cell, []).append(run_id.seed)
    by_seeds = {}
    for cell, cell_seeds in seeds.items():
        by_seeds.setdefault(tuple(cell_seeds), []).append(cell)
    return {key: "|".join(map(re.escape, cells)) for key, cells in by_seeds.items()}


def runs_of(output):
    """The run ids whose metrics.json are a train job's outputs."""
    return [str(Path(path).parent.relative_to(RUNS)) for path in output]


# As rule params these make Snakemake rerun a job whose settings changed in params.yaml (its
# default rerun trigger "params"); compute settings (device, threads, amp) do not retrain a run.
def data_settings(wildcards):
    return json.dumps(PARAMS[PREFIX_TO_STUDY[wildcards.study]]["data"], sort_keys=True)


def settings_of(runs):
    configs = [run_config(PARAMS, run_id) for run_id in runs]
    settings = [{k: v for k, v in config.items() if k != "compute"} for config in configs]
    return json.dumps(settings[0] if len(settings) == 1 else settings, sort_keys=True)


def run_settings(wildcards):
    return settings_of([wildcards.run])


def cell_settings(seeds):
    # A function of the wildcards alone: Snakemake records (and reruns on) only params that are
    # not derived from a job's input or output files, so a params function taking `output` would
    # never retrain a cell whose settings changed.
    def settings(wildcards):
        first = RunId.parse(f"{wildcards.cell}/s{seeds[0]}")
        return settings_of([str(dataclasses.replace(first, seed=seed)) for seed in seeds])

    return settings


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


def job_config_file(root, run_id):
    # The resolved settings of the run, handed to its job as a file (start_job).
    return f"{root}/{run_id}/job-config.yaml"


def train_runs(output, log):
    """Train the runs of a train job's outputs in one `wconv train` process."""
    runs = runs_of(output)
    for run_id in runs:
        start_job("train", job_config_file(RUNS, run_id), log, run_id)
    configs = " ".join(job_config_file(RUNS, run_id) for run_id in runs)
    folders = " ".join(f"{RUNS}/{run_id}" for run_id in runs)
    shell(f"{WCONV} train --config {configs} --out {folders} >> {log} 2>&1")


def start_job(command, job_config, log, run_id):
    # The run config goes next to the run (atomically: a killed job never leaves half a file)
    # and is handed to `wconv train|rehearse --config`: the job runs what Snakemake resolved.
    write_yaml(job_config, run_config(PARAMS, run_id))
    # Appended, with a header per session: a retry keeps the first session's log (and the
    # SIGTERM message that explains why it stopped).
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        handle.write(f"=== wconv {command} {run_id}: {socket.gethostname()}, {time.ctime()}\n")


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
    # metrics.json too: DVC tracks it, and a copy DVC removed must be rewritten.
    return [
        f"{RESULTS}/index.html",
        f"{RESULTS}/summary.json",
        f"{RESULTS}/metrics.json",
        *run_metrics(),
        *coordgate_experiments(),
    ]


def rehearsal_outputs():
    return [f"{REHEARSALS}/{run_id}/rehearsal.json" for run_id in RUN_IDS]


def study_targets():
    return [f"{REHEARSALS}/cost_estimate.csv"] if REHEARSE_STEPS else report_outputs()
