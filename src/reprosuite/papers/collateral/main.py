"""Partial-class deletion experiments (C-F3, C-T1, C-F4, C-F5; spec §5).

- ``run_models``: one job per model: the original (all training data) or retrain i of a
  (class, frac) cell (D_r only); saved with ``ctx.save_artifact`` and shared by every method.
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
from reprosuite.unlearning import metrics as M
from reprosuite.unlearning.ltd import local_teacher_distillation, select_support, train_teacher
from reprosuite.unlearning.methods import unlearn
from reprosuite.unlearning.splits import split_facts
from reprosuite.unlearning.training import augment, predict, train_model

from . import cell_id
from .evalset import evaluate, load_model, model_logits, new_model, prepare, unlearn_data


def _clean(row: dict) -> dict:
    """Undefined metrics (empty bin, degenerate MIA feature) become None, not NaN (NaN = diverged)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def _ids(c: int, frac: float) -> dict:
    return {"forget_class": c, "frac": frac, "cell": cell_id(c, frac)}


def run_models(cfg, ctx, shard):
    """Train the original (all data) or retrain ``index`` (D_r of the cell) with the recipe."""
    main = cfg.main
    prep = prepare(main, ctx)
    if shard["role"] == "original":
        x, y, ids = prep.x_train, prep.y_train, {}
    else:
        d, _ = unlearn_data(prep, shard["forget_class"], shard["frac"])
        x, y, ids = d.x_retain, d.y_retain, _ids(shard["forget_class"], shard["frac"])
    stage = f"{shard['role']}-{shard['index']}"  # separate seeds: original, each retrain
    model = new_model(main.arch, prep, ctx.torch_generator(f"init-{stage}")).to(ctx.device)
    state = ctx.load_state()
    start, opt_state, wall0 = 0, None, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        start, opt_state, wall0 = state["epoch"], state, state["wall_s"]
    t0 = time.perf_counter()

    def checkpoint(epoch, model, opt, info):
        ctx.save_state({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                        "scheduler": info["scheduler"], "wall_s": wall0 + time.perf_counter() - t0})

    history = train_model(model, x, y, main.train, seed=ctx.seed_for(f"data-{stage}"), device=ctx.device,
                          start_epoch=start, optimizer_state=opt_state, on_epoch=checkpoint)
    wall = wall0 + time.perf_counter() - t0
    ctx.save_artifact("model", {"state_dict": model.state_dict(), "arch": main.arch, "role": shard["role"],
                                "index": shard["index"], "checkpoint": main.checkpoint, **ids})
    yield {"role": shard["role"], "retrain_index": shard["index"], **ids, "arch": main.arch,
           "epochs": main.train.epochs, "n_train_examples": len(x),
           "train_loss": history[-1]["train_loss"] if history else None,
           "train_accuracy": M.accuracy_np(predict(model, x, ctx.device), y),
           "test_accuracy": M.accuracy_np(predict(model, prep.x_test, ctx.device), prep.y_test),
           "train_wall_time_s": wall}


def _cell_models(cfg, ctx, prep, c, frac):
    main = cfg.main
    original = load_model(ctx, main.arch, prep, "original")
    retrains = [load_model(ctx, main.arch, prep, f"{cell_id(c, frac)}-r{i}") for i in range(main.n_retrains)]
    return original, retrains


def _result_rows(method: str, bins: list[dict], agg: dict, ids: dict, extra: dict) -> list[dict]:
    rows = [_clean({"method": method, **ids, **b}) for b in bins]
    rows.append(_clean({"method": method, "row": "aggregate", **ids, **agg, **extra}))
    return rows


def run_reference(cfg, ctx, shard):
    """Split facts; the original, every retrain and the held-out floor; the shared evaluation."""
    from .evalset import reference_eval

    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    prep = prepare(main, ctx)
    d, split = unlearn_data(prep, c, frac)
    ids = _ids(c, frac)
    yield {"row": "split", "method": "split", **ids, **split_facts(prep.y_train.numpy(), split)}
    original, retrains = _cell_models(cfg, ctx, prep, c, frac)
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
    prep = prepare(main, ctx)
    d, _ = unlearn_data(prep, c, frac)
    ids = _ids(c, frac)
    original = load_model(ctx, main.arch, prep, "original")
    ref = ctx.load_artifact("reference", cell_id(c, frac), 0, "eval")
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
    yield from (_clean(r) for r in epoch_rows)


def run_ablation(cfg, ctx, shard):
    """Train LTD's teacher on one support (size, mode, stop threshold); histogram KLs on D_f."""
    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    prep = prepare(main, ctx)
    d, _ = unlearn_data(prep, c, frac)
    original = load_model(ctx, main.arch, prep, "original")
    ref = ctx.load_artifact("reference", cell_id(c, frac), 0, "eval")
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
