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
        out=lambda wildcards: f"{RUNS}/{wildcards.run}",
        # The resolved settings of this run, handed to the job as a file (write_run_config).
        job_config=lambda wildcards: f"{RUNS}/{wildcards.run}/job-config.yaml",
        settings=run_settings,
    threads: resource("train", "cpus", 2)
    resources:
        runtime=scaled_runtime("train", 480),
        mem_mb=scaled_mem("train", 16000),
        gpu=resource("train", "gpu", 0),
    run:
        start_job("train", params.job_config, log[0], wildcards.run)
        shell("{WCONV} train --config {params.job_config} --out {params.out} >> {log} 2>&1")
