"""Experiments of the certified paper (Fig. 1, Fig. 2, Table 1, the accounting figure, claim 6b).

- ``run_accounting``: the accounting table at the paper's reference constants and at the run
  constants, both per-block policies, and the subspace geometry checks (claims 1-4);
- ``run_models``: one original / retrain (random 10% forget set) / class retrain per job,
  trained once with the code's SGD recipe and shared through ``ctx.save_artifact``;
- ``run_nft``: NFT (k = 1) and block-NFT for every k and seed at one (row, variant, ε); every
  run records its certificate next to the measured base/retrain distance;
- ``run_fig2``: the block-type ablation; ``run_mechanism``: claim 6b; ``run_tab1``: class deletion.
"""

from __future__ import annotations

import copy
import functools
import math
import time

import numpy as np
import torch

from reprosuite.unlearning import accounting as A
from reprosuite.unlearning.blocks import make_blocks
from reprosuite.unlearning.configs import TrainConfig
from reprosuite.unlearning.mia import loss_mia
from reprosuite.unlearning.noisy import (
    NoisySchedule,
    ParamView,
    accuracy,
    block_nft,
    perturbation_energy,
)
from reprosuite.unlearning.training import predict, train_model

from .data import class_split, forget_split, load_model, new_model, prepare, subset
from .mia import svc_mia_confidence

REFERENCE = dict(eta=1e-4, lam=10.0, c0=0.01, c1=1.0)  # the paper's accounting table constants
# variant -> (per-block policy, split, basis mode, repair between blocks)
VARIANT_SPECS = {"shared": ("shared", "equal", "qr", False), "scaled": ("scaled", "equal", "qr", False),
                 "measured_layers": ("measured", "layers", "qr", False), "scaled_repair": ("scaled", "equal", "qr", True)}
BLOCK_TYPE_SPECS = {"qr": ("qr", "equal"), "perm_identity": ("perm_identity", "equal"), "layers": ("qr", "layers"),
                    "head": ("qr", "head")}


# accounting ------------------------------------------------------------------------------------
def run_accounting(cfg, ctx, shard):
    """σ, T, q*, ε_q for every (ε, k, policy) at the reference and the run constants; geometry."""
    ctx.use_dataset("none")
    c = cfg.constants
    sets = {"reference": REFERENCE, "run": dict(eta=c.eta, lam=c.lam, c0=c.c0, c1=c.c1)}
    for name, k_ in sets.items():
        for eps in cfg.acct_epsilons:
            q = A.optimal_order(eps=eps, delta=c.delta)
            eq = A.rdp_budget(eps=eps, delta=c.delta, q=q)
            sigma1 = A.noise_sigma(eps_q=eq, q=q, **k_)
            x_star = 1 - k_["lam"] * k_["c0"] / k_["c1"]
            t_ft, _ = A.steps_ft(m=c.m, **k_)
            for policy in ("shared", "scaled"):
                for k in cfg.acct_ks:
                    p = A.plan(eps=eps, delta=c.delta, k=k, policy=policy, m=c.m, **k_)
                    b = p.blocks[0]
                    yield {"kind": "table", "constants": name, **k_, "epsilon": eps, "delta": c.delta, "k": k,
                           "block_constants": policy, "q": q, "q_numeric": A.optimal_order_numeric(eps=eps, delta=c.delta),
                           "eps_q": eq, "eps_q_block": b.eps_q_block, "sigma": b.sigma, "sigma_k1": sigma1,
                           "t_ft": b.t_ft, "steps_block": b.steps, "noisy_steps_total": k * b.steps,
                           "eps_composed": p.eps_composed, "eps_q_composed": A.compose_rdp([x.eps_q_block for x in p.blocks]),
                           "eps_balle": A.rdp_to_dp(eps_q=eq, q=q, delta=c.delta, conversion="balle"),
                           "sigma_koloskova_xstar": A.koloskova_sigma(eps_r=eq / q, x=x_star, **k_),
                           "sigma_koloskova_tft": A.koloskova_sigma(eps_r=eq / q, steps=t_ft, **k_),
                           "noise_norm_11m": b.sigma * math.sqrt(11.2e6),
                           "lam_c0_lt_c1": bool(k_["lam"] * k_["c0"] < k_["c1"])}
    yield from _geometry(ctx)


