"""Partial-class deletion experiments (C-F3, C-T1, C-F4, C-F5; docs/papers/collateral.md §2).

The original and the retrains of every (class, frac) cell come from the bank
(``reprosuite.unlearning.bank``, experiment ``models``), loaded at the shard's ``model_seed``.

- ``run_reference``: split facts (claim 1), the original / retrain / held-out-floor rows, and the
  cell's shared evaluation (similarity, bin edges, reference logits) saved as an artifact.
- ``run_teacher``: LTD's teacher (steps 1-3) of every unlearning seed, saved as artifacts: the
  ``unlearn`` job distils from them and ``ablation`` reuses the first seed's at LTD's own setting.
- ``run_unlearn``: every (method, seed) of one cell in one job (one start-up, one load of the data,
  the models and the reference; s(x) recomputed once from the original): unlearn, then bin rows
  (test and retain), aggregates, MIA, RTE, per-epoch dynamics and per-point rows. Each (method,
  seed) draws exactly the seeds a job of its own would (``seed_of``); finished ones are
  checkpointed, so a killed job resumes at the next.
- ``run_ablation``: LTD's teacher alone at every ablation point of one cell, KL(hist_retrain ||
  hist_teacher) and reference KLs.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from reprosuite.models import build_model
from reprosuite.runner import Diverged, derive_seed
from reprosuite.unlearning import bank
from reprosuite.unlearning import metrics as M
from reprosuite.unlearning.ltd import (
    Teacher,
    fit_teacher,
    local_teacher_distillation,
    select_support,
    train_teacher,
)
from reprosuite.unlearning.methods import unlearn
from reprosuite.unlearning.splits import split_facts
from reprosuite.unlearning.training import augment, predict

from . import ablation_points, bank_spec, cell_id, cell_request, reference_shard, teacher_shard
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
    spec, ms, req = bank_spec(cfg), shard["model_seed"], cell_request(shard)
    saved = (bank.load_logits(ctx, spec, None, 0, ms), [bank.load_logits(ctx, spec, req, i, ms) for i in range(len(retrains))])
    ref = reference_eval(main, prep, d, original, retrains, ctx.device, split=split, saved=saved)
    ctx.save_artifact("eval", ref)
    bins, agg = evaluate(ref["original"], ref, c, ctx.seed_for("mia"), main)
    yield from _result_rows("original", bins, agg, ids, {})
    for i, logits in enumerate(ref["retrains"]):
        bins, agg = evaluate(logits, ref, c, ctx.seed_for("mia"), main)
        is_floor = main.floor_retrain and i == main.n_retrains - 1
        role = "retrain_floor" if is_floor else "retrain"
        keep = bins if is_floor else []  # a consensus retrain vs itself is not a discrepancy
        yield from _result_rows(role, keep, agg, ids, {"retrain_index": i})


def seed_of(ctx, seed: int, stage: str, experiment: str | None = None) -> int:
    """``ctx.seed_for(stage)`` of a job that ran ``seed`` alone (of ``experiment``, default this one):
    a job that loops over seeds draws for each exactly what its own job would have drawn."""
    return derive_seed(ctx.paper, experiment or ctx.experiment, seed, stage)


def ltd_seed(ctx, seed: int) -> int:
    """LTD's seed at unlearning seed ``seed`` (the ``unlearn`` stream; the teacher job uses it too)."""
    return seed_of(ctx, seed, "unlearn-ltd", "unlearn")


def _teacher_key(seed: int) -> str:
    return f"teacher-s{seed}"


def _retain_view(main, d, seed: int):
    """What support selection embeds: the clean D_r, or (``support_transform = augmented``) one
    augmented draw of it from LTD's seed."""
    return augment(d.x_retain, torch.Generator().manual_seed(seed)) if main.support_transform == "augmented" else None


