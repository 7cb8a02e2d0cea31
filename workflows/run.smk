# Generic rules: run -> report (aggregate, tables, figures, claims of a paper) -> summary.
import os

# Steps that take seconds run on the submitting host under a cluster executor (one
# sbatch each would cost minutes of queueing and two Snakemake start-ups per step).
localrules:
    all,
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


# The light steps of a paper (aggregate every experiment, then its tables, figures and claims)
# take seconds of work each; one job per paper pays one interpreter start-up for all of them.
# Rules are defined per paper because each writes its own list of files.
for _pid in PLAN.papers:

    rule:
        """Records of every run of a paper -> records/, tables/, figures/, claims.json."""
        name:
            f"report_{_pid}"
        localrule: True
        input:
            runs=PLAN.report_inputs(_pid),
            claims=f"experiments/{_pid}/claims.yaml",
        output:
            **{k: v for k, v in PLAN.report_outputs(_pid).items() if k != "pngs"},
            pngs=[
                report(png, caption=os.path.abspath(f"{os.path.splitext(png)[0]}.caption.rst"), category=_pid)
                for png in PLAN.report_outputs(_pid)["pngs"]
            ],
        log:
            f"{RESULTS}/logs/{_pid}/report.log",
        benchmark:
            f"{RESULTS}/benchmarks/{_pid}/report.tsv"
        params:
            py=PY,
            common=COMMON,
            paper=_pid,
            resolved=f"--resolved {shlex.quote(PLAN.papers[_pid].config_path)}",
            settings_hash=PLAN.papers[_pid].config_hash,
        shell:
            "{params.py} report {params.paper} {params.common} {params.resolved} > {log} 2>&1"


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
