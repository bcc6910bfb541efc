# Only metrics.json is declared: the run folder's checkpoints are the resume state and must survive
# Snakemake's cleanup of a failed or timed-out job. `workflow.train_job` in params.yaml says what
# one job trains.
if TRAIN_JOB == "run":

    # One job per run: on a cluster, one GPU job each.
    rule train:
        input:
            study_of_run,
        output:
            f"{RUNS}/{{run}}/metrics.json",
        log:
            f"{RESULTS}/logs/train/{{run}}.log",
        params:
            settings=run_settings,
        threads: resource("train", "cpus", 2)
        resources:
            runtime=scaled_runtime("train", 480),
            mem_mb=scaled_mem("train", 16000),
            gpu=resource("train", "gpu", 0),
        run:
            train_runs(output, log[0])

else:
    # One job per grid cell: its seeds one after another in one process, which imports torch
    # once. A rule's outputs are fixed patterns, so there is one rule per tuple of seeds.
    for seeds, cells in cell_jobs().items():

        rule:
            name:
                "train_s" + "_".join(map(str, seeds))
            input:
                study_of_cell,
            output:
                [f"{RUNS}/{{cell}}/s{seed}/metrics.json" for seed in seeds],
            log:
                f"{RESULTS}/logs/train/{{cell}}.log",
            wildcard_constraints:
                cell=cells,
            params:
                settings=cell_settings(seeds),
            threads: resource("train", "cpus", 2)
            resources:
                runtime=scaled_runtime("train", 480, runs=len(seeds)),
                mem_mb=scaled_mem("train", 16000),
                gpu=resource("train", "gpu", 0),
            run:
                train_runs(output, log[0])
