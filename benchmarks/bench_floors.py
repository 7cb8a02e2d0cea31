"""Every hot loop of the suite's default scale against its arithmetic floor, side by side.

For each hot loop the suite's own code path and a floor (a bare torch loop doing the same arithmetic
on the same batches, or for D-SGD one centralized step on the combined batch) are timed round-robin
(median of repetitions, ``bench_simulator._interleaved_ms``), so both see the same machine noise;
the ratio is suite / floor:

1. MiniLM fine-tuning (lora_risk practical): ``practical.train`` (FFT and peft LoRA r = 8) against
   plain ``model(x, m)``, cross-entropy, AdamW on the same padded Rotten Tomatoes batches (the
   LoRA floor is a hand-rolled frozen Linear + B A on the same modules);
2. unlearning epoch (collateral): FT and SalUn through ``unlearning.methods.METHODS`` against a
   plain SGD epoch over as many examples, same batch size (2,000-example subset, said in the table);
3. D-SGD round (topology / teleportation): ``bench_simulator.bench`` at n = 25;
4. teleportation quadratic kernel against the autograd simulator (``bench_teleportation``);
5. certified (block-)NFT noisy step against a plain SGD step on the same batch (MLP 784-256-128-10).

    python benchmarks/bench_floors.py             # writes benchmarks/bench_floors.md (~2 min, 1 thread)
    python benchmarks/bench_floors.py --reps 5 --lm-reps 5 --lm-steps 2 --threads 1 --no-readme
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import math
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import bench_simulator
import bench_teleportation
import torch
import torch.nn.functional as F
from torch import nn

from reprosuite.config import load_config
from reprosuite.registry import get_paper

Row = dict[str, Any]
HERE = Path(__file__).resolve().parent
MARK = ("<!-- bench_floors:begin -->", "<!-- bench_floors:end -->")


def _config(paper: str) -> Any:
    return load_config(get_paper(paper), "default")


def _row(loop: str, suite_ms: float, floor_ms: float, floor: str, notes: str) -> Row:
    return {"loop": loop, "suite_ms": suite_ms, "floor_ms": floor_ms, "ratio": suite_ms / floor_ms,
            "floor": floor, "notes": notes}


def _timed(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 0) -> dict[str, float]:
    return bench_simulator._interleaved_ms(fns, reps, warmup=warmup)  # medians, round-robin


# 1. MiniLM fine-tuning ---------------------------------------------------------------------------
class BareLoRA(nn.Module):
    """base(x) + (α/r) B A x with base frozen; peft's LoRA arithmetic without its wrappers."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.a = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.a), self.b) * self.scale


def bare_lora(model: nn.Module, rank: int, alpha: float, targets: tuple[str, ...]) -> nn.Module:
    """Freeze ``model`` but its ``classifier``; wrap every Linear whose name ends in a target (peft's match)."""
    for prm in model.parameters():
        prm.requires_grad_(False)
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent), leaf, BareLoRA(mod, rank, alpha))
    for prm in model.classifier.parameters():
        prm.requires_grad_(True)
    return model


