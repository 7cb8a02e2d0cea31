"""Compare the claims of two suite runs: did a change (a speed-up, a refactor) move a verdict?

    python benchmarks/compare_claims.py BEFORE AFTER [--papers topology lora_risk]

BEFORE and AFTER are results folders (``results/``, holding ``<paper>/claims.json``) or single
``claims.json`` files. For every claim in either run it prints the two statuses and the two
intervals (or the headline measured values where a claim has no interval), and marks a line
``CHANGED`` when the status differs and ``moved`` when the interval moved by more than
``--rtol`` of its width. Exit status 1 when any status changed, so it can gate a script.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

PAPERS = ("topology", "teleportation", "lora_risk", "collateral", "certified")


def load(path: Path, papers) -> dict[tuple[str, str], dict]:
    files = [path] if path.is_file() else [path / p / "claims.json" for p in papers]
    out = {}
    for f in files:
        if f.exists():
            for c in json.loads(f.read_text()):
                if c["paper"] in papers:
                    out[(c["paper"], c["id"])] = c
    return out


def fmt_interval(c: dict | None) -> str:
    if c is None:
        return "-"
    iv = c.get("interval")
    if iv:
        return f"[{iv[0]:.4g}, {iv[1]:.4g}] n={c.get('n_seeds')}"
    return ""


def moved(a: dict | None, b: dict | None, rtol: float) -> bool:
    if not a or not b or not a.get("interval") or not b.get("interval"):
        return False
    (a0, a1), (b0, b1) = a["interval"], b["interval"]
    if not all(math.isfinite(v) for v in (a0, a1, b0, b1)):
        return False
    width = max(abs(a1 - a0), abs(b1 - b0), 1e-12)
    return max(abs(a0 - b0), abs(a1 - b1)) > rtol * width


def compare(before: dict, after: dict, rtol: float) -> tuple[list[str], int]:
    lines, changed = [], 0
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        sa, sb = (a or {}).get("status", "-"), (b or {}).get("status", "-")
        mark = "CHANGED" if sa != sb else ("moved" if moved(a, b, rtol) else "")
        changed += sa != sb
        lines.append(f"{key[0]:<13} {key[1]:<40} {sa:>12} -> {sb:<12} {fmt_interval(a):>34} -> "
                     f"{fmt_interval(b):<34} {mark}")
    return lines, changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--papers", nargs="+", default=list(PAPERS), choices=PAPERS)
    ap.add_argument("--rtol", type=float, default=0.5, help="'moved' when an end moved by more than this x width")
    a = ap.parse_args(argv)
    before, after = load(a.before, a.papers), load(a.after, a.papers)
    if not before or not after:
        print(f"no claims found in {a.before if not before else a.after}", file=sys.stderr)
        return 2
    lines, changed = compare(before, after, a.rtol)
    print("\n".join(lines))
    print(f"{len(lines)} claims, {changed} status changes")
    return int(changed > 0)


if __name__ == "__main__":
    sys.exit(main())
