"""Command line: ``python -m reprosuite <command>``; the Snakemake rules shell out to it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .registry import SCALES, get_paper, iter_runs, load_papers


def _listing() -> str:
    lines = ["papers and experiments (python -m reprosuite run PAPER EXPERIMENT ...):"]
    for pid, paper in load_papers().items():
        lines.append(f"  {pid}: {paper.title}")
        for name, exp in paper.experiments.items():
            lines.append(f"      {name:<12} {exp.description}")
        arts = list(paper.tables) + list(paper.figures)
        if arts:
            lines.append(f"      artifacts: {', '.join(arts)}")
    return "\n".join(lines)


def _common(p: argparse.ArgumentParser, paper: bool = True) -> None:
    if paper:
        p.add_argument("paper")
    p.add_argument("--scale", default="default", choices=SCALES)
    p.add_argument("--results", type=Path, default=Path("results"))


def _load(args):
    from .config import load_config

    paper = get_paper(args.paper)
    return paper, load_config(paper, args.scale)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprosuite", description=__doc__,
                                     epilog=_listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list papers, experiments and their jobs at a scale")
    p.add_argument("--scale", default=None, choices=SCALES)

    p = sub.add_parser("run", help="run one job: (paper, experiment, shard, seed)")
    _common(p)
    p.add_argument("experiment")
    p.add_argument("--shard", default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--threads", type=int, default=None)

    p = sub.add_parser("aggregate", help="records of one experiment -> tables/<experiment>.csv")
    _common(p)
    p.add_argument("experiment")

    for name, helptext in (("table", "tables -> tables/<name>.csv/.md"), ("figure", "tables -> figures/<name>.pdf/.png")):
        p = sub.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("name")

    p = sub.add_parser("claims", help="claims.yaml + tables -> claims.json")
    _common(p)

    p = sub.add_parser("summary", help="every claims.json -> summary.md (+ the README table)")
    p.add_argument("--scale", default="default", choices=SCALES)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--papers", nargs="*", default=None)
    p.add_argument("--readme", type=Path, default=None, help="README whose results table to rewrite")

    p = sub.add_parser("local", help="run every step of a paper in this process (no Snakemake)")
    _common(p)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))

    p = sub.add_parser("fetch", help="download a paper-scale data set (needs internet)")
    p.add_argument("dataset", choices=("mnist", "cifar10", "cifar100"))
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "scale", None) in ("smoke", "default"):
        # offline scales never consult a model or data hub (shared/DATA.md)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from . import pipeline

    if args.command == "list":
        print(_listing())
        if args.scale:
            from .config import load_config

            for pid, paper in load_papers().items():
                for job in iter_runs(paper, load_config(paper, args.scale)):
                    print(pid, *job)
    elif args.command == "run":
        from .runner import run_job

        paper, cfg = _load(args)
        frame = run_job(paper, cfg, experiment=args.experiment, shard=args.shard, seed=args.seed,
                        scale=args.scale, device=args.device, results=args.results,
                        data_dir=args.data_dir, threads=args.threads)
        print(f"{args.paper}/{args.experiment}/{args.shard}/seed{args.seed}: {len(frame)} records, "
              f"status {frame.attrs['status']}", file=sys.stderr)
    elif args.command == "aggregate":
        pipeline.aggregate(*_load(args), args.experiment, args.results)
    elif args.command == "table":
        pipeline.make_table(*_load(args), args.name, args.results)
    elif args.command == "figure":
        pipeline.make_figure(*_load(args), args.name, args.results)
    elif args.command == "claims":
        paper, cfg = _load(args)
        for r in pipeline.check_claims(paper, cfg, args.scale, args.results):
            print(f"{r.status:6} {paper.id}/{r.id}: {r.measured} {r.reason}", file=sys.stderr)
    elif args.command == "summary":
        from .summary import write_summary

        write_summary(args.results, args.scale, args.papers, readme=args.readme)
    elif args.command == "local":
        paper, cfg = _load(args)
        for r in pipeline.run_paper(paper, cfg, args.scale, args.results, device=args.device):
            print(f"{r.status:6} {r.id}: measured {r.measured} expected {r.expected} {r.reason}")
    elif args.command == "fetch":
        from .data import image_dataset

        os.environ.pop("HF_HUB_OFFLINE", None)
        image_dataset(args.dataset, args.data_dir)
        print(f"{args.dataset} is in {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