def _geometry(ctx):
    """Claim 4: AᵀA = I, Σ AAᵀ = I (float32) and the noise covariance σ²Pᵢ on 1,000 draws."""
    from torch import nn

    layer = nn.Linear(8, 16)  # weight (16, 8): 8-dim input subspaces, 16 independent rows per draw
    for mode in ("qr", "perm_identity", "identity"):
        blocks = make_blocks(layer, 4, mode=mode, seed=ctx.seed_for("geometry"))
        spec = blocks.specs["weight"]
        ortho, total = 0.0, torch.zeros(8, 8)
        for b in spec.bases:
            a = torch.eye(8)[:, b] if spec.coordinate else b
            ortho = max(ortho, float((a.t() @ a - torch.eye(a.shape[1])).abs().max()))
            total += a @ a.t()
        gen = torch.Generator().manual_seed(ctx.seed_for(f"cov-{mode}"))
        sigma, n = 0.5, 1000
        draws = torch.cat([blocks.noise(1, sigma, {"weight": layer.weight.detach()}, gen)["weight"]
                           for _ in range(n)]).double()  # (16 n, 8): every row of every draw
        a1 = torch.eye(8)[:, spec.bases[1]] if spec.coordinate else spec.bases[1]
        target = sigma**2 * (a1 @ a1.t()).double()
        cov_err = float(torch.linalg.norm(draws.t() @ draws / len(draws) - target) / torch.linalg.norm(target))
        yield {"kind": "geometry", "blocks_mode": mode, "k": 4, "orthonormality_error": ortho,
               "partition_error": float((total - torch.eye(8)).abs().max()), "covariance_rel_error": cov_err,
               "draws": n}


# models ----------------------------------------------------------------------------------------
def _recipe(row, role: str) -> TrainConfig:
    base = role == "original"
    return TrainConfig(epochs=row.epochs, batch_size=row.base_batch_size if base else row.retrain_batch_size,
                       optimizer="sgd", lr=row.lr, momentum=row.momentum,
                       weight_decay=row.base_weight_decay if base else row.retrain_weight_decay, augment=row.augment)


def run_models(cfg, ctx, shard):
    """Train every model of one row in turn: original and retrain (D_r) of each pair (a pair shares
    its initialisation) and the class-deletion retrain (role ``class``); each is the artifact
    ``model-<role>-p<pair>`` (``model-class<c>-p0``).

    One job per row pays the start-up and the data once. Checkpointed every epoch: the state holds
    the records of the models done, the model in training and ``epoch``, the epochs this job has
    trained in all (so it only grows, model after model)."""
    row_key = shard["row"]
    row = getattr(cfg, row_key)
    prep = prepare(row, ctx)
    state = ctx.load_state() or {"done": 0, "records": [], "epoch": 0, "current": None}
    yield from state["records"]
    for n, (role, pair, forget_class) in enumerate(shard["models"]):
        if n < state["done"]:
            continue
        rows, epochs = _train_one(ctx, row_key, row, prep, role, pair, forget_class, state)
        state = {"done": n + 1, "records": state["records"] + rows, "epoch": state["epoch"] + epochs, "current": None}
        ctx.save_state(state)
        yield from rows


