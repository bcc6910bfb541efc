# One job per grid cell. Only metrics.json is declared: the run folder's checkpoints are the resume
# state and must survive Snakemake's cleanup of a failed or timed-out job.
rule train:
    input:
        study_of_run,
    output:
        f"{RUNS}/{{run}}/metrics.json",
    log:
        f"{RESULTS}/logs/train/{{run}}.log",
    params:
        args=PRESET_ARG,
        out=lambda wildcards: f"{RUNS}/{wildcards.run}",
        settings=run_settings,
    threads: resource("train", "cpus", 2)
    resources:
        runtime=scaled_runtime("train", 480),
        mem_mb=resource("train", "mem_mb", 16000),
        gpu=resource("train", "gpu", 0),
    shell:
        "{WCONV} train {params.args} --run-id {wildcards.run} --out {params.out} > {log} 2>&1"
