# Generic rules: run -> aggregate -> table / figure -> check_claims -> summary.

# Steps that take seconds run on the submitting host under a cluster executor (one
# sbatch each would cost minutes of queueing and two Snakemake start-ups per step).
localrules:
    all,
    aggregate,
    table,
    figure,
    check_claims,
    summary,
    readme,


rule run:
    """One job per (paper, experiment, shard, seed): records + provenance."""
    input:
        run_needs,
    output:
        records=f"{RESULTS}/{{paper}}/runs/{{experiment}}/{{shard}}/seed{{seed}}/records.csv",
        provenance=f"{RESULTS}/{{paper}}/runs/{{experiment}}/{{shard}}/seed{{seed}}/provenance.json",
    log:
        f"{RESULTS}/logs/{{paper}}/{{experiment}}/{{shard}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{paper}}/run/{{experiment}}/{{shard}}/seed{{seed}}.tsv"
    params:
        py=PY,
        common=COMMON,
        device=config["device"],
        data_dir=DATA_DIR,
        resolved=resolved,
        settings_hash=settings_hash,
    threads: config["threads_per_job"]
    resources:
        mem_mb=run_resource("mem_mb", 2000),
        # a retry after a time-limit kill resumes from its checkpoint with twice the time
        runtime=lambda wc, attempt: run_resource("runtime", 30)(wc) * attempt,
        gpu=run_resource("gpu", 0),
    shell:
        "{params.py} run {wildcards.paper} {wildcards.experiment} --shard {wildcards.shard} "
        "--seed {wildcards.seed} {params.common} {params.resolved} --device {params.device} --threads {threads} "
        "{params.data_dir} > {log} 2>&1"


rule aggregate:
    """Every run of an experiment -> records/<experiment>.csv (long format)."""
    input:
        experiment_records,
    output:
        f"{RESULTS}/{{paper}}/records/{{name}}.csv",
    log:
        f"{RESULTS}/logs/{{paper}}/aggregate_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{paper}}/aggregate_{{name}}.tsv"
    params:
        py=PY,
        common=COMMON,
        resolved=resolved,
        settings_hash=settings_hash,
    shell:
        "{params.py} aggregate {wildcards.paper} {wildcards.name} {params.common} {params.resolved} > {log} 2>&1"


rule table:
    """Tables -> tables/<name>.csv and .md."""
    input:
        artifact_inputs("table"),
    output:
        csv=f"{RESULTS}/{{paper}}/tables/{{name}}.csv",
        md=f"{RESULTS}/{{paper}}/tables/{{name}}.md",
    log:
        f"{RESULTS}/logs/{{paper}}/table_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{paper}}/table_{{name}}.tsv"
    params:
        py=PY,
        common=COMMON,
        resolved=resolved,
    shell:
        "{params.py} table {wildcards.paper} {wildcards.name} {params.common} {params.resolved} > {log} 2>&1"


rule figure:
    """Tables -> figures/<name>.pdf and .png (figures read tables only)."""
    input:
        artifact_inputs("figure"),
    output:
        pdf=f"{RESULTS}/{{paper}}/figures/{{name}}.pdf",
        png=report(
            f"{RESULTS}/{{paper}}/figures/{{name}}.png",
            caption="report/figure.rst",
            category="{paper}",
            labels={"paper": "{paper}", "figure": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/{{paper}}/figure_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{paper}}/figure_{{name}}.tsv"
    params:
        py=PY,
        common=COMMON,
        resolved=resolved,
        caption=caption,
    shell:
        "{params.py} figure {wildcards.paper} {wildcards.name} {params.common} {params.resolved} > {log} 2>&1"


rule check_claims:
    """claims.yaml + every table of the paper -> claims.json (PASS/FAIL/SKIP/REPORT)."""
    input:
        tables=paper_tables,
        claims="experiments/{paper}/claims.yaml",
    output:
        f"{RESULTS}/{{paper}}/claims.json",
    log:
        f"{RESULTS}/logs/{{paper}}/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{paper}}/claims.tsv"
    params:
        py=PY,
        common=COMMON,
        resolved=resolved,
    shell:
        "{params.py} claims {wildcards.paper} {params.common} {params.resolved} > {log} 2>&1"


rule summary:
    """All claims -> summary.md."""
    input:
        expand(f"{RESULTS}/{{paper}}/claims.json", paper=list(PLAN.papers)),
    output:
        f"{RESULTS}/summary.md",
    log:
        f"{RESULTS}/logs/summary.log",
    params:
        py=PY,
        common=COMMON,
        papers=" ".join(PLAN.papers),
    shell:
        "{params.py} summary {params.common} --papers {params.papers} > {log} 2>&1"
