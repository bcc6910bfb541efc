rule prepare:
    output:
        stamp=f"{DATA}/.prepared/{{study}}.json",
    log:
        f"{RESULTS}/logs/prepare/{{study}}.log",
    params:
        settings_file=lambda wildcards: job_settings_file("prepare", wildcards.study),
        root=lambda wildcards, output: Path(output.stamp).parent.parent,
        settings=data_settings,
    threads: resource("prepare", "cpus", 2)
    resources:
        runtime=scaled_runtime("prepare", 60),
        mem_mb=scaled_mem("prepare", 8000),
    run:
        write_job_settings(params.settings_file)
        shell(
            "{WCONV} data prepare-study {wildcards.study} --params {params.settings_file} "
            "--root {params.root} --stamp {output.stamp} > {log} 2>&1"
        )