def _train_one(ctx, row_key, row, prep, role, pair, forget_class, job) -> tuple[list[dict], int]:
    """One model of ``run_models`` (resumed from ``job['current']`` if that is this model): its
    records and the epochs it trained in this attempt."""
    if role == "original":
        x, y = prep.x_train, prep.y_train
    else:
        split = forget_split(row, prep) if role == "retrain" else class_split(prep, forget_class)
        keep = torch.from_numpy(split.retain)
        x, y = prep.x_train[keep], prep.y_train[keep]
    model = new_model(row.arch, prep, ctx.torch_generator(f"init-{row_key}-p{pair}")).to(ctx.device)
    recipe = _recipe(row, role)
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    state = job["current"]
    start, opt_state, wall0, curve = 0, None, 0.0, []
    if state is not None:
        model.load_state_dict(state["model"])
        start, opt_state, wall0, curve = state["model_epoch"], state, state["wall_s"], state["curve"]
    t0 = time.perf_counter()
    eval_idx = torch.from_numpy(subset(len(prep.y_test), row.eval_subset, seed=1))
    x_eval, y_eval = prep.x_test[eval_idx], prep.y_test[eval_idx]

    def on_epoch(epoch, model, opt, info):
        acc = accuracy(model, x_eval, y_eval, ctx.device)
        curve.append({"epoch": epoch, "train_step": epoch * steps_per_epoch, "test_accuracy": acc,
                      "train_loss": info["train_loss"]})
        ctx.save_state({**job, "epoch": job["epoch"] + epoch - start, "current": {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "model_epoch": epoch,
            "scheduler": info["scheduler"], "wall_s": wall0 + time.perf_counter() - t0, "curve": curve}})
        model.train()

    train_model(model, x, y, recipe, seed=ctx.seed_for(f"data-{row_key}-{role}-p{pair}"), device=ctx.device,
                start_epoch=start, optimizer_state=opt_state, on_epoch=on_epoch)
    wall = wall0 + time.perf_counter() - t0
    total = recipe.epochs * steps_per_epoch
    name = role if forget_class is None else f"class{forget_class}"  # the artifact load_model asks for
    ctx.save_artifact(f"model-{name}-p{pair}", {"state_dict": model.state_dict(), "arch": row.arch, "role": role,
                                                "pair": pair, "wall_s": wall, "train_steps": total,
                                                "dataset": prep.name, "stand_in_for": row.stand_in_for,
                                                "input": tuple(prep.shape), "n_classes": prep.n_classes})
    ids = {"row_key": row_key, "row_label": row.label, "role": role, "pair": pair}
    rows = [{"row": "epoch", **ids, **c, "step": c["train_step"] - total} for c in curve]
    rows.append({"row": "final", **ids, "epochs": recipe.epochs, "n_train_examples": len(x), "train_steps": total,
                 "train_accuracy": accuracy(model, x, y, ctx.device),
                 "test_accuracy": accuracy(model, prep.x_test, prep.y_test, ctx.device), "train_wall_time_s": wall})
    return rows, recipe.epochs - start