def minilm_rows(reps: int = 5, steps: int = 2, warmup: int = 2, batch: int | None = None,
                n_layers: int | None = None, rank: int = 8) -> list[Row]:
    """ms per step: ``practical.train`` (chunks of ``steps`` steps) vs the bare loop, FFT and LoRA."""
    from reprosuite.papers.lora_risk import practical as P

    p = _config("lora_risk").practical
    p = replace(p, batch_size=batch or p.batch_size)
    encoder, tok = P.load_encoder()
    if n_layers:  # tests: a shallower encoder
        encoder.encoder.layer = encoder.encoder.layer[:n_layers]
    frame, train_idx, _, _ = P.split_rotten_tomatoes(fractions=p.split, seed=p.split_seed)
    idx = P.subset(train_idx, p.batch_size * steps, p.data_seed)
    ids = P.tokenize(tok, frame["text"].to_numpy()[idx], p.max_length)
    labels = frame["label"].to_numpy()[idx]
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))  # train()'s first epoch
    batches = []
    for s in range(0, len(ids), p.batch_size):
        rows = order[s:s + p.batch_size].tolist()
        batches.append((*P.pad([ids[i] for i in rows], tok.pad_token_id), torch.as_tensor(labels[rows])))

    def classifier() -> nn.Module:
        return P.build_classifier(copy.deepcopy(encoder), pooling=p.head_pooling, seed=0)

    alpha = p.alpha_over_r * rank
    models = {"fft": (P.adapt(classifier(), method="fft", rank=0, p=p), classifier(), p.lrs_fft[0]),
              "lora": (P.adapt(classifier(), method="lora", rank=rank, p=p),
                       bare_lora(classifier(), rank, alpha, p.targets), p.lrs_lora[0])}
    assert P.trainable_count(models["lora"][0]) == P.trainable_count(models["lora"][1])

    def suite(model: nn.Module, lr: float, n: int) -> None:
        P.train(model, ids, labels, lr=lr, lr_head=p.lr_head, p=p, steps=n, pad_id=tok.pad_token_id,
                generator=torch.Generator().manual_seed(0))

    def floor(model: nn.Module, lr: float, n: int) -> None:
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=lr, weight_decay=p.weight_decay)
        model.train()
        for x, m, y in batches[:n]:
            loss = F.cross_entropy(model(x, m), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    fns = {}
    for key, (s_model, f_model, lr) in models.items():
        suite(s_model, lr, warmup)
        floor(f_model, lr, warmup)
        fns[f"{key}_suite"] = functools.partial(suite, s_model, lr, steps)
        fns[f"{key}_floor"] = functools.partial(floor, f_model, lr, steps)
    ms = {k: v / steps for k, v in _timed(fns, reps).items()}
    width = sum(int(b[0].shape[1]) for b in batches) / len(batches)
    note = (f"batch {p.batch_size}, max_length {p.max_length} (padded width {width:.0f}); {reps} x {steps} steps "
            f"after {warmup} warm-up")
    return [_row("MiniLM FFT step (lora_risk practical)", ms["fft_suite"], ms["fft_floor"],
                 "bare loop: model(x, m), CE, AdamW; same padded batches", note),
            _row(f"MiniLM LoRA r={rank} step (lora_risk practical)", ms["lora_suite"], ms["lora_floor"],
                 "bare loop over hand-rolled LoRA (frozen Linear + B A) on peft's modules", note)]


# 2. unlearning epoch ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def fashion_subset(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified ``n``-example subset of collateral's default 30,000 Fashion-MNIST images."""
    from reprosuite.data import fashion_mnist, stratified_indices
    from reprosuite.unlearning.training import images_to_tensor

    main = _config("collateral").main
    raw = fashion_mnist()
    tr = stratified_indices(raw.y_train, main.n_train, seed=main.subset_seed)
    tr = tr[stratified_indices(raw.y_train[tr], n, seed=0)]
    return images_to_tensor(raw.x_train[tr], *raw.normalisation), torch.from_numpy(raw.y_train[tr])


def unlearning_rows(reps: int = 3, n_subset: int = 2000, kinds: tuple[str, ...] = ("ft", "salun")) -> list[Row]:
    """ms per epoch: a METHODS entry at its default hp (one epoch) vs a plain SGD epoch, same size."""
    from reprosuite.models import build_model
    from reprosuite.unlearning.methods import UnlearnData, method
    from reprosuite.unlearning.splits import partial_class_split

    main = _config("collateral").main
    x, y = fashion_subset(n_subset)
    split = partial_class_split(y.numpy(), main.forget_classes[0], main.forget_fracs[0])
    f, r = torch.from_numpy(split.forget), torch.from_numpy(split.retain)
    data = UnlearnData(x[f], y[f], x[r], y[r], 10)
    original = build_model(main.arch, n_classes=10, in_channels=1, image_size=28, generator=0)
    fns, sizes = {}, {}
    for kind in kinds:
        cfg = replace(getattr(main.hp, kind), epochs=1)
        uses_forget = kind != "ft"
        xs = torch.cat([data.x_forget.repeat(cfg.forget_oversample, 1, 1, 1)] * uses_forget + [data.x_retain])
        ys = torch.cat([data.y_forget.repeat(cfg.forget_oversample)] * uses_forget + [data.y_retain])
        plain = copy.deepcopy(original)

        def floor(model: nn.Module = plain, xs: torch.Tensor = xs, ys: torch.Tensor = ys, cfg: Any = cfg) -> None:
            opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
            perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(0))
            for i in range(0, len(xs), cfg.batch_size):
                b = perm[i:i + cfg.batch_size]
                loss = F.cross_entropy(model(xs[b]), ys[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        fns[f"{kind}_suite"] = functools.partial(method(cfg.kind).run, original, data, cfg, seed=0)
        fns[f"{kind}_floor"] = floor
        sizes[kind] = (len(xs), math.ceil(len(xs) / cfg.batch_size), cfg.batch_size)
    ms = _timed(fns, reps)  # no warm-up epoch: the median absorbs the first call's one-off costs
    what = {"ft": "FT (fine-tune on D_r)", "salun": "SalUn (RL + saliency mask, its mask pass included)"}
    return [_row(f"unlearning epoch: {what.get(k, k)} (collateral)", ms[f"{k}_suite"], ms[f"{k}_floor"],
                 "plain SGD epoch (forward, CE, backward, step), same examples and batch",
                 f"{n}-example epoch = {st} steps of {bs}, SmallCNN; {n_subset}-example stratified subset of "
                 f"the default 30,000 ({len(f)} in D_f); {reps} reps")
            for k, (n, st, bs) in sizes.items()]


# 3. D-SGD round, 4. teleportation kernel ------------------------------------------------------------
def dsgd_rows(reps: int = 5, n: int = 25) -> list[Row]:
    out = bench_simulator.bench(n, reps)
    return [_row(f"D-SGD round, n = {n} LeNet-GN (topology, teleportation)", out["batched_ms"], out["central_ms"],
                 f"one centralized SGD step on the combined batch {n}x32 (same FLOPs, dense kernels)",
                 f"bench_simulator.bench; max abs diff vs the loop (float64) {out['diff64']:.0e}; {reps} reps")]


def teleport_rows(reps: int = 3, n: int = 16, k: int = 4, n_lrs: int = 2, n_seeds: int = 2,
                  rounds: int = 50) -> list[Row]:
    from reprosuite.gossip.quadratic import Quadratics, simulate, uniform_sampler
    from reprosuite.gossip.teleport import slot_mixing

    lrs = [0.05, 0.01, 0.005, 0.0025][:n_lrs]
    prob = Quadratics.toy(n=n, d=10, seeds=range(n_seeds))
    gen = torch.Generator().manual_seed(0)
    draws = uniform_sampler(n, k, n_seeds, gen)(0, rounds)  # (rounds, S, k)
    noise = torch.randn(rounds, len(lrs), n_seeds, k, 10, generator=gen, dtype=torch.float64)

    def kernel() -> None:
        simulate(prob, lrs=lrs, sigma=bench_teleportation.SIGMA, iterations=rounds, mixing=slot_mixing("ring", k),
                 sampler=lambda t0, c: draws[t0:t0 + c], noise=lambda t0, c, shape: noise[t0:t0 + c])

    def autograd() -> None:
        for li, lr in enumerate(lrs):
            for s in range(n_seeds):
                bench_teleportation.autograd_run(prob, s, lr, k=k, rounds=rounds, draws=draws[:, s], noise=noise[:, li, s])

    ms = _timed({"kernel": kernel, "autograd": autograd}, reps, warmup=1)
    return [_row("teleportation quadratic grid (fig2 kernel)", ms["kernel"], ms["autograd"],
                 "not a floor: the autograd GossipSimulator, one run per (lr, seed) (the generic path)",
                 f"n {n}, k {k}, {n_lrs} lrs x {n_seeds} seeds x {rounds} rounds; equality: bench_teleportation.py")]


# 5. certified noisy step ------------------------------------------------------------------------
def certified_rows(reps: int = 3, steps: int = 20, ks: tuple[int, ...] = (1, 4), eps: float = 5.0,
                   n_subset: int = 2000) -> list[Row]:
    """ms per gradient step of a noisy phase (m = 2: each with one noise injection) vs plain SGD."""
    from reprosuite.models import build_model
    from reprosuite.unlearning import accounting as A
    from reprosuite.unlearning.blocks import make_blocks
    from reprosuite.unlearning.noisy import NoisySchedule, RetainSampler, noisy_phase

    c = _config("certified").constants
    x, y = fashion_subset(n_subset)  # the first 60 images
    xb, yb = x[:c.batch_size], y[:c.batch_size]
    sched = NoisySchedule(eta=c.eta, lam=c.lam, m=c.m, batch_size=c.batch_size, bn_mode=c.bn_mode)
    fns = {}
    for k in ks:
        model = build_model("mlp", n_classes=10, in_channels=1, image_size=28, generator=0)
        blocks = make_blocks(model, k, mode="qr", split="equal", seed=0)
        b = A.plan(eps=eps, delta=c.delta, k=k, eta=c.eta, lam=c.lam, c0=c.c0, c1=c.c1, policy="scaled",
                   split=c.budget_split, m=c.m).blocks[0]
        sampler = RetainSampler(xb, yb, c.batch_size, torch.Generator().manual_seed(0), "cpu")  # always this batch
        fns[f"k{k}"] = functools.partial(noisy_phase, model, blocks, 0, sigma=b.sigma, c1=b.c1, t_ft=steps * (c.m - 1),
                                         sched=sched, sampler=sampler, generator=torch.Generator().manual_seed(1))
    plain = build_model("mlp", n_classes=10, in_channels=1, image_size=28, generator=0)
    opt = torch.optim.SGD(plain.parameters(), lr=c.eta, weight_decay=c.lam)  # x - η(λx + g): no clip/projection/noise

    def floor() -> None:
        for _ in range(steps * (c.m - 1)):
            loss = F.cross_entropy(plain(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    ms = {key: v / (steps * (c.m - 1)) for key, v in _timed({**fns, "floor": floor}, reps, warmup=1).items()}
    return [_row(f"certified noisy step, {'NFT (k = 1)' if k == 1 else f'block-NFT k = {k} (qr)'}", ms[f"k{k}"],
                 ms["floor"], "plain SGD step (lr η, weight decay λ) on the same batch of 60",
                 f"noisy_phase, m = {c.m} (a noise step per gradient step), ε = {eps:g}; {reps} x {steps} steps")
            for k in ks]


# report -----------------------------------------------------------------------------------------
def _cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return next(iter(re.findall(r"model name\s*:\s*(.+)", info)), platform.processor() or platform.machine()).strip()


def markdown(rows: list[Row], *, threads: int, wall_s: float, load: tuple[float, float]) -> str:
    head = "| hot loop | suite ms | floor ms | suite / floor | the floor | notes |\n|---|---|---|---|---|---|\n"
    body = "".join(f"| {r['loop']} | {r['suite_ms']:.1f} | {r['floor_ms']:.1f} | {r['ratio']:.2f} | {r['floor']} | "
                   f"{r['notes']} |\n" for r in rows)
    meta = (f"\nCPU `{_cpu()}` ({os.cpu_count()} cores), torch {torch.__version__}, {threads} thread(s), "
            f"{datetime.date.today().isoformat()}; 1-min load average {load[0]:.1f} at start, {load[1]:.1f} at end; "
            f"whole run {wall_s:.0f} s. Medians of round-robin timings; ms per step (MiniLM, certified), per "
            "epoch (unlearning), per round (D-SGD), per grid (teleportation).\n")
    return head + body + meta


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--lm-reps", type=int, default=5, help="MiniLM: timed chunks per path")
    ap.add_argument("--lm-steps", type=int, default=2, help="MiniLM: steps per chunk (short chunks share noise)")
    ap.add_argument("--subset", type=int, default=2000, help="unlearning: examples in the subset")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "bench_floors.md")
    ap.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md's table alone")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the runner does
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    rows = (minilm_rows(args.lm_reps, args.lm_steps) + unlearning_rows(args.reps, args.subset)
            + dsgd_rows(max(args.reps, 5)) + teleport_rows(args.reps) + certified_rows(args.reps))
    table = markdown(rows, threads=args.threads, wall_s=time.perf_counter() - start, load=(load0, os.getloadavg()[0]))
    text = "# bench_floors: every hot loop against its floor\n\n" + table
    args.out.write_text(text)
    readme = HERE / "README.md"
    if not args.no_readme and readme.exists() and MARK[0] in (old := readme.read_text()):
        pre, rest = old.split(MARK[0], 1)
        readme.write_text(f"{pre}{MARK[0]}\n{table}{MARK[1]}{rest.split(MARK[1], 1)[1]}")
    print(text)
    return text


if __name__ == "__main__":
    main()
