rule prepare:
    output:
        stamp=f"{DATA}/.prepared/{{study}}.json",
    log:
        f"{RESULTS}/logs/prepare/{{study}}.log",
    params:
        args=PRESET_ARG,
        root=DATA,
        settings=data_settings,
    threads: resource("prepare", "cpus", 2)
    resources:
        runtime=scaled_runtime("prepare", 60),
        mem_mb=resource("prepare", "mem_mb", 8000),
    shell:
        "{WCONV} data prepare-study {wildcards.study} {params.args} --root {params.root} "
        "--stamp {output.stamp} > {log} 2>&1"