def run_teacher(cfg, ctx, shard):
    """LTD's steps 1-3 for every unlearning seed of one cell: features of the original (once, for
    the clean view), support, teacher; each teacher is saved as artifact ``teacher-s<seed>`` with its
    measured seconds (they enter LTD's RTE). One row per seed; finished seeds are checkpointed."""
    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    spec, hp = bank_spec(cfg), cfg.main.hp.ltd
    prep = bank.prepare(spec.data, ctx)
    d, _ = bank.forget_data(prep, cell_request(shard))
    original = bank.load_original(ctx, spec, prep, shard["model_seed"])
    state = ctx.load_state() or {"rows": []}
    done = {r["seed"] for r in state["rows"]}
    clean = None
    for k in cfg.seeds:
        if k in done:
            continue
        seed, view = ltd_seed(ctx, k), _retain_view(main, d, ltd_seed(ctx, k))
        if view is None and clean is None:  # the clean embedding does not depend on the seed
            t0 = time.perf_counter()
            feat_r = predict(original, d.x_retain, ctx.device, features=True)
            feat_f = predict(original, d.x_forget, ctx.device, features=True)
            clean = (feat_r, feat_f, time.perf_counter() - t0)
        teacher = fit_teacher(original, d, hp, seed=seed, device=ctx.device, retain_view=view,
                              features=clean if view is None else None)
        ctx.save_artifact(_teacher_key(k), {"state_dict": teacher.model.state_dict(), "arch": hp.teacher_arch,
                                            "history": teacher.history, "support": teacher.support,
                                            "seconds": teacher.seconds, "seed": k})
        state["rows"].append({**_ids(c, frac), "seed": k, "teacher_epochs": len(teacher.history),
                              "teacher_train_accuracy": teacher.history[-1].get("train_accuracy"),
                              "support_size": int(len(teacher.support)),
                              "support_retained_forget_class": int((d.y_retain[teacher.support] == c).sum()),
                              "teacher_s": teacher.seconds})
        ctx.save_state(state)
    yield from state["rows"]


def load_teacher(cfg, ctx, prep, shard, seed: int) -> Teacher:
    """The teacher ``run_teacher`` fitted for unlearning seed ``seed`` in the shard's cell (eval mode)."""
    blob = ctx.load_artifact("teacher", teacher_shard(cfg, shard), 0, _teacher_key(seed))
    c, side = prep.shape
    model = build_model(blob["arch"], n_classes=prep.n_classes, in_channels=c, image_size=side)
    model.load_state_dict(blob["state_dict"])
    return Teacher(model.to(ctx.device).eval(), blob["history"], blob["support"], blob["seconds"])


def run_unlearn(cfg, ctx, shard):
    """Every method at every seed from the shared original, evaluated against the shared reference."""
    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    spec = bank_spec(cfg)
    prep = bank.prepare(spec.data, ctx)
    d, _ = bank.forget_data(prep, cell_request(shard))
    ids = _ids(c, frac)
    original = bank.load_original(ctx, spec, prep, shard["model_seed"])
    ref = ctx.load_artifact("reference", reference_shard(cfg, shard), 0, "eval")
    # s(x) recomputed here from the original, independently of the reference artifact that fixes the bins
    centre = M.forget_centre(predict(original, d.x_forget, ctx.device, features=True))
    s = M.cosine_to_centre(predict(original, prep.x_test, ctx.device, features=True), centre).numpy()
    state = ctx.load_state() or {"done": []}
    done = {(u["method"], u["seed"]): u for u in state["done"]}
    for method in main.methods:
        for k in cfg.seeds:
            unit = done.get((method, k))
            if unit is None:
                teacher = load_teacher(cfg, ctx, prep, shard, k) if method == "ltd" else None
                unit = _unlearn_one(cfg, ctx, method, k, original, d, prep, ref, ids, teacher)
                state["done"].append(unit)
                ctx.save_state(state)
            yield from unit["rows"]
            yield from _point_rows(method, k, s, unit["consensus"], unit["excess_a"], ids)
            yield from unit["epochs"]


