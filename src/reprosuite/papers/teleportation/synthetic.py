"""Synthetic experiments of the teleportation paper: mixing matrices, Fig. 2 / fig_k, Algorithm 2.

Every (learning rate, seed) pair of one method runs in one call of the batched quadratic kernel
(``reprosuite.gossip.quadratic``); one job runs every n (one start-up; the random streams are
named by n, so each n draws what a job of its own drew). Iterations to target are censored at T (a run
that never reaches the target records T and ``reached = False``); a diverged run records
``diverged = True`` and no final loss.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from reprosuite.gossip import spectra, topologies
from reprosuite.gossip.quadratic import (
    Quadratics,
    block_sampler,
    fixed_sampler,
    iterations_to_target,
    simulate,
    uniform_sampler,
)
from reprosuite.gossip.search import candidates, grid_cost, search_k
from reprosuite.gossip.teleport import slot_mixing
from reprosuite.gossip.timevarying import base_graph, one_peer_exponential

DIVERGED = 1e8  # f - f* above this (or non-finite) counts as diverged


def ks_for(c, n: int) -> list[int]:
    """TELEPORTATION's k grid at n: c.ks ∩ [1, n], or 1, 2, 4, ..., n."""
    return sorted({k for k in c.ks if k <= n}) if c.ks is not None else candidates(n)


def dsgd_mixing(graph: str, n: int):
    """W (or one period of W) of D-SGD on n nodes; None if the graph is not defined at n."""
    if graph == "one_peer_exp":
        return one_peer_exponential(n)
    if graph == "base2":
        try:
            return base_graph(n, 1)
        except ValueError:
            return None
    return topologies.mixing_matrix(graph, n=n)


def problem(c, ctx, n: int) -> Quadratics:
    seeds = [ctx.seed_for(f"instance-{s}") for s in c.seeds]
    return Quadratics.toy(n=n, d=c.d, seeds=seeds, h_low=c.h_low, h_high=c.h_high, mean_scale=c.mean_scale,
                          spread=c.spread)


def summarise(out: dict, c, *, iterations: int) -> dict[str, np.ndarray]:
    """Per (lr, seed): iterations to target (censored at T), reached, final window loss, diverged."""
    nodes = out["nodes"].numpy()  # (L, S, E)
    iters = out["iters"].numpy()
    bad = ~np.isfinite(nodes) | (nodes > DIVERGED)
    nodes_safe = np.where(bad, np.inf, nodes)
    hit = iterations_to_target(np.where(bad, DIVERGED, nodes), iters, target=c.target, window=c.window)
    final = nodes_safe[..., -c.window:].mean(axis=-1)
    final_x = np.where(np.isfinite(out["xbar"].numpy()[..., -1]), out["xbar"].numpy()[..., -1], np.inf)
    return {"reached": np.isfinite(hit), "iters": np.where(np.isfinite(hit), hit, iterations),
            "final": final, "final_xbar": final_x, "diverged": bad.any(axis=-1)}


def _rows(summary, c, base: dict) -> list[dict]:
    rows = []
    for li, lr in enumerate(c.lrs):
        for si, seed in enumerate(c.seeds):
            div = bool(summary["diverged"][li, si])
            fin, finx = float(summary["final"][li, si]), float(summary["final_xbar"][li, si])
            rows.append({**base, "lr": float(lr), "seed": int(seed),
                         "iterations_to_target": int(summary["iters"][li, si]),
                         "reached": bool(summary["reached"][li, si]), "diverged": div,
                         "final_loss_nodes": None if div or not np.isfinite(fin) else fin,
                         "final_loss_xbar": None if div or not np.isfinite(finx) else finx})
    return rows


def run_fig2(cfg, ctx, shard):
    ctx.use_dataset("synthetic", stand_in_for=None)
    for n in shard["n_values"]:
        yield from _fig2_at(cfg.fig2, ctx, int(n))


def _fig2_at(c, ctx, n: int):
    prob = problem(c, ctx, n)
    common = {"n": n, "d": c.d, "sigma": c.sigma, "target": c.target, "T": c.iterations, "dataset": "synthetic"}
    runs = [("dsgd", g, n) for g in c.dsgd_graphs] + [("tele", g, k) for g in c.tele_graphs for k in ks_for(c, n)]
    for method, graph, k in ctx.progress(runs, total=len(runs), desc=f"fig2 n={n}"):
        gen = ctx.torch_generator(f"noise-{method}-{graph}-k{k}-n{n}")
        if method == "dsgd":
            mixing, sampler = dsgd_mixing(graph, n), None
            if mixing is None:
                continue
        else:
            mixing = slot_mixing(graph, k)
            sampler = uniform_sampler(n, k, len(c.seeds), ctx.torch_generator(f"sample-{graph}-k{k}-n{n}"))
        start = time.perf_counter()
        out = simulate(prob, lrs=c.lrs, sigma=c.sigma, iterations=c.iterations, mixing=mixing, sampler=sampler,
                       eval_every=c.eval_every, generator=gen)
        base = {**common, "method": method, "graph": graph, "k": k, "node_steps_per_iteration": k,
                "wall_time_s": time.perf_counter() - start}
        yield from _rows(summarise(out, c, iterations=c.iterations), c, base)


