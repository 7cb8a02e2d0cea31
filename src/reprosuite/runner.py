"""The runner: owns files, seeds, devices, checkpoints and progress bars for one job.

One job = one (paper, experiment, shard, seed). The experiment function receives a validated
config, a ``RunContext`` and its shard parameters, and yields records (dicts). The runner adds
the identifying columns, stops cleanly at the first non-finite metric (``status = diverged``)
and writes, atomically, into ``results/<paper>/runs/<experiment>/<shard>/seed<seed>/``:

- ``records.csv``: long format, one row per evaluation;
- ``provenance.json``: resolved config, git sha, package versions, device, datasets, wall time;
- ``state.pt``: the resumable state an experiment saves with ``ctx.save_state``, stamped with
  the hash of the settings it was made with (kept after a kill, so a rerun resumes; a rerun with
  other settings starts afresh; removed when the run ends);
- ``artifacts/``: models and arrays other runs load with ``ctx.load_artifact``.

The run folder is checked for writing before any computation; a write that fails (read-only
folder, full disk) raises ``OutputError`` with a one-line message and leaves no partial file.
Files are created with the permissions the umask allows (group-readable under the usual 022 or
002), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import repo_root, to_dict

PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn", "networkx",
            "transformers", "peft", "datasets", "opacus", "snakemake", "reprosuite")


class Diverged(RuntimeError):
    """Raised by an experiment (or detected by the runner) when a run produces NaN or inf."""


class OutputError(OSError):
    """A result could not be written (unwritable folder, full disk); the message is one line."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code


def run_dir(results: Path, paper: str, experiment: str, shard: str, seed: int) -> Path:
    return Path(results) / paper / "runs" / experiment / shard / f"seed{seed}"


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any tuple of identifiers (stable across runs and machines)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def settings_hash(obj: Any) -> str:
    """Short stable hash of settings (a resolved config, shard parameters): JSON, sorted keys."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_mode() -> int:
    """0o666 less the process umask: what open() would give (mkstemp always gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _why(err: BaseException, folder: Path) -> str:
    """The reason of a failed write in a few words (torch hides ENOSPC in its own message)."""
    code = getattr(err, "errno", None)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if code == errno.ENOSPC or code == errno.EDQUOT or (code is None and free is not None and free < 1 << 20):
        return f"no space left on the device ({free if free is not None else '?'} bytes free)"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__


def _output_error(path: Path, err: BaseException) -> OutputError:
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    why = _why(err, folder)
    code = errno.ENOSPC if why.startswith("no space") else getattr(err, "errno", None) or errno.EIO
    return OutputError(f"cannot write {path}: {why}; free space or choose a writable results "
                       f"folder (--results DIR, or --config results=DIR)", code)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and move the result into place only once it is complete.

    Any failure (permissions, full disk, a serialiser error) leaves no file behind and, for
    I/O failures, raises ``OutputError`` with a one-line message naming the path and the cause.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _file_mode())
        os.close(fd)
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as err:
        raise _output_error(path, err) from err
    except RuntimeError as err:  # torch.save reports a full disk as RuntimeError (inline_container.cc)
        if "file write failed" in str(err) or "inline_container" in str(err) or "unexpected pos" in str(err):
            raise _output_error(path, err) from err
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a small probe file in it, or raise ``OutputError`` (one line)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        why = _why(err, folder if folder.exists() else folder.parent)
        raise OutputError(f"results folder {folder} is not writable: {why}; free space or choose "
                          f"another (--results DIR, or --config results=DIR)", err.errno) from err


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for but torch sees no CUDA device; use device=auto or cpu")
    return device