def _snapshot(model) -> list[torch.Tensor]:
    return [t.detach().clone() for t in (*model.parameters(), *model.buffers())]


def _unchanged(model, snap) -> bool:
    now = [*model.parameters(), *model.buffers()]
    return snap is not None and len(now) == len(snap) and all(torch.equal(a, b) for a, b in zip(now, snap))


def _unlearn_one(cfg, ctx, method, k, original, d, prep, ref, ids, teacher: Teacher | None) -> dict:
    """One method at unlearning seed ``k``: bin and aggregate rows, per-epoch rows, and the per-point
    consensus flags and excess discrepancies (``_point_rows`` turns them into rows)."""
    main, c = cfg.main, ids["forget_class"]
    epoch_rows: list[dict] = []
    last = {"snap": None}

    def dynamics(epoch, model):
        lf, lt = predict(model, d.x_forget, ctx.device), predict(model, prep.x_test, ctx.device)
        last.update(snap=_snapshot(model), forget=lf, test=lt)  # the final evaluation reuses them
        epoch_rows.append({"method": method, "row": "epoch", "epoch": epoch, **ids, "seed": k,
                           "ua": 1.0 - M.accuracy_np(lf, d.y_forget), "ta": M.accuracy_np(lt, prep.y_test)})

    seed = seed_of(ctx, k, f"unlearn-{method}")
    hp = getattr(main.hp, method)
    if method == "ltd":
        model, info = local_teacher_distillation(original, d, hp, seed=seed, device=ctx.device,
                                                 callback=dynamics, teacher=teacher)
        retrain_pred = np.concatenate([r["forget"].argmax(1).numpy() for r in ref["retrains"][: ref["n_consensus"]]])
        info["teacher_class_c_rate"] = float((info["teacher_forget_pred"] == c).float().mean())
        info["kl_retrain_teacher"] = M.kl_hist(retrain_pred, info["teacher_forget_pred"].numpy(), prep.n_classes)
        info = {k_: v for k_, v in info.items() if k_ not in ("teacher", "teacher_forget_pred")}
    else:
        model, info = unlearn(original, d, hp, seed=seed, device=ctx.device, callback=dynamics)
    known = {key: last[key] for key in ("test", "forget")} if _unchanged(model, last["snap"]) else None
    logits = model_logits(model, d, prep, ref["idx"], ctx.device, known=known)
    if not all(torch.isfinite(v).all() for v in logits.values()):
        raise Diverged(f"{method}: non-finite logits after unlearning")
    bins, agg = evaluate(logits, ref, c, seed_of(ctx, k, "mia"), main)
    extra = {key: v for key, v in info.items() if isinstance(v, int | float | bool) or v is None}
    rows = [{**r, "seed": k} for r in _result_rows(method, bins, agg, ids, extra)]
    consensus, excess = _excess(logits, ref)
    return {"method": method, "seed": k, "rows": rows, "epochs": [_clean(r) for r in epoch_rows],
            "consensus": consensus, "excess_a": excess}


def _excess(logits, ref):
    """Per test point: whether the consensus retrains agree on it, and the excess of metric (a)
    over the held-out floor, 1[unlearned differs from the consensus] - 1[floor differs] (NaN off
    the consensus points or without a floor)."""
    y, n_c = ref["labels"]["test"], ref["n_consensus"]
    consensus = [r["test"] for r in ref["retrains"][:n_c]]
    unl = M.pointwise(y, logits["test"], ref["original"]["test"], consensus)
    ok = np.asarray(unl["consensus"], dtype=bool)
    if len(ref["retrains"]) > n_c:
        floor = M.pointwise(y, ref["retrains"][-1]["test"], ref["original"]["test"], consensus)["a"]
        excess = np.where(ok, unl["a"] - floor, np.nan)
    else:
        excess = np.full(len(ok), np.nan)
    return ok, excess


