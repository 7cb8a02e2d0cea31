"""Command line: ``python -m reprosuite <command>``; the Snakemake rules shell out to it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import ConfigError
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
    p.add_argument("--scale", default=None, choices=SCALES, help="default: default (or the resolved file's)")
    p.add_argument("--results", type=Path, default=None, help="default: results/ at default scale, else results/<scale>/")
    if paper:
        p.add_argument("--resolved", type=Path, default=None,
                       help="read the resolved config from this file (what the workflow writes and every step reads)")
        p.add_argument("--seeds", default=None, help="override the seeds, e.g. 0,1,2")
        p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a paper setting (repeatable), validated like the YAML files")


def _load(args):
    """(paper, cfg): from the resolved-config file when given, else resolved here from the options."""
    from .config import parse_seeds, parse_sets, read_resolved, resolve_config, set_targets_someone
    from .workflow import default_results

    paper = get_paper(args.paper)
    if args.resolved is not None:
        scale, cfg = read_resolved(args.resolved, paper)
        if args.scale not in (None, scale):
            raise ConfigError(f"--scale {args.scale} does not match {args.resolved}, resolved at scale {scale}")
    else:
        scale = args.scale or "default"
        seeds = parse_seeds(args.seeds, "--seeds")
        sets = parse_sets(args.set)
        cfg = resolve_config(paper, scale, seeds=seeds, sets=sets)
        set_targets_someone(sets, {paper.id: cfg})
    args.scale = scale
    if args.results is None:
        args.results = Path(default_results(scale))
    return paper, cfg


def build_parser() -> argparse.ArgumentParser:
    # the listing imports every paper: only for --help, not for each job's start-up
    wants_help = len(sys.argv) < 2 or any(a in ("-h", "--help") for a in sys.argv[1:2])
    parser = argparse.ArgumentParser(prog="reprosuite", description=__doc__,
                                     epilog=_listing() if wants_help else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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

    p = sub.add_parser("config", help="print the resolved config of a paper at a scale (JSON)")
    _common(p)

    p = sub.add_parser("aggregate", help="records of one experiment -> tables/<experiment>.csv")
    _common(p)
    p.add_argument("experiment")

    for name, helptext in (("table", "tables -> tables/<name>.csv/.md"), ("figure", "tables -> figures/<name>.pdf/.png")):
        p = sub.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("name")

    p = sub.add_parser("claims", help="claims.yaml + tables -> claims.json")
    _common(p)

    p = sub.add_parser("report", help="aggregate + tables + figures + claims of a paper, in one process")
    _common(p)

    p = sub.add_parser("summary", help="every claims.json -> summary.md (+ the README table)")
    _common(p, paper=False)
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
    from .runner import OutputError

    try:
        return _main(args)
    except ConfigError as err:  # bad input: one line, no traceback
        print(f"reprosuite: {err}", file=sys.stderr)
        return 2
    except OutputError as err:  # unwritable folder, full disk: one line, nothing half-written
        print(f"reprosuite: {err}", file=sys.stderr)
        return 1


def _main(args) -> int:
    if args.command == "summary":
        from .workflow import default_results

        args.scale = args.scale or "default"
        args.results = args.results or Path(default_results(args.scale))
    elif hasattr(args, "paper"):
        paper, cfg = _load(args)
    if getattr(args, "scale", None) in ("smoke", "default"):
        # offline scales never consult a model or data hub (README: offline data)
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
    elif args.command == "config":
        import json

        from .config import to_dict

        print(json.dumps({"paper": paper.id, "scale": args.scale, "config": to_dict(cfg)}, indent=2, default=str))
    elif args.command == "run":
        from .runner import run_job

        frame = run_job(paper, cfg, experiment=args.experiment, shard=args.shard, seed=args.seed,
                        scale=args.scale, device=args.device, results=args.results,
                        data_dir=args.data_dir, threads=args.threads)
        print(f"{args.paper}/{args.experiment}/{args.shard}/seed{args.seed}: {len(frame)} records, "
              f"status {frame.attrs['status']}", file=sys.stderr)
    elif args.command == "aggregate":
        pipeline.aggregate(paper, cfg, args.experiment, args.results)
    elif args.command == "table":
        pipeline.make_table(paper, cfg, args.name, args.results)
    elif args.command == "figure":
        pipeline.make_figure(paper, cfg, args.name, args.results)
    elif args.command in ("claims", "report"):
        step = pipeline.check_claims if args.command == "claims" else pipeline.report
        for r in step(paper, cfg, args.scale, args.results):
            print(f"{r.status:6} {paper.id}/{r.id}: {r.measured} {r.reason}", file=sys.stderr)
    elif args.command == "summary":
        from .summary import write_summary

        write_summary(args.results, args.scale, args.papers, readme=args.readme)
    elif args.command == "local":
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
