rule report:
    input:
        run_metrics(),
        coordgate_experiments(),
    output:
        index=report(f"{RESULTS}/index.html", caption="../report/index.rst", category="Results"),
        summary=f"{RESULTS}/summary.json",
        metrics=f"{RESULTS}/metrics.json",
    log:
        f"{RESULTS}/logs/report.log",
    params:
        # Kept with the results: the page links it as the settings the study ran with.
        settings_file=f"{RESULTS}/settings.yaml",
        # The runs root holds the inputs; the lint asks for a prefix derived from a file,
        # which a list of run folders has none of.
        runs=RUNS,
        out=lambda wildcards, output: Path(output.summary).parent,
    threads: 1
    resources:
        runtime=scaled_runtime("report", 30),
        mem_mb=scaled_mem("report", 4000),
    run:
        write_job_settings(params.settings_file)
        shell(
            "{WCONV} report --runs {params.runs} --out {params.out} "
            "--params {params.settings_file} > {log} 2>&1"
        )
