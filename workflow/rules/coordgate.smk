# The CoordGate study's stand-alone experiments; its deblurring grid runs through rule `train`.
rule coordgate_experiment:
    output:
        f"{RESULTS}/coordgate/{{experiment}}/results.json",
    log:
        f"{RESULTS}/logs/coordgate/{{experiment}}.log",
    params:
        settings_file=lambda wildcards: job_settings_file("coordgate", wildcards.experiment),
        out=lambda wildcards: f"{RESULTS}/coordgate/{wildcards.experiment}",
        settings=lambda wildcards: json.dumps(
            PARAMS["coordgate"]["experiments"][wildcards.experiment], sort_keys=True
        ),
    threads: 1
    resources:
        runtime=scaled_runtime("train", 60),
        mem_mb=scaled_mem("train", 8000),
    run:
        write_job_settings(params.settings_file)
        shell(
            "{WCONV} coordgate {wildcards.experiment} --params {params.settings_file} "
            "--out {params.out} > {log} 2>&1"
        )
