"""Benchmark of the batched gossip simulator (topology Fig. 3 / teleportation Tab. 2 workload).

Claim checked: one D-SGD round of n LeNet-GN nodes (batch 32 per node) in the batched simulator
(stacked parameters, one grouped forward/backward, gossip as one matmul) costs at most 1.3x one
centralized SGD step on the combined batch n*32 (the arithmetic floor), and is faster than a
plain per-node Python loop doing the same math. Evidence: rounds per second for n in {8, 25, 64}
on CPU, median of repeated timings, plus the per-phase breakdown; before timing, the batched and
loop parameters are checked equal (1e-5) after a few rounds from the same init and batches.

    python benchmarks/bench_simulator.py                 # writes benchmarks/bench_simulator.md
    python benchmarks/bench_simulator.py --threads 2 --rounds 21 --sizes 8 25 64
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import vmap

from reprosuite.gossip.reference import LoopDSGD
from reprosuite.gossip.simulator import GossipSimulator, cross_entropy
from reprosuite.gossip.topologies import mixing_matrix
from reprosuite.models.lenet import LeNetGN

BATCH, LR, MOMENTUM = 32, 0.05, 0.9


def _interleaved_ms(fns: dict, rounds: int, warmup: int = 2) -> dict[str, float]:
    """Median ms per call of each function, timed round-robin so machine noise hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: 1000.0 * statistics.median(v) for k, v in times.items()}


def bench(n: int, rounds: int) -> dict:
    torch.manual_seed(0)
    model = LeNetGN()
    w = torch.tensor(mixing_matrix("ring", n=n), dtype=torch.float32)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, BATCH, 1, 28, 28, generator=gen)  # (n, B, 1, 28, 28)
    y = torch.randint(0, 10, (n, BATCH), generator=gen)
    # equality first: same init, same batches, 3 rounds; float64 shows the math is identical,
    # float32 can differ by a near-tie flip of a max-pool/ReLU between grouped and dense kernels
    diffs = {}
    for dtype in (torch.float64, torch.float32):
        ref = LeNetGN().to(dtype)
        ref.load_state_dict(model.state_dict())
        wd = w.to(dtype)
        eq_sim = GossipSimulator(ref, n_slots=n, loss_fn=cross_entropy, momentum=MOMENTUM, dtype=dtype)
        loop = LoopDSGD(ref, n_nodes=n, momentum=MOMENTUM)
        for _ in range(3):
            eq_sim.step(x.to(dtype), y, lr=LR, w=wd)
            loop.step(x.to(dtype), y, lr=LR, w=wd)
        diffs[dtype] = float((eq_sim.flat - loop.flat()).abs().max())
    sim = GossipSimulator(model, n_slots=n, loss_fn=cross_entropy, momentum=MOMENTUM)
    loop = LoopDSGD(model, n_nodes=n, momentum=MOMENTUM)

    vm = GossipSimulator(model, n_slots=n, loss_fn=cross_entropy, momentum=MOMENTUM)
    vm._fwd = vmap(vm._forward, in_dims=(0, 0))  # the generic vmap(functional_call) path
    central = LeNetGN()
    opt = torch.optim.SGD(central.parameters(), lr=LR, momentum=MOMENTUM)
    xc, yc = x.reshape(n * BATCH, 1, 28, 28), y.reshape(-1)

    def central_step():
        opt.zero_grad()
        nn.functional.cross_entropy(central(xc), yc).backward()
        opt.step()

    grads = {}

    def grad_only():
        grads["g"] = sim.local_gradients(x, y)[0]

    timed = _interleaved_ms({
        "batched_ms": lambda: sim.step(x, y, lr=LR, w=w),
        "central_ms": central_step,
        "vmap_ms": lambda: vm.step(x, y, lr=LR, w=w),
        "loop_ms": lambda: loop.step(x, y, lr=LR, w=w),
        "grad_ms": grad_only,
        "update_gossip_ms": lambda: sim.apply(grads["g"], lr=LR, w=w),
    }, rounds)
    out = {"n": n, "diff64": diffs[torch.float64], "diff32": diffs[torch.float32], **timed}
    return out


def markdown(rows: list[dict], threads: int) -> str:
    head = ("| n | batched ms/round | rounds/s | centralized ms (batch n·32) | batched / centralized | "
            "vmap ms | loop ms | loop / batched | fwd+bwd ms | update+gossip ms | max abs diff vs loop, float64 / float32 |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['n']} | {r['batched_ms']:.1f} | {1000 / r['batched_ms']:.1f} | {r['central_ms']:.1f} | "
        f"{r['batched_ms'] / r['central_ms']:.2f} | {r['vmap_ms']:.1f} | {r['loop_ms']:.1f} | "
        f"{r['loop_ms'] / r['batched_ms']:.1f}x | {r['grad_ms']:.1f} | {r['update_gossip_ms']:.2f} | "
        f"{r['diff64']:.1e} / {r['diff32']:.1e} |\n" for r in rows)
    meta = (f"\nLeNet-GN (44,470 parameters), batch {BATCH} per node, heavy-ball {MOMENTUM}, ring W; CPU "
            f"`{platform.processor() or platform.machine()}`, torch {torch.__version__}, {threads} thread(s); "
            "median of round-robin timings (all methods share the machine's noise).\n")
    return head + body + meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 25, 64])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("bench_simulator.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    rows = [bench(n, args.rounds) for n in args.sizes]
    table = markdown(rows, args.threads)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
