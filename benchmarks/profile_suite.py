"""Profile of a finished suite run: where the time goes, per paper and per experiment.

    python benchmarks/profile_suite.py --results results            # after `snakemake --cores 2`

Reads what the workflow already writes: each run's ``provenance.json`` (the experiment's own wall
and CPU time) and Snakemake's per-job ``benchmark:`` files under ``results/benchmarks/`` (the
whole job as the scheduler saw it, start-up included). Writes ``benchmarks/profile.md`` (the
table, pasted into ``benchmarks/README.md``) and ``benchmarks/profile.png`` (a bar chart).

Start-up overhead of a job = Snakemake's job seconds - the experiment's own wall seconds
(interpreter, imports, resolved config, provenance); each paper's one report job (aggregate,
tables, figures, claims) is counted whole.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def run_jobs(results: Path) -> pd.DataFrame:
    rows = []
    for prov in sorted(results.glob("*/runs/*/*/seed*/provenance.json")):
        meta = json.loads(prov.read_text())
        paper, exp, shard, seed = meta["paper"], meta["experiment"], meta["shard"], meta["seed"]
        bench = results / "benchmarks" / paper / "run" / exp / shard / f"seed{seed}.tsv"
        job_s = float(pd.read_csv(bench, sep="\t")["s"].iloc[0]) if bench.exists() else float("nan")
        rows.append({"paper": paper, "step": exp, "kind": "run", "wall_s": meta["wall_time_s"],
                     "cpu_s": meta.get("cpu_time_s", float("nan")), "job_s": job_s})
    return pd.DataFrame(rows)


def light_jobs(results: Path) -> pd.DataFrame:
    rows = []
    for bench in sorted(results.glob("benchmarks/*/*.tsv")):
        t = pd.read_csv(bench, sep="\t").iloc[0]
        kind = bench.stem.split("_", 1)[0]
        rows.append({"paper": bench.parent.name, "step": bench.stem, "kind": kind, "wall_s": float("nan"),
                     "cpu_s": float(t.get("cpu_time", float("nan"))), "job_s": float(t["s"])})
    return pd.DataFrame(rows)


def profile(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    jobs = pd.concat([run_jobs(results), light_jobs(results)], ignore_index=True)
    jobs["overhead_s"] = (jobs["job_s"] - jobs["wall_s"].fillna(0.0)).clip(lower=0.0)
    runs = jobs[jobs["kind"] == "run"]
    per_exp = runs.groupby(["paper", "step"]).agg(
        jobs=("job_s", "size"), job_s=("job_s", "sum"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"),
        longest_s=("job_s", "max"), overhead_per_job_s=("overhead_s", "mean")).reset_index()
    light = jobs[jobs["kind"] != "run"].groupby("paper").agg(
        jobs=("job_s", "size"), job_s=("job_s", "sum"), wall_s=("job_s", "sum"), cpu_s=("cpu_s", "sum"),
        longest_s=("job_s", "max"), overhead_per_job_s=("job_s", "mean")).reset_index().assign(
        step="report (aggregate, tables, figures, claims; one job per paper)")
    table = pd.concat([per_exp, light], ignore_index=True).sort_values(["paper", "job_s"], ascending=[True, False])
    per_paper = table.groupby("paper").agg(jobs=("jobs", "sum"), job_s=("job_s", "sum"), wall_s=("wall_s", "sum"),
                                           cpu_s=("cpu_s", "sum"), longest_s=("longest_s", "max")).reset_index()
    total = per_paper[["jobs", "job_s", "wall_s", "cpu_s"]].sum().to_frame().T.assign(paper="all", longest_s=float("nan"))
    return table, pd.concat([per_paper, total], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    table, per_paper = profile(args.results)
    args.out.mkdir(parents=True, exist_ok=True)
    md = ["Per paper (`job_s`: Snakemake's job seconds summed, start-up included; on c cores the DAG "
          "takes at least job_s / c):", "",
          per_paper.to_markdown(index=False, floatfmt=".1f"), "",
          "Per experiment (`wall_s`/`cpu_s`: the experiment's own time from provenance; "
          "`overhead_per_job_s`: Snakemake job time minus that, i.e. interpreter, imports, data loading):", "",
          table.to_markdown(index=False, floatfmt=".1f"), ""]
    (args.out / "profile.md").write_text("\n".join(md))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.28 * len(table) + 1))
    labels = [f"{p} / {s}" for p, s in zip(table["paper"], table["step"])]
    own = table["wall_s"].where(table["step"].str.startswith("report") == False, 0.0)  # noqa: E712
    ax.barh(labels, own, label="experiment's own time (s)")
    ax.barh(labels, table["job_s"] - own, left=own, label="start-up and data loading (s)")
    ax.set_xlabel("summed job time (s)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title("Where a default run spends its time")
    fig.savefig(args.out / "profile.png", dpi=120, bbox_inches="tight")
    print((args.out / "profile.md").read_text())


if __name__ == "__main__":
    main()