# shared pieces of the NFT experiments -------------------------------------------------------------
class Setting:
    """Data, the base/retrain pairs and the reference evaluation of one row (loaded once per job)."""

    def __init__(self, cfg, ctx, row_key: str):
        self.cfg, self.ctx, self.row_key = cfg, ctx, row_key
        self.row = row = getattr(cfg, row_key)
        self.prep = prep = prepare(row, ctx)
        split = forget_split(row, prep)
        f, r = torch.from_numpy(split.forget), torch.from_numpy(split.retain)
        self.forget = (prep.x_train[f], prep.y_train[f])
        self.retain = (prep.x_train[r], prep.y_train[r])
        self.pairs = [(load_model(ctx, row_key, row.arch, prep, "original", j)[0],
                       load_model(ctx, row_key, row.arch, prep, "retrain", j)[0]) for j in range(row.n_pairs)]
        self.original, self.retrain = self.pairs[0]
        self.diff = ParamView(self.original).diff(self.retrain)  # x̂ − x̄ of pair 0
        self.distances = [ParamView(o).distance(r) for o, r in self.pairs]
        eval_idx = torch.from_numpy(subset(len(prep.y_test), row.eval_subset, seed=1))
        self.x_eval, self.y_eval = prep.x_test[eval_idx].to(ctx.device), prep.y_test[eval_idx]  # gathered once
        mia = cfg.nft.mia_size
        self.mia_member = torch.from_numpy(subset(len(self.retain[1]), mia, seed=2))
        self.mia_nonmember = torch.from_numpy(subset(len(prep.y_test), mia, seed=3))
        self.retain_eval = torch.from_numpy(subset(len(self.retain[1]), row.eval_subset, seed=4))
        c = cfg.constants
        self.c0_chebyshev = A.chebyshev_c0(self.distances, rho=c.rho)
        self.c0 = c.c0 if c.c0_mode == "fixed" else self.c0_chebyshev
        if c.lam * self.c0 >= c.c1:
            raise ValueError(f"c0_mode = {c.c0_mode}: C0 = {self.c0:.4g} gives lam * C0 = {c.lam * self.c0:.4g} >= "
                             f"c1 = {c.c1}; no noisy phase certifies this proximity (raise c1 or use c0_mode fixed)")
        self.references = {"original": self.evaluate(self.original), "retrain": self.evaluate(self.retrain)}

    def eval_acc(self, model) -> float:
        return accuracy(model, self.x_eval, self.y_eval, self.ctx.device)

    def evaluate(self, model) -> dict:
        """Final metrics: test (all), retain (subset) and forget accuracy, SVC-MIA."""
        d, p = self.ctx.device, self.prep
        lt = predict(model, p.x_test, d)
        lr = predict(model, self.retain[0][self.retain_eval], d)
        lf = predict(model, self.forget[0], d)
        lm = predict(model, self.retain[0][self.mia_member], d)
        y_r = self.retain[1][self.retain_eval]
        mia = svc_mia_confidence((lm, self.retain[1][self.mia_member]),
                                 (lt[self.mia_nonmember], p.y_test[self.mia_nonmember]), (lf, self.forget[1]))
        return {"test_accuracy_final": float((lt.argmax(1) == p.y_test).float().mean()),
                "retain_accuracy": float((lr.argmax(1) == y_r).float().mean()),
                "forget_accuracy": float((lf.argmax(1) == self.forget[1]).float().mean()),
                "mia_svc": mia, "eval_accuracy": self.eval_acc(model)}

    def reference_rows(self, ids: dict):
        for name, m in self.references.items():
            yield {"row": "reference", **ids, "method": name, **m,
                   "measured_distance": self.distances[0], "mean_distance": float(np.mean(self.distances))}

    def schedule(self, repair: bool) -> NoisySchedule:
        c = self.cfg.constants
        return NoisySchedule(eta=c.eta, lam=c.lam, m=c.m, batch_size=c.batch_size, bn_mode=c.bn_mode,
                             repair_steps=c.repair_steps if repair else 0, ft_lr=c.ft_lr, ft_momentum=c.ft_momentum,
                             ft_weight_decay=c.ft_weight_decay, ft_batch_size=c.ft_batch_size)

    def one_run(self, *, ids: dict, seed: int, k: int, eps: float, policy: str, split: str, mode: str,
                repair: bool, with_curve: bool = True, finetune: bool = True, done: dict | None = None):
        """One (block-)NFT run from the original: curve rows and one summary row with its certificate.
        ``finetune=False`` stops after the noisy phases (post-noise accuracy only; extra seeds).

        Returns (after its rows) what the run measured, keyed by what determines it; ``done`` maps
        such keys to runs already made in this job: NFT (k = 1) is one and the same run for every
        variant and block type of a seed (one block covering every parameter, the same σ, C₁ and
        streams), so it is made once and only its labels differ."""
        c, ctx = self.cfg.constants, self.ctx
        model = copy.deepcopy(self.original)
        blocks = make_blocks(model, k, mode=mode, split=split, seed=ctx.seed_for(f"basis-{seed}"))
        shares = None
        if policy == "measured":
            norms = blocks.norms(self.diff)
            shares = list(norms / np.sqrt((norms**2).sum()))
        plan = A.plan(eps=eps, delta=c.delta, k=k, eta=c.eta, lam=c.lam, c0=self.c0, c1=c.c1, policy=policy,
                      split=c.budget_split, shares=shares, m=c.m)
        max_t = (c.max_t_nft if k == 1 else c.max_t_blocks) if finetune else 0
        b0 = plan.blocks[0]
        key = ("nft", seed, b0.sigma, b0.c1, b0.t_ft, with_curve, finetune, max_t) if k == 1 else None
        run = (done or {}).get(key) if key else None
        if run is None:
            run = self._unlearn(model, blocks, plan, seed=seed, repair=repair, with_curve=with_curve,
                                finetune=finetune, max_t=max_t)
            if key and done is not None:
                done[key] = run
        curve, info = run["curve"], run["info"]
        noisy = [r["test_accuracy"] for r in curve if r["phase"] == "noisy"]
        run_ids = {**ids, "seed": seed, "k": k, "block_constants": policy, "blocks_split": split, "blocks_mode": mode,
                   "repair_between_blocks": repair}
        if with_curve:
            for r in curve:
                yield {"row": "curve", **run_ids, **r}
        yield {"row": "summary", "finetuned": finetune, **run_ids, **plan.record(), "eta": c.eta, "lam": c.lam, "c0": self.c0, "c1": c.c1,
               "c0_mode": c.c0_mode, "c0_chebyshev": self.c0_chebyshev, "rho": c.rho,
               "measured_distance": self.distances[0], "mean_distance": float(np.mean(self.distances)),
               "c0_over_half_distance": self.c0 / (0.5 * self.distances[0]),
               "sigma_blocks": ";".join(f"{b.sigma:.6g}" for b in plan.blocks),
               "eps_q_blocks": ";".join(f"{b.eps_q_block:.6g}" for b in plan.blocks),
               "c0_blocks": ";".join(f"{b.c0:.6g}" for b in plan.blocks),
               "steps_blocks": ";".join(str(b.steps) for b in plan.blocks),
               "certificate": "nominal (C0 tuned, below the measured proximity)" if self.c0 < 0.5 * self.distances[0]
               else "conditional on the proximity bound",
               "post_noise_accuracy": noisy[-1] if noisy else float("nan"),
               "min_noisy_accuracy": min(noisy) if noisy else float("nan"),
               "auc": float(np.mean([r["test_accuracy"] for r in curve])) if with_curve and curve else None,
               "base_accuracy": self.references["original"]["eval_accuracy"],
               "retrain_accuracy": self.references["retrain"]["eval_accuracy"],
               "retrain_test_accuracy": self.references["retrain"]["test_accuracy_final"],
               "retrain_mia_svc": self.references["retrain"]["mia_svc"], **info, "max_t": max_t,
               "gradient_steps": info["total_steps"] - info["noisy_steps"] // c.m,
               "unlearn_wall_time_s": run["wall"], **run["final"]}
        return run

    def _unlearn(self, model, blocks, plan, *, seed: int, repair: bool, with_curve: bool, finetune: bool,
                 max_t: int) -> dict:
        """Run (block-)NFT on ``model`` in place: its curve, step counts, final metrics, wall time."""
        c, ctx = self.cfg.constants, self.ctx
        curve, eval_time = [], [0.0]
        last_noisy = sum(b.t_ft // (c.m - 1) for b in plan.blocks if b.steps)  # noise injections in all
        seen = [0]

        def on_eval(step, phase, block, m):
            if phase == "noisy":
                seen[0] += 1
            if not with_curve and (phase != "noisy" or seen[0] < last_noisy):
                return  # noise-only runs evaluate once, after the last injection
            t = time.perf_counter()
            curve.append({"step": step, "phase": phase, "block": block, "test_accuracy": self.eval_acc(m)})
            eval_time[0] += time.perf_counter() - t

        t0 = time.perf_counter()
        info = block_nft(model, blocks, plan, sched=self.schedule(repair), retain=self.retain, max_steps=max_t,
                         seed=ctx.seed_for(f"nft-{seed}"), device=ctx.device,
                         log_every=self.cfg.nft.log_every if with_curve else 0, on_eval=on_eval)
        wall = time.perf_counter() - t0 - eval_time[0]
        return {"curve": curve, "info": info, "wall": wall, "final": self.evaluate(model) if finetune else {}}


def _ids(setting: Setting, eps: float, **extra) -> dict:
    row = setting.row
    return {"row_key": setting.row_key, "row_label": row.label, "dataset": setting.prep.name,
            "stand_in_for": row.stand_in_for or "", "epsilon": eps, **extra}


def _checkpointed(ctx, first, units):
    """Records of ``first()`` and then of every unit (a callable), saved after each unit: a killed job
    resumes after its last finished unit (``ctx.load_state``: only into the settings it began with)."""
    state = ctx.load_state() or {"units": 0, "records": list(first())}
    yield from state["records"]
    for n, unit in enumerate(units):
        if n < state["units"]:
            continue
        rows = list(unit())
        state = {"units": n + 1, "records": state["records"] + rows}
        ctx.save_state(state)
        yield from rows


def run_nft(cfg, ctx, shard):
    """Every ε, variant, k and seed of one row: NFT (k = 1) and block-NFT, then fine-tuning. NFT is
    one run per (ε, seed) whatever the variant (made once, recorded under each variant). One unit
    of the checkpoint is one (ε, seed)."""
    s = Setting(cfg, ctx, shard["row"])
    cells = [(eps, {v: _ids(s, eps, variant=v) for v in variants}) for eps, variants in shard["cells"]]

    def unit(eps, variants, n, seed):
        full = n < cfg.nft.curve_seeds  # the first curve_seeds seeds run the whole curve
        done = {}
        for v, ids in variants.items():
            policy, split, mode, repair = VARIANT_SPECS[v]
            for k in cfg.nft.layer_ks if split == "layers" else cfg.nft.ks:
                yield from s.one_run(ids=ids, seed=seed, k=k, eps=eps, policy=policy, split=split, mode=mode,
                                     repair=repair, with_curve=full, finetune=full, done=done)

    yield from _checkpointed(ctx, lambda: (r for _, vs in cells for ids in vs.values() for r in s.reference_rows(ids)),
                             [functools.partial(unit, eps, vs, n, seed) for eps, vs in cells
                              for n, seed in enumerate(cfg.seeds)])


def run_fig2(cfg, ctx, shard):
    """Block-type ablation at one ε: NFT and block-NFT (k = fig2.k; head: 2) under ``scaled``, every
    block type; NFT (k = 1 is plain NFT whatever the block type) is made once per seed, the unit of
    the checkpoint."""
    s = Setting(cfg, ctx, shard["row"])
    types = {b: _ids(s, shard["epsilon"], block_type=b) for b in shard["block_types"]}

    def unit(seed):
        done = {}
        for b, ids in types.items():
            mode, split = BLOCK_TYPE_SPECS[b]
            k = 2 if split == "head" else cfg.fig2.k
            for kk in (1, k):
                yield from s.one_run(ids=ids, seed=seed, k=kk, eps=shard["epsilon"], policy="scaled",
                                     split=split if kk > 1 else "equal", mode=mode, repair=False,
                                     with_curve=False, done=done)

    yield from _checkpointed(ctx, lambda: (r for ids in types.values() for r in s.reference_rows(ids)),
                             [functools.partial(unit, seed) for seed in cfg.fig2.seeds])


def run_mechanism(cfg, ctx, shard):
    """Claim 6b: ‖x_end − x₀‖² after all noisy phases with the loss gradient off, per k and draw."""
    row = getattr(cfg, shard["row"])
    model, _ = load_model(ctx, shard["row"], row.arch, None, "original", 0)  # no data needed
    c = cfg.constants
    eps = sorted(row.epsilons)[len(row.epsilons) // 2]
    sched = NoisySchedule(eta=c.eta, lam=c.lam, m=c.m, batch_size=c.batch_size, use_loss_gradient=False,
                          bn_mode=c.bn_mode)
    done, blocks = {}, {}  # k = 1 is the same mechanism under both policies (one block, the same σ): drawn once
    for policy in ("scaled", "shared"):
        for k in cfg.mechanism.ks:
            plan = A.plan(eps=eps, delta=c.delta, k=k, eta=c.eta, lam=c.lam, c0=c.c0, c1=c.c1, policy=policy, m=c.m)
            for draw in range(cfg.mechanism.draws):
                seed = ctx.seed_for(f"mechanism-{draw}")
                key = (k, tuple((b.sigma, b.t_ft, b.steps) for b in plan.blocks), seed)
                if key not in done:
                    if (k, seed) not in blocks:  # the same split (bases) under both policies
                        blocks[(k, seed)] = make_blocks(model, k, seed=seed)
                    done[key] = perturbation_energy(model, blocks[(k, seed)], plan, sched=sched, seed=seed,
                                                    device=ctx.device)
                energy = done[key]
                yield {"row_key": shard["row"], "epsilon": eps, "block_constants": policy, "k": k, "draw": draw,
                       "energy": energy, "sigma": plan.blocks[0].sigma, "t_ft": plan.blocks[0].t_ft,
                       "n_parameters": int(ParamView(model).flat().numel())}


def run_tab1(cfg, ctx, shard):
    """Class-wise deletion: retrain, NFT, block-NFT (shared, scaled), FT, GA, RL, SalUn."""
    from reprosuite.unlearning.methods import UnlearnData, unlearn

    t = cfg.tab1
    row = getattr(cfg, shard["row"])
    prep = prepare(row, ctx)
    split = class_split(prep, t.forget_class)
    f, r = torch.from_numpy(split.forget), torch.from_numpy(split.retain)
    data = UnlearnData(prep.x_train[f], prep.y_train[f], prep.x_train[r], prep.y_train[r], prep.n_classes)
    original, _ = load_model(ctx, shard["row"], row.arch, prep, "original", 0)
    retrain, blob = load_model(ctx, shard["row"], row.arch, prep, f"class{t.forget_class}", 0)
    c = cfg.constants
    keep = prep.y_test != t.forget_class
    r_eval = torch.from_numpy(subset(len(data.y_retain), row.eval_subset, seed=4))
    member = torch.from_numpy(subset(len(data.y_retain), cfg.nft.mia_size, seed=2))
    nonmember = torch.from_numpy(subset(int(keep.sum()), cfg.nft.mia_size, seed=3))
    x_te, y_te = prep.x_test[keep], prep.y_test[keep]
    x_tc, y_tc = prep.x_test[~keep], prep.y_test[~keep]
    d = ctx.device
    ids = {"row_key": shard["row"], "row_label": row.label, "dataset": prep.name, "stand_in_for": row.stand_in_for or "",
           "forget_class": t.forget_class}

    def metrics(model) -> dict:
        lf, lr, lt, lm = (predict(model, x, d) for x in (data.x_forget, data.x_retain[r_eval], x_te, data.x_retain[member]))
        ltc = predict(model, x_tc, d)
        if not all(torch.isfinite(v).all() for v in (lf, lr, lt, lm, ltc)):  # a diverged baseline (GA)
            return {"ra": None, "ta": None, "ua": None, "mia_svc": None, "mia_loss_accuracy": None,
                    "diverged": True}
        return {"ra": float((lr.argmax(1) == data.y_retain[r_eval]).float().mean()),
                "ta": float((lt.argmax(1) == y_te).float().mean()),
                "ua": 1.0 - float((lf.argmax(1) == data.y_forget).float().mean()),
                "mia_svc": svc_mia_confidence((lm, data.y_retain[member]), (lt[nonmember], y_te[nonmember]),
                                              (lf, data.y_forget)),
                "mia_loss_accuracy": loss_mia((lf, data.y_forget), (ltc, y_tc), seed=0)}

    yield {"row": "method", **ids, "method": "original", "seed": 0, **metrics(original), "runtime_s": 0.0}
    yield {"row": "method", **ids, "method": "retrain", "seed": 0, **metrics(retrain), "runtime_s": blob["wall_s"],
           "steps": blob["train_steps"]}
    sched = NoisySchedule(eta=c.eta, lam=c.lam, m=c.m, batch_size=c.batch_size, bn_mode=c.bn_mode, ft_lr=c.ft_lr,
                          ft_momentum=c.ft_momentum, ft_weight_decay=c.ft_weight_decay, ft_batch_size=c.ft_batch_size)
    for seed in t.seeds:
        for name, k, policy in (("nft", 1, "shared"), (f"block_nft_k{t.k}_shared", t.k, "shared"),
                                (f"block_nft_k{t.k}_scaled", t.k, "scaled")):
            model = copy.deepcopy(original)
            blocks = make_blocks(model, k, seed=ctx.seed_for(f"basis-{seed}"))
            plan = A.plan(eps=t.epsilon, delta=c.delta, k=k, eta=c.eta, lam=c.lam, c0=c.c0, c1=c.c1, policy=policy, m=c.m)
            t0 = time.perf_counter()
            info = block_nft(model, blocks, plan, sched=sched, retain=(data.x_retain, data.y_retain),
                             max_steps=c.max_t_nft if k == 1 else c.max_t_blocks, seed=ctx.seed_for(f"nft-{seed}"),
                             device=d, log_every=0)
            yield {"row": "method", **ids, "method": name, "seed": seed, **metrics(model),
                   "runtime_s": time.perf_counter() - t0, "steps": info["total_steps"], "epsilon": t.epsilon,
                   "sigma": plan.blocks[0].sigma, "k": k, "block_constants": policy}
        for name in ("ft", "ga", "rl", "salun"):
            model, info = unlearn(original, data, getattr(t, name), seed=ctx.seed_for(f"{name}-{seed}"), device=d)
            yield {"row": "method", **ids, "method": name, "seed": seed, **metrics(model), "runtime_s": info["rte_s"],
                   "steps": info.get("steps")}