@dataclass
class RunContext:
    """What an experiment may use. It never opens result files itself."""

    paper: str
    experiment: str
    shard: str
    seed: int
    scale: str
    device: str
    results: Path
    data_dir: Path | None = None
    threads: int = 1
    datasets: dict[str, str | None] = field(default_factory=dict)
    config_hash: str = ""  # settings the checkpoint belongs to (resolved config + shard)

    @property
    def dir(self) -> Path:
        return run_dir(self.results, self.paper, self.experiment, self.shard, self.seed)

    # randomness -------------------------------------------------------------------------
    def seed_for(self, stage: str) -> int:
        """Per-stage seed derived from (paper, experiment, seed, stage); shards share it."""
        return derive_seed(self.paper, self.experiment, self.seed, stage)

    def numpy_rng(self, stage: str) -> np.random.Generator:
        return np.random.default_rng(self.seed_for(stage))

    def torch_generator(self, stage: str, device: str = "cpu"):
        import torch

        return torch.Generator(device=device).manual_seed(self.seed_for(stage))

    # bookkeeping -----------------------------------------------------------------------
    def use_dataset(self, name: str, stand_in_for: str | None = None) -> None:
        """Record the data set actually used (``stand_in_for`` names the paper's data set)."""
        self.datasets[name] = stand_in_for

    def progress(self, iterable: Iterable, total: int | None = None, desc: str = "") -> Iterator:
        from tqdm.auto import tqdm

        interactive = sys.stderr.isatty()
        return iter(tqdm(iterable, total=total, desc=desc or self.experiment, file=sys.stderr,
                         mininterval=0.5 if interactive else 30.0, disable=None if interactive else False,
                         leave=False))

    # checkpoints and artifacts ------------------------------------------------------------
    def save_state(self, state: Mapping[str, Any]) -> None:
        """Save resumable state (torch-serialisable) atomically; ``load_state`` returns it after a kill."""
        import torch

        blob = {"config_hash": self.config_hash, "state": dict(state)}
        atomic_write(self.dir / "state.pt", lambda p: torch.save(blob, p))

    def load_state(self) -> dict[str, Any] | None:
        """The state saved by an earlier attempt with the same settings, else None.

        A checkpoint made with other settings (or without a settings hash) is removed, so a run
        whose settings changed starts afresh instead of mixing records of two configs.
        """
        import torch

        path = self.dir / "state.pt"
        if not path.exists():
            return None
        blob = torch.load(path, weights_only=False, map_location="cpu")
        made_with = blob.get("config_hash") if isinstance(blob, dict) and "state" in blob else None
        if made_with is not None and made_with == "":  # saved by a hand-built context (no settings)
            return blob["state"]
        if made_with != self.config_hash:
            print(f"{self.paper}/{self.experiment}/{self.shard}/seed{self.seed}: checkpoint made with "
                  f"settings {made_with or 'unknown'}, these are {self.config_hash}: starting afresh",
                  file=sys.stderr)
            path.unlink(missing_ok=True)
            return None
        return blob["state"]

    def save_artifact(self, key: str, obj: Any) -> Path:
        import torch

        path = self.dir / "artifacts" / f"{key}.pt"
        atomic_write(path, lambda p: torch.save(obj, p))
        return path

    def load_artifact(self, experiment: str, shard: str, seed: int, key: str) -> Any:
        import torch

        path = run_dir(self.results, self.paper, experiment, shard, seed) / "artifacts" / f"{key}.pt"
        if not path.exists():
            raise FileNotFoundError(f"artifact {path} is missing; run `python -m reprosuite run "
                                    f"{self.paper} {experiment} --shard {shard} --seed {seed}` first")
        return torch.load(path, weights_only=False, map_location=self.device)

    def artifact_exists(self, key: str) -> bool:
        return (self.dir / "artifacts" / f"{key}.pt").exists()


def _finite(record: Mapping[str, Any]) -> bool:
    for value in record.values():
        if isinstance(value, float | np.floating) and not math.isfinite(value):
            return False
    return True


