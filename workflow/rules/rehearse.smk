# `--config rehearse=N`: every grid cell's real training code for N steps, then the cost estimate
# (docs/rehearsal.md). Same data, settings, resources and cluster profile as rule train.
rule rehearse:
    input:
        study_of_run,
    output:
        f"{REHEARSALS}/{{run}}/rehearsal.json",
    log:
        f"{RESULTS}/logs/rehearse/{{run}}.log",
    params:
        out=lambda wildcards: f"{REHEARSALS}/{wildcards.run}",
        job_config=lambda wildcards: job_config_file(REHEARSALS, wildcards.run),
        steps=REHEARSE_STEPS,
        settings=run_settings,
    threads: resource("train", "cpus", 2)
    resources:
        runtime=scaled_runtime("rehearse", 30),
        mem_mb=scaled_mem("train", 16000),
        gpu=resource("train", "gpu", 0),
    run:
        start_job("rehearse", params.job_config, log[0], wildcards.run)
        shell(
            "{WCONV} rehearse --config {params.job_config} --out {params.out} "
            "--steps {params.steps} >> {log} 2>&1"
        )


rule estimate:
    input:
        rehearsal_outputs(),
    output:
        f"{REHEARSALS}/cost_estimate.csv",
    log:
        f"{RESULTS}/logs/estimate.log",
    params:
        rehearsals=lambda wildcards, output: Path(output[0]).parent,
    threads: 1
    run:
        shell("{WCONV} estimate --rehearsals {params.rehearsals} --out {output} > {log} 2>&1")
