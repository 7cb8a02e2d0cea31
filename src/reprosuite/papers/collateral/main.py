"""Partial-class deletion experiments (C-F3, C-T1, C-F4, C-F5; docs/papers/collateral.md §2).

The original and the retrains of every (class, frac) cell come from the bank
(``reprosuite.unlearning.bank``, experiment ``models``), loaded at the shard's ``model_seed``.

- ``run_reference``: split facts (claim 1), the original / retrain / held-out-floor rows, and the
  cell's shared evaluation (similarity, bin edges, reference logits) saved as an artifact.
- ``run_unlearn``: one (cell, method, seed) job: unlearn, then bin rows (test and retain),
  aggregates, MIA, RTE and per-epoch dynamics.
- ``run_ablation``: LTD's teacher alone, KL(hist_retrain || hist_teacher) and reference KLs.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from reprosuite.runner import Diverged
from reprosuite.unlearning import bank
from reprosuite.unlearning import metrics as M
from reprosuite.unlearning.ltd import local_teacher_distillation, select_support, train_teacher
from reprosuite.unlearning.methods import unlearn
from reprosuite.unlearning.splits import split_facts
from reprosuite.unlearning.training import augment, predict

from . import bank_spec, cell_id, cell_request, reference_shard
from .evalset import evaluate, model_logits, reference_eval


def _clean(row: dict) -> dict:
    """Undefined metrics (empty bin, degenerate MIA feature) become None, not NaN (NaN = diverged)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def _ids(c: int, frac: float) -> dict:
    return {"forget_class": c, "frac": frac, "cell": cell_id(c, frac)}


def _cell_models(cfg, ctx, prep, shard):
    spec, ms = bank_spec(cfg), shard["model_seed"]
    return bank.load_original(ctx, spec, prep, ms), bank.load_retrains(ctx, spec, prep, cell_request(shard), ms)


def _result_rows(method: str, bins: list[dict], agg: dict, ids: dict, extra: dict) -> list[dict]:
    rows = [_clean({"method": method, **ids, **b}) for b in bins]
    rows.append(_clean({"method": method, "row": "aggregate", **ids, **agg, **extra}))
    return rows


def run_reference(cfg, ctx, shard):
    """Split facts; the original, every retrain and the held-out floor; the shared evaluation."""
    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    prep = bank.prepare(bank_spec(cfg).data, ctx)
    d, split = bank.forget_data(prep, cell_request(shard))
    ids = _ids(c, frac)
    yield {"row": "split", "method": "split", **ids, **split_facts(prep.y_train.numpy(), split)}
    original, retrains = _cell_models(cfg, ctx, prep, shard)
    ref = reference_eval(main, prep, d, original, retrains, ctx.device)
    ctx.save_artifact("eval", ref)
    bins, agg = evaluate(ref["original"], ref, c, ctx.seed_for("mia"), main)
    yield from _result_rows("original", bins, agg, ids, {})
    for i, logits in enumerate(ref["retrains"]):
        bins, agg = evaluate(logits, ref, c, ctx.seed_for("mia"), main)
        is_floor = main.floor_retrain and i == main.n_retrains - 1
        role = "retrain_floor" if is_floor else "retrain"
        keep = bins if is_floor else []  # a consensus retrain vs itself is not a discrepancy
        yield from _result_rows(role, keep, agg, ids, {"retrain_index": i})


def run_unlearn(cfg, ctx, shard):
    """One method at one seed from the shared original; evaluated against the shared reference."""
    main, c, frac, method = cfg.main, shard["forget_class"], shard["frac"], shard["method"]
    spec = bank_spec(cfg)
    prep = bank.prepare(spec.data, ctx)
    d, _ = bank.forget_data(prep, cell_request(shard))
    ids = _ids(c, frac)
    original = bank.load_original(ctx, spec, prep, shard["model_seed"])
    ref = ctx.load_artifact("reference", reference_shard(cfg, shard), 0, "eval")
    epoch_rows: list[dict] = []

    def dynamics(epoch, model):
        epoch_rows.append({"method": method, "row": "epoch", "epoch": epoch, **ids,
                           "ua": 1.0 - M.accuracy_np(predict(model, d.x_forget, ctx.device), d.y_forget),
                           "ta": M.accuracy_np(predict(model, prep.x_test, ctx.device), prep.y_test)})

    seed = ctx.seed_for(f"unlearn-{method}")
    hp = getattr(main.hp, method)
    if method == "ltd":
        view = None
        if main.support_transform == "augmented":
            view = augment(d.x_retain, torch.Generator().manual_seed(seed))
        model, info = local_teacher_distillation(original, d, hp, seed=seed, device=ctx.device,
                                                 callback=dynamics, retain_view=view)
        retrain_pred = np.concatenate([r["forget"].argmax(1).numpy() for r in ref["retrains"][: ref["n_consensus"]]])
        info["teacher_class_c_rate"] = float((info["teacher_forget_pred"] == c).float().mean())
        info["kl_retrain_teacher"] = M.kl_hist(retrain_pred, info["teacher_forget_pred"].numpy(), prep.n_classes)
        info = {k: v for k, v in info.items() if k not in ("teacher", "teacher_forget_pred")}
    else:
        model, info = unlearn(original, d, hp, seed=seed, device=ctx.device, callback=dynamics)
    logits = model_logits(model, d, prep, ref["idx"], ctx.device)
    if not all(torch.isfinite(v).all() for v in logits.values()):
        raise Diverged(f"{method}: non-finite logits after unlearning")
    bins, agg = evaluate(logits, ref, c, ctx.seed_for("mia"), main)
    extra = {k: v for k, v in info.items() if isinstance(v, int | float | bool) or v is None}
    yield from _result_rows(method, bins, agg, ids, extra)
    yield from _point_rows(method, logits, original, d, prep, ref, ids, ctx.device)
    yield from (_clean(r) for r in epoch_rows)


