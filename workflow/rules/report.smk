rule report:
    input:
        run_metrics(),
        coordgate_experiments(),
    output:
        index=report(f"{RESULTS}/index.html", caption="../report/index.rst", category="Results"),
        summary=f"{RESULTS}/summary.json",
    log:
        f"{RESULTS}/logs/report.log",
    params:
        args=PRESET_ARG,
        runs=RUNS,
        out=RESULTS,
    threads: 1
    resources:
        runtime=scaled_runtime("report", 30),
        mem_mb=resource("report", "mem_mb", 4000),
    shell:
        "{WCONV} report --runs {params.runs} --out {params.out} {params.args} > {log} 2>&1"
