"""C-F2 full-class deletion on MNIST (docs/papers/collateral.md §2.7): per-class accuracy drop (retrain - unlearned)
vs cosine similarity of class-mean embeddings to the deleted class, for RL and GA.

One job for every repeat (one start-up, one data load): per repeat, the original (all data) and the
retrain (without the class) are trained with the SmallCNN recipe from the repeat's seeds (the seeds
a job of that repeat alone would draw), then RL (Adam on forget batches with uniform labels over
the other classes) and GA (Adam ascent on forget batches) run for fixed step counts. Finished
repeats are checkpointed; rows carry their repeat as ``seed``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from reprosuite.data import image_dataset
from reprosuite.unlearning.bank import Prepared, new_model
from reprosuite.unlearning.metrics import forget_centre
from reprosuite.unlearning.splits import full_class_split
from reprosuite.unlearning.training import images_to_tensor, predict, train_model


def _forget_steps(model, x_f, y_f, *, steps: int, lr: float, batch: int, kind: str, n_classes: int,
                  forget_class: int, gen: torch.Generator, reseed_bug: bool, label_seed: int, device: str):
    """``steps`` Adam steps on shuffled forget batches: RL (CE to random other-class labels) or GA."""
    model = copy.deepcopy(model).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.empty(0, dtype=torch.long)
    label_gen = torch.Generator().manual_seed(label_seed)
    for _ in range(steps):
        if len(order) < batch:
            order = torch.cat([order, torch.randperm(len(x_f), generator=gen)])
        idx, order = order[:batch], order[batch:]
        xb, yb = x_f[idx].to(device), y_f[idx].to(device)
        logits = model(xb)
        if kind == "ga":
            loss = -F.cross_entropy(logits, yb)
        else:
            if reseed_bug:  # the released code re-seeds on every call: same labels for every batch
                label_gen = torch.Generator().manual_seed(label_seed)
            others = torch.randint(0, n_classes - 1, (len(idx),), generator=label_gen)
            labels = others + (others >= forget_class).long()  # uniform over the other classes
            loss = F.cross_entropy(logits, labels.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def per_class_accuracy(logits: torch.Tensor, y: torch.Tensor, n_classes: int) -> np.ndarray:
    pred = logits.argmax(1)
    return np.array([float((pred[y == k] == k).float().mean()) for k in range(n_classes)])


def class_similarity(feat: torch.Tensor, y: torch.Tensor, n_classes: int) -> np.ndarray:
    """(K, K) cosine similarity of class-mean embeddings; feat (N, 64)."""
    means = torch.stack([forget_centre(feat[y == k]) for k in range(n_classes)])  # (K, 64), unit rows
    return (means @ means.T).numpy()


def run_fig2(cfg, ctx, shard):
    f2 = cfg.fig2
    data = image_dataset(f2.dataset, ctx.data_dir)
    ctx.use_dataset(data.name)
    mean, std = data.normalisation
    prep = Prepared(data.name, images_to_tensor(data.x_train, mean, std), torch.from_numpy(data.y_train),
                    images_to_tensor(data.x_test, mean, std), torch.from_numpy(data.y_test), data.n_classes)
    state = ctx.load_state() or {"done": []}
    for rows in state["done"]:
        yield from rows
    for repeat in f2.repeats[len(state["done"]):]:
        rows = [{**r, "seed": repeat} for r in _repeat(f2, dataclasses.replace(ctx, seed=repeat), prep)]
        state["done"].append(rows)
        ctx.save_state(state)
        yield from rows


def _repeat(f2, ctx, prep):
    """One repeat; ``ctx`` is the job's context at the repeat's seed (used for seeds only)."""
    split = full_class_split(prep.y_train.numpy(), f2.forget_class)
    f, r = torch.from_numpy(split.forget), torch.from_numpy(split.retain)
    k, c = prep.n_classes, f2.forget_class
    original = new_model("small_cnn", prep, ctx.torch_generator("init-original"))
    train_model(original, prep.x_train, prep.y_train, f2.train, seed=ctx.seed_for("data-original"), device=ctx.device)
    retrain = new_model("small_cnn", prep, ctx.torch_generator("init-retrain"))
    train_model(retrain, prep.x_train[r], prep.y_train[r], f2.train, seed=ctx.seed_for("data-retrain"), device=ctx.device)
    sim = class_similarity(predict(original, prep.x_train, ctx.device, features=True), prep.y_train, k)
    acc = {"original": per_class_accuracy(predict(original, prep.x_test, ctx.device), prep.y_test, k),
           "retrain": per_class_accuracy(predict(retrain, prep.x_test, ctx.device), prep.y_test, k)}
    for method, steps, lr in (("rl", f2.rl_steps, f2.rl_lr), ("ga", f2.ga_steps, f2.ga_lr)):
        model = _forget_steps(original, prep.x_train[f], prep.y_train[f], steps=steps, lr=lr, batch=f2.batch_size,
                              kind=method, n_classes=k, forget_class=c, gen=ctx.torch_generator(f"order-{method}"),
                              reseed_bug=f2.rl_label_reseed_bug, label_seed=ctx.seed_for(f"labels-{method}"),
                              device=ctx.device)
        acc_u = per_class_accuracy(predict(model, prep.x_test, ctx.device), prep.y_test, k)
        for j in range(k):
            yield {"row": "class", "method": method, "class": j, "deleted_class": c, "similarity": float(sim[c, j]),
                   "acc_original": acc["original"][j], "acc_retrain": acc["retrain"][j], "acc_unlearned": acc_u[j],
                   "acc_drop": acc["retrain"][j] - acc_u[j], "steps": steps}
    for i in range(k):
        for j in range(k):
            yield {"row": "similarity", "method": "original", "class": i, "class_j": j, "similarity": float(sim[i, j])}
