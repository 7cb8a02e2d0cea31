# `snakemake readme` rewrites the results table of README.md from the claims (never by hand).


rule readme:
    """Regenerate README.md's results table from the claims of this run."""
    input:
        f"{RESULTS}/summary.md",
    output:
        touch(f"{RESULTS}/.readme_updated"),
    log:
        f"{RESULTS}/logs/readme.log",
    params:
        py=PY,
        common=COMMON,
        papers=" ".join(PLAN.papers),
    shell:
        "{params.py} summary {params.common} --papers {params.papers} "
        "--readme README.md > {log} 2>&1"