def _per_seed_best(summary, key: str = "final") -> np.ndarray:
    """Best over learning rates per seed of ``key`` (lower is better). # (S,)"""
    return np.min(summary[key], axis=0)


def best_lr_index(summary) -> int:
    """The learning rate with the lowest mean (over seeds) iterations to target; ties: lower final loss."""
    it = summary["iters"].mean(axis=1)
    fin = np.where(np.isfinite(summary["final"]), summary["final"], np.inf).mean(axis=1)
    return int(np.lexsort((fin, it))[0])


def run_alg2(cfg, ctx, shard):
    ctx.use_dataset("synthetic", stand_in_for=None)
    for n in shard["n_values"]:
        yield from _alg2_at(cfg.fig2, cfg.alg2, ctx, int(n))


def _alg2_at(c, a, ctx, n: int):
    prob = problem(c, ctx, n)
    ks = candidates(n)
    n_seeds = len(c.seeds)
    w_of = {k: slot_mixing(a.slot_graph, k) for k in ks}
    # reference grid: every k in K for fig2's T, best lr per k by mean iterations to target
    grid = {}
    for k in ctx.progress(ks, total=len(ks), desc=f"alg2 grid n={n}"):
        out = simulate(prob, lrs=c.lrs, sigma=c.sigma, iterations=c.iterations, mixing=w_of[k],
                       sampler=uniform_sampler(n, k, n_seeds, ctx.torch_generator(f"grid-sample-k{k}")),
                       eval_every=c.eval_every, generator=ctx.torch_generator(f"grid-noise-k{k}"))
        s = summarise(out, c, iterations=c.iterations)
        li = best_lr_index(s)
        grid[k] = {"lr": float(c.lrs[li]), "iters": s["iters"][li], "reached": s["reached"][li]}
    best_k = min(ks, key=lambda k: (grid[k]["iters"].mean(), k))
    base = {"n": n, "T": c.iterations, "horizon": a.horizon, "slot_graph": a.slot_graph, "dataset": "synthetic"}
    for k in ks:
        for si, seed in enumerate(c.seeds):
            yield {**base, "kind": "grid", "k": k, "lr": grid[k]["lr"], "seed": int(seed),
                   "iterations_to_target": int(grid[k]["iters"][si]), "reached": bool(grid[k]["reached"][si]),
                   "grid_best_k": best_k}
    grid_it, grid_steps = grid_cost(ks, a.horizon)  # the grid at the same T as the search: T·|K|, T·ΣK
    perm_seed = ctx.seed_for("alg2-permutations")
    for schedule in a.schedules:
        losses = _search_losses(prob, c, ctx, n=n, schedule=schedule, mixing=w_of, perm_seed=perm_seed)
        for si, seed in enumerate(c.seeds):
            res = search_k(n, a.horizon, lambda k, it, b, si=si, f=losses: float(f(k, it, b)[si]), schedule=schedule)
            yield {**base, "kind": "search", "schedule": schedule, "seed": int(seed), "chosen_k": res.chosen_k,
                   "grid_best_k": best_k, "search_iterations": res.iterations, "search_node_steps": res.node_steps,
                   "budget": res.budget, "grid_iterations": grid_it, "grid_node_steps": grid_steps,
                   "grid_reference_T": c.iterations, "candidates_tried": len(res.losses),
                   "chosen_iterations_to_target": int(grid[res.chosen_k]["iters"][si]),
                   "best_iterations_to_target": int(grid[best_k]["iters"][si])}


def _search_losses(prob, c, ctx, *, n: int, schedule: str, mixing: dict, perm_seed: int):
    """Selection metric per seed of candidate k after ``iters`` rounds (cached: seeds share one batched run)."""
    cache: dict = {}
    n_seeds = len(c.seeds)

    def losses(k: int, iters: int, block) -> np.ndarray:
        key = (k, iters, block)
        if key not in cache:
            sampler = (block_sampler(n, block[0], block[1], n_seeds, perm_seed) if block is not None
                       else uniform_sampler(n, k, n_seeds, ctx.torch_generator(f"search-{schedule}-k{k}-{iters}")))
            out = simulate(prob, lrs=c.lrs, sigma=c.sigma, iterations=iters, mixing=mixing[k], sampler=sampler,
                           eval_every=min(c.eval_every, iters),
                           generator=ctx.torch_generator(f"search-noise-{schedule}-k{k}-{iters}"))
            cache[key] = _per_seed_best(summarise(out, c, iterations=iters))
        return cache[key]

    return losses


