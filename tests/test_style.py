"""House style that a machine can check: ruff is clean over the package, tests and benchmarks."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    targets = [p for p in ("src", "tests", "benchmarks") if (ROOT / p).exists()]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