def _point_rows(method, seed, s, consensus, excess, ids):
    """One row per test point (claims shared_bins, localized_collateral): s(x) recomputed in this
    job from the original, the consensus flag and the excess of metric (a) over the held-out floor."""
    for i in range(len(s)):
        e = excess[i]
        yield {"method": method, "row": "point", "split": "test", **ids, "seed": seed, "point": i, "s": float(s[i]),
               "consensus": bool(consensus[i]), "excess_a": None if math.isnan(e) else float(e)}


def _teacher_row(ids, prep, d, pred, retrain_pred, point, teacher: Teacher, shared_seed) -> dict:
    _, mode, threshold = point
    k, c = prep.n_classes, ids["forget_class"]
    return {**ids, "n_support": int(len(teacher.support)), "support_mode": mode,
            "teacher_threshold": threshold, "teacher_epochs": len(teacher.history),
            "teacher_train_accuracy": teacher.history[-1].get("train_accuracy"),
            "teacher_forget_accuracy": float((pred == d.y_forget.numpy()).mean()),
            "teacher_class_c_rate": float((pred == c).mean()),
            "retrain_class_c_rate": float((retrain_pred == c).mean()),
            "kl_retrain_teacher": M.kl_hist(retrain_pred, pred, k),
            "kl_retrain_uniform": M.kl_hist(retrain_pred, None, k, q_probs=np.ones(k)),
            "kl_retrain_all_c": M.kl_hist(retrain_pred, None, k, q_probs=np.eye(k)[c]),
            "wall_time_s": teacher.seconds, "teacher_of_unlearn_seed": shared_seed}


def run_ablation(cfg, ctx, shard):
    """LTD's teacher at every ablation point (support size, mode, stop threshold) of one cell;
    histogram KLs on D_f. The point at LTD's own setting is the teacher of the first unlearning seed
    (``run_teacher``), not another one; the others draw from this job's ``ablation`` stream.
    Finished points are checkpointed."""
    main, c, frac = cfg.main, shard["forget_class"], shard["frac"]
    spec = bank_spec(cfg)
    prep = bank.prepare(spec.data, ctx)
    d, _ = bank.forget_data(prep, cell_request(shard))
    original = bank.load_original(ctx, spec, prep, shard["model_seed"])
    ref = ctx.load_artifact("reference", reference_shard(cfg, shard), 0, "eval")
    retrain_pred = np.concatenate([r["forget"].argmax(1).numpy() for r in ref["retrains"][: ref["n_consensus"]]])
    state = ctx.load_state() or {"rows": []}
    seed = ctx.seed_for("ablation")
    feats = None
    for j, (point, ltd) in enumerate(ablation_points(cfg)):
        if j < len(state["rows"]):
            continue
        shared = cfg.seeds[0] if ltd == main.hp.ltd and teacher_shard(cfg, shard) is not None else None
        if shared is not None:
            teacher = load_teacher(cfg, ctx, prep, shard, shared)
        else:
            t0 = time.perf_counter()
            if feats is None:  # the clean embedding of D_r and D_f, once for every point
                feats = (predict(original, d.x_retain, ctx.device, features=True),
                         predict(original, d.x_forget, ctx.device, features=True), time.perf_counter() - t0)
                t0 = time.perf_counter()
            support = select_support(feats[0], feats[1], ltd.n_support, ltd.support_mode, seed)
            model, history = train_teacher(d, support, ltd, seed=seed, device=ctx.device,
                                           in_channels=prep.shape[0], image_size=prep.shape[1])
            teacher = Teacher(model, history, support, feats[2] + time.perf_counter() - t0)
        pred = predict(teacher.model, d.x_forget, ctx.device).argmax(1).numpy()
        state["rows"].append(_teacher_row(_ids(c, frac), prep, d, pred, retrain_pred, point, teacher, shared))
        ctx.save_state(state)
    yield from state["rows"]