def run_mixing(cfg, ctx, shard):
    """Slot mixing matrices and gaps; TELEPORTATION(k = n, identity) vs D-SGD; k = 1 vs local SGD."""
    c = cfg.mixing
    ctx.use_dataset("none", stand_in_for=None)
    for graph in ("ring", "sym_exp"):
        for k in c.ks:
            w = slot_mixing(graph, k)
            lams = spectra.eigenvalues(w)
            yield {"kind": "slot", "graph": graph, "k": k, "p": spectra.spectral_gap(lams),
                   "p_product": spectra.product_gap(w), "lambda2": float(lams[1]) if k > 1 else 0.0,
                   "symmetry_err": float(np.abs(w - w.T).max()), "row_sum_err": float(np.abs(w.sum(1) - 1).max()),
                   "col_sum_err": float(np.abs(w.sum(0) - 1).max()), "min_entry": float(w.min())}
    for n in c.one_peer_n:
        mats = one_peer_exponential(n)
        x = np.random.default_rng(0).standard_normal((n, 3))
        for w in mats:
            x = w @ x
        yield {"kind": "one_peer", "graph": "one_peer_exp", "k": n, "period": len(mats),
               "p": spectra.product_gap(mats), "p_single_round": spectra.product_gap(mats[0]),
               "consensus_err": float(np.abs(x - x.mean(0)).max()),
               "symmetry_err": float(max(np.abs(w - w.T).max() for w in mats)),
               "row_sum_err": float(max(np.abs(w.sum(1) - 1).max() for w in mats)),
               "col_sum_err": float(max(np.abs(w.sum(0) - 1).max() for w in mats))}
    # TELEPORTATION with k = n and the identity assignment against D-SGD (same noise, same seeds)
    n, rounds, f2 = c.equality_n, c.equality_rounds, cfg.fig2
    prob = Quadratics.toy(n=n, d=f2.d, seeds=[ctx.seed_for("equality")])
    w = topologies.mixing_matrix("ring", n=n)
    lrs = (0.1, 0.01)
    a = simulate(prob, lrs=lrs, sigma=f2.sigma, iterations=rounds, mixing=w, trace=True,
                 generator=torch.Generator().manual_seed(ctx.seed_for("eq-noise")))
    b = simulate(prob, lrs=lrs, sigma=f2.sigma, iterations=rounds, mixing=slot_mixing("ring", n), trace=True,
                 sampler=fixed_sampler(torch.arange(n)[None, :]), generator=torch.Generator().manual_seed(ctx.seed_for("eq-noise")))
    yield {"kind": "equality", "graph": "ring", "k": n, "case": "k_eq_n_identity_vs_dsgd", "rounds": rounds,
           "max_abs_diff": float((a["X"] - b["X"]).abs().max())}
    # k = 1 is local SGD on a freshly sampled node each round
    prob1 = Quadratics.toy(n=n, d=f2.d, seeds=[ctx.seed_for("k1")])
    draws = torch.randint(0, n, (rounds,), generator=torch.Generator().manual_seed(ctx.seed_for("k1-draws")))
    noise = torch.randn(rounds, 1, 1, 1, f2.d, generator=torch.Generator().manual_seed(ctx.seed_for("k1-noise")),
                        dtype=torch.float64)
    tele = simulate(prob1, lrs=[0.1], sigma=f2.sigma, iterations=rounds, mixing=slot_mixing("ring", 1), trace=True,
                    sampler=lambda t0, count: draws[t0:t0 + count].reshape(count, 1, 1),
                    noise=lambda t0, count, shape: noise[t0:t0 + count])
    x = np.zeros(f2.d)
    h, bvec = prob1.h[0].numpy(), prob1.b[0].numpy()
    for t in range(rounds):
        v = int(draws[t])
        x = x - 0.1 * (h[v] * (x - bvec[v]) + f2.sigma * noise[t].reshape(-1).numpy())
    yield {"kind": "equality", "graph": "ring", "k": 1, "case": "k1_vs_local_sgd", "rounds": rounds,
           "max_abs_diff": float(np.abs(tele["X"][0, 0, 0].numpy() - x).max())}