def git_sha(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def execute(ctx: RunContext, records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Drain ``records`` into a DataFrame, stopping at the first non-finite one."""
    rows: list[dict[str, Any]] = []
    status, reason = "ok", ""
    iterator = iter(records)
    try:
        for rec in iterator:
            row = dict(rec)
            if not _finite(row):
                row["status"] = "diverged"
                rows.append(row)
                status, reason = "diverged", "non-finite value in a record"
                break
            row.setdefault("status", "ok")
            rows.append(row)
    except Diverged as err:
        status, reason = "diverged", str(err) or "diverged"
        rows.append({"status": "diverged"})
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
    frame = pd.DataFrame(rows)
    ids = {"paper": ctx.paper, "experiment": ctx.experiment, "shard": ctx.shard,
           "seed": ctx.seed, "scale": ctx.scale}
    for col, value in reversed(ids.items()):
        frame.insert(0, col, value) if col not in frame else None
    if "dataset" not in frame and ctx.datasets:
        frame["dataset"] = "+".join(ctx.datasets)
        stand_ins = {v for v in ctx.datasets.values() if v}
        if stand_ins:
            frame["stand_in_for"] = "+".join(sorted(stand_ins))
    frame.attrs["status"], frame.attrs["reason"] = status, reason
    return frame


def run_job(paper, cfg: Any, *, experiment: str, shard: str, seed: int, scale: str,
            device: str = "auto", results: Path = Path("results"), data_dir: Path | None = None,
            threads: int | None = None) -> pd.DataFrame:
    """Run one job and write its records and provenance; return the records."""
    import torch

    exp = paper.experiment(experiment)
    shards = exp.shards(cfg)
    if shard not in shards:
        from .config import ConfigError

        raise ConfigError(f"shard = {shard!r} is not allowed for {paper.id}/{experiment} at this scale; "
                          f"allowed: {', '.join(shards) or '(none: disabled at this scale)'}")
    if seed < 0:
        from .config import ConfigError

        raise ConfigError(f"seed = {seed} is not allowed; allowed: an integer >= 0")
    threads = threads or int(os.environ.get("REPROSUITE_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    # numpy/scipy BLAS too: unbounded BLAS threads oversubscribe parallel jobs (7x slower here)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch.set_flush_denormal(True)  # denormals slow CPU training many-fold (docs/papers/topology.md)
    digest = settings_hash({"config": to_dict(cfg), "shard_params": dict(shards[shard])})
    ctx = RunContext(paper=paper.id, experiment=experiment, shard=shard, seed=seed, scale=scale,
                     device=resolve_device(device), results=Path(results), data_dir=data_dir,
                     threads=threads, config_hash=digest)
    check_writable(ctx.dir)  # before any computation, not after it
    torch.manual_seed(ctx.seed_for("global"))
    np.random.seed(ctx.seed_for("global"))
    start, cpu_start = time.time(), time.process_time()
    from .registry import resolve

    frame = execute(ctx, resolve(exp.run)(cfg, ctx, dict(shards[shard])))
    wall, cpu = time.time() - start, time.process_time() - cpu_start
    provenance = {
        "paper": paper.id, "experiment": experiment, "shard": shard, "seed": seed, "scale": scale,
        "shard_params": dict(shards[shard]), "config": to_dict(cfg), "config_hash": digest,
        "status": frame.attrs["status"], "reason": frame.attrs["reason"],
        "device": ctx.device, "device_name": torch.cuda.get_device_name() if ctx.device == "cuda" else platform.processor() or platform.machine(),
        "threads": threads, "datasets": ctx.datasets, "git_sha": git_sha(repo_root()),
        "versions": package_versions(), "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)), "wall_time_s": round(wall, 3),
        "cpu_time_s": round(cpu, 3),
    }
    out = ctx.dir
    try:
        atomic_write(out / "records.csv", lambda p: frame.to_csv(p, index=False))
        atomic_write(out / "provenance.json", lambda p: p.write_text(json.dumps(provenance, indent=2, default=str)))
    except BaseException:
        # records and provenance come as a pair: never leave one without the other
        for name in ("records.csv", "provenance.json"):
            (out / name).unlink(missing_ok=True)
        raise
    (out / "state.pt").unlink(missing_ok=True)
    return frame