def _point_rows(method, logits, original, d, prep, ref, ids, device):
    """One row per test point (claims shared_bins, localized_collateral): s(x) recomputed here from
    the original (independently of the reference artifact that fixes the bin edges), whether the
    consensus retrains agree on the point, and the excess of metric (a) over the held-out floor,
    1[unlearned differs from the consensus] - 1[floor differs], on consensus points."""
    centre = M.forget_centre(predict(original, d.x_forget, device, features=True))
    s = M.cosine_to_centre(predict(original, prep.x_test, device, features=True), centre).numpy()
    y, n_c = ref["labels"]["test"], ref["n_consensus"]
    consensus = [r["test"] for r in ref["retrains"][:n_c]]
    unl = M.pointwise(y, logits["test"], ref["original"]["test"], consensus)
    has_floor = len(ref["retrains"]) > n_c
    floor = M.pointwise(y, ref["retrains"][-1]["test"], ref["original"]["test"], consensus)["a"] if has_floor else None
    for i in range(len(s)):
        ok = bool(unl["consensus"][i])
        excess = float(unl["a"][i] - floor[i]) if ok and has_floor else None
        yield {"method": method, "row": "point", "split": "test", **ids, "point": i, "s": float(s[i]),
               "consensus": ok, "excess_a": excess}


def run_ablation(cfg, ctx, shard):
    """Train LTD's teacher on one support (size, mode, stop threshold); histogram KLs on D_f."""
    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    spec = bank_spec(cfg)
    prep = bank.prepare(spec.data, ctx)
    d, _ = bank.forget_data(prep, cell_request(shard))
    original = bank.load_original(ctx, spec, prep, shard["model_seed"])
    ref = ctx.load_artifact("reference", reference_shard(cfg, shard), 0, "eval")
    ltd = main.hp.ltd
    ltd = dataclasses.replace(ltd, n_support=shard["n_support"], support_mode=shard["support_mode"],
                              teacher=dataclasses.replace(ltd.teacher, stop_train_acc=shard["threshold"]))
    seed = ctx.seed_for("ablation")
    t0 = time.perf_counter()
    feat_r = predict(original, d.x_retain, ctx.device, features=True)
    feat_f = predict(original, d.x_forget, ctx.device, features=True)
    support = select_support(feat_r, feat_f, ltd.n_support, ltd.support_mode, seed)
    teacher, history = train_teacher(d, support, ltd, seed=seed, device=ctx.device,
                                     in_channels=prep.shape[0], image_size=prep.shape[1])
    wall = time.perf_counter() - t0
    pred = predict(teacher, d.x_forget, ctx.device).argmax(1).numpy()
    retrain_pred = np.concatenate([r["forget"].argmax(1).numpy() for r in ref["retrains"][: ref["n_consensus"]]])
    k = prep.n_classes
    yield {**_ids(c, frac), "n_support": int(len(support)), "support_mode": ltd.support_mode,
           "teacher_threshold": shard["threshold"], "teacher_epochs": len(history),
           "teacher_train_accuracy": history[-1].get("train_accuracy"),
           "teacher_forget_accuracy": float((pred == d.y_forget.numpy()).mean()),
           "teacher_class_c_rate": float((pred == c).mean()),
           "retrain_class_c_rate": float((retrain_pred == c).mean()),
           "kl_retrain_teacher": M.kl_hist(retrain_pred, pred, k),
           "kl_retrain_uniform": M.kl_hist(retrain_pred, None, k, q_probs=np.ones(k)),
           "kl_retrain_all_c": M.kl_hist(retrain_pred, None, k, q_probs=np.eye(k)[c]),
           "wall_time_s": wall}
