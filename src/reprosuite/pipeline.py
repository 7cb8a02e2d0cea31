"""The generic steps after ``run``: aggregate, tables, figures, claims — one function each.

The DAG runs them together, one ``report`` job per paper (``workflows/run.smk``); each also has its
own CLI command, and ``run_paper`` runs every step of a paper in one process (the contract test and
quick local checks use it).
Layout under ``results/<paper>/``: ``runs/`` (one folder per job), ``records/<experiment>.csv``
(every run of an experiment, long format), ``tables/<tabN>.csv|md``, ``figures/<figN>.pdf|png``,
``claims.json``. Experiment names and table names never collide (the registry checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from . import claims as claims_mod
from .config import repo_root
from .registry import Paper, iter_runs, resolve
from .runner import atomic_write, run_dir, run_job


def paper_dir(results: Path, paper: Paper) -> Path:
    return Path(results) / paper.id


def aggregate(paper: Paper, cfg: Any, experiment: str, results: Path) -> pd.DataFrame:
    """Concatenate every run of ``experiment`` into ``records/<experiment>.csv``."""
    exp = paper.experiment(experiment)
    frames = []
    for shard in exp.shards(cfg):
        for seed in exp.seeds(cfg):
            path = run_dir(results, paper.id, experiment, shard, int(seed)) / "records.csv"
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run `python -m reprosuite run {paper.id} "
                                        f"{experiment} --shard {shard} --seed {seed}` first")
            frames.append(pd.read_csv(path))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out = paper_dir(results, paper) / "records" / f"{experiment}.csv"
    atomic_write(out, lambda p: table.to_csv(p, index=False))
    return table


def table_path(paper: Paper, name: str, results: Path) -> Path:
    """Where the DataFrame called ``name`` lives: aggregated records or a derived table."""
    sub = "records" if name in paper.experiments else "tables"
    return paper_dir(results, paper) / sub / f"{name}.csv"


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _inputs(paper: Paper, names: tuple[str, ...], results: Path) -> dict[str, pd.DataFrame]:
    return {name: _read(table_path(paper, name, results)) for name in names}


def make_table(paper: Paper, cfg: Any, name: str, results: Path) -> pd.DataFrame:
    art = paper.tables[name]
    table = resolve(art.make)(_inputs(paper, art.inputs, results), cfg)
    folder = paper_dir(results, paper) / "tables"
    atomic_write(folder / f"{name}.csv", lambda p: table.to_csv(p, index=False))
    view = table.attrs.get("markdown", table)  # a table may carry a reader's view; the CSV keeps every column
    markdown = f"**{paper.id} {name}.** {art.caption}\n\n" + view.to_markdown(index=False, floatfmt=".4g") + "\n"
    atomic_write(folder / f"{name}.md", lambda p: p.write_text(markdown))
    return table


def make_figure(paper: Paper, cfg: Any, name: str, results: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    art = paper.figures[name]
    fig = resolve(art.make)(_inputs(paper, art.inputs, results), cfg)
    folder = paper_dir(results, paper) / "figures"
    for ext in ("pdf", "png"):
        atomic_write(folder / f"{name}.{ext}", lambda p, e=ext: fig.savefig(p, format=e, dpi=150, bbox_inches="tight"))
    # the caption beside the figure: read by people and by `snakemake --report` (reStructuredText)
    caption = f"**{paper.id} {name}.** {art.caption}\n"
    atomic_write(folder / f"{name}.caption.rst", lambda p: p.write_text(caption))
    plt.close(fig)


def check_claims(paper: Paper, cfg: Any, scale: str, results: Path, root: Path | None = None) -> list:
    """Evaluate ``experiments/<paper>/claims.yaml`` on every table present; write claims.json."""
    claims = claims_mod.load_claims((root or repo_root()) / "experiments" / paper.id / "claims.yaml")
    exps = paper.active_experiments(cfg)
    derived, _ = paper.active_artifacts(cfg)
    names = [n for n in (*exps, *derived) if table_path(paper, n, results).exists()]
    tables = _inputs(paper, tuple(names), results)
    checks = resolve(paper.checks) if paper.checks else {}
    out = claims_mod.evaluate(paper.id, claims, tables, checks, scale)
    claims_mod.write_claims(out, paper_dir(results, paper) / "claims.json")
    return out


def report(paper: Paper, cfg: Any, scale: str, results: Path) -> list:
    """Every light step of one paper in one process: aggregate each experiment, then its tables,
    figures and claims. The DAG runs this as one job per paper (one interpreter start-up instead of
    one per step)."""
    for experiment in paper.active_experiments(cfg):
        aggregate(paper, cfg, experiment, results)
    tables, figures = paper.active_artifacts(cfg)
    for name in tables:
        make_table(paper, cfg, name, results)
    for name in figures:
        make_figure(paper, cfg, name, results)
    return check_claims(paper, cfg, scale, results)


def run_paper(paper: Paper, cfg: Any, scale: str, results: Path, device: str = "cpu",
              data_dir: Path | None = None, threads: int | None = None) -> list:
    """Every step of one paper in this process (what the DAG does, without Snakemake)."""
    for experiment, shard, seed in iter_runs(paper, cfg):
        if not (run_dir(results, paper.id, experiment, shard, seed) / "records.csv").exists():
            run_job(paper, cfg, experiment=experiment, shard=shard, seed=seed, scale=scale,
                    device=device, results=results, data_dir=data_dir, threads=threads)
    return report(paper, cfg, scale, results)
