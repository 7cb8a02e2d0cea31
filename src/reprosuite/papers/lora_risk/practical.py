"""Practical task (fig6, fig7, tab1; claims 10–12): MiniLM-L6 on Rotten Tomatoes, FFT vs peft LoRA.

Stand-in for the paper's Qwen2.5 / BoolQ-ARC-CSQA experiments (docs/papers/lora_risk.md, "Practical") that runs offline
on a CPU: the offline all-MiniLM-L6-v2 (22.7 M parameters) with a mean-pooled linear head,
Rotten Tomatoes split by movie (no leakage), one Snakemake job per (method/rank, n).
"""

from __future__ import annotations

import copy
import math
import os
import time

import numpy as np

from reprosuite import data

MODEL_NAME = "all-MiniLM-L6-v2"
LINEAR_MODULES = ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense", "intermediate.dense", "output.dense")


def split_rotten_tomatoes(*, fractions: tuple[float, float, float], seed: int):
    """(frame, train_idx, val_idx, test_idx): movies sorted, shuffled with default_rng(seed), cut by
    movie count (8,894 train pool / 2,518 test / 57.9 % fresh at seed 0)."""
    frame = data.rotten_tomatoes()
    names = frame["movie_name"].to_numpy()
    movies = np.array(sorted(set(names)), dtype=object)
    np.random.default_rng(seed).shuffle(movies)
    cut1, cut2 = int(fractions[0] * len(movies)), int((fractions[0] + fractions[1]) * len(movies))
    train = np.flatnonzero(np.isin(names, movies[:cut1]))
    val = np.flatnonzero(np.isin(names, movies[cut1:cut2]))
    test = np.flatnonzero(np.isin(names, movies[cut2:]))
    return frame, train, val, test


def subset(idx: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """A fixed random subset (shared by every method: it depends only on ``seed``)."""
    if size is None or size >= len(idx):
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, size=size, replace=False))


def load_encoder():
    """The offline MiniLM (BertModel with pooler) and its tokenizer, from the local carrier path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = data.minilm_path()
    return AutoModel.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


def build_classifier(encoder, *, pooling: str, seed: int):
    """Encoder + ``classifier`` Linear(hidden, 2) on the mean-pooled last hidden state (or CLS→pooler)."""
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            from reprosuite.models import seeded

            # nn.Linear init draws from torch's global RNG
            self.classifier = seeded(seed, lambda: nn.Linear(encoder.config.hidden_size, 2))

        def features(self, input_ids, attention_mask):  # (b, L) -> (b, hidden)
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            if pooling == "mean":
                mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)  # (b, L, 1)
                return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return out.pooler_output

        def forward(self, input_ids, attention_mask):
            return self.classifier(self.features(input_ids, attention_mask))

    return Classifier()


def adapt(model, *, method: str, rank: int, p):
    """Make the trainable set of ``method``: head only, everything, or peft LoRA + the head."""
    if method == "fft":
        for prm in model.parameters():
            prm.requires_grad_(True)
        return model
    if method == "head":
        for prm in model.encoder.parameters():
            prm.requires_grad_(False)
        return model
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=rank, lora_alpha=p.alpha_over_r * rank, lora_dropout=p.dropout,
                     target_modules=list(p.targets), modules_to_save=["classifier"])
    return get_peft_model(model, cfg)


def trainable_count(model) -> int:
    return int(sum(prm.numel() for prm in model.parameters() if prm.requires_grad))


def tokenize(tokenizer, texts, max_length: int):
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad(ids: list[list[int]], pad_id: int):
    """Dynamic padding of a batch: (input_ids (b, L), attention_mask (b, L))."""
    import torch

    width = max(len(s) for s in ids)
    out = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, s in enumerate(ids):
        out[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return out, mask


def accuracy(model, ids, labels, *, pad_id: int, batch: int, device: str = "cpu") -> float:
    import torch

    model.eval()
    order = np.argsort([len(s) for s in ids], kind="stable")  # length-sorted batches: little padding
    ids, labels = [ids[i] for i in order], np.asarray(labels)[order]
    correct = 0
    with torch.no_grad():
        for start in range(0, len(ids), batch):
            x, m = pad(ids[start:start + batch], pad_id)
            pred = model(x.to(device), m.to(device)).argmax(-1).cpu().numpy()
            correct += int((pred == labels[start:start + batch]).sum())
    return correct / max(len(ids), 1)


def train(model, ids, labels, *, lr: float, lr_head: float, p, steps: int, pad_id: int, generator,
          device: str = "cpu", resume: dict | None = None, save=None) -> float:
    """AdamW (wd), cosine schedule with warmup, cross-entropy; the head at ``lr_head``.

    Every ``p.checkpoint_steps`` steps ``save(state)`` receives the trainable weights, optimizer,
    schedule, batch order, the batch generator and torch's global RNG (dropout); ``resume`` (such a
    state) continues from it, giving the same weights as an uninterrupted run."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    head, body = [], []
    for name, prm in model.named_parameters():
        if prm.requires_grad:
            (head if "classifier" in name else body).append(prm)
    groups = [{"params": head, "lr": lr_head}] + ([{"params": body, "lr": lr}] if body else [])
    opt = torch.optim.AdamW(groups, weight_decay=p.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, int(round(p.warmup * steps)), steps)
    labels_t = torch.as_tensor(labels).to(device)
    order, pos, loss = torch.randperm(len(ids), generator=generator), 0, torch.tensor(float("nan"))
    feats = None
    if not body:  # head-only probe: the frozen encoder's features are computed once (eval mode)
        model.eval()
        with torch.no_grad():
            feats = torch.cat([model.features(*(t.to(device) for t in pad(ids[i:i + 64], pad_id)))
                               for i in range(0, len(ids), 64)])
    start = 0
    if resume is not None:
        model.load_state_dict(resume["weights"], strict=False)
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])  # the encoder's dropout draws from torch's global stream
        if resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(resume["cuda_rng"])
        order, pos, start, loss = resume["order"], resume["pos"], resume["step"], torch.tensor(resume["loss"])
    model.train()
    for step in range(start, steps):
        if pos >= len(order):
            order, pos = torch.randperm(len(ids), generator=generator), 0
        batch = order[pos:pos + p.batch_size].tolist()
        pos += p.batch_size
        if feats is not None:
            logits = model.classifier(feats[batch])
        else:
            x, m = pad([ids[i] for i in batch], pad_id)
            logits = model(x.to(device), m.to(device))
        loss = torch.nn.functional.cross_entropy(logits, labels_t[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if save is not None and p.checkpoint_steps and (step + 1) % p.checkpoint_steps == 0 and step + 1 < steps:
            save({"weights": {n: w.detach().cpu() for n, w in model.named_parameters() if w.requires_grad},
                  "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "generator": generator.get_state(),
                  "order": order, "pos": pos, "step": step + 1, "loss": float(loss.detach()),
                  "torch_rng": torch.get_rng_state(),
                  "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None})
    return float(loss.detach())


def n_steps(p, n: int) -> int:
    steps = max(math.ceil(p.epochs * n / p.batch_size), p.min_steps)
    return min(steps, p.max_steps) if p.max_steps else steps


def run_practical(cfg, ctx, shard):
    """One (method, rank, n) cell: train at each lr of the method's grid (validation picks one)."""

    p = cfg.practical
    method, rank = shard["method"], shard["rank"]
    frame, train_idx, val_idx, test_idx = split_rotten_tomatoes(fractions=p.split, seed=p.split_seed)
    ctx.use_dataset("rotten_tomatoes")
    n = min(shard["n"], len(train_idx))
    tr = subset(train_idx, n, p.data_seed)
    te = subset(test_idx, p.test_subset, p.split_seed + 1)
    va = subset(val_idx, p.val_subset, p.split_seed + 2)
    start_load = time.time()
    encoder, tok = load_encoder()
    load_s = time.time() - start_load
    texts, labels = frame["text"].to_numpy(), frame["label"].to_numpy()
    ids = {k: tokenize(tok, texts[v], p.max_length) for k, v in (("train", tr), ("test", te), ("val", va))}
    lrs = {"head": p.lrs_head, "fft": p.lrs_fft, "lora": p.lrs_lora}[method]
    steps = n_steps(p, n)
    want_spectrum = method == "fft" and p.spectrum and n == min(max(p.ns), len(train_idx))
    state = ctx.load_state() or {}  # after a kill: the finished learning rates and the one in training
    rows, spectra = list(state.get("rows", [])), list(state.get("spectra", []))
    for i, lr in enumerate(lrs):
        if i < len(rows):
            continue
        start = time.time()
        model = adapt(build_classifier(copy.deepcopy(encoder), pooling=p.head_pooling, seed=ctx.seed_for("head")),
                      method=method, rank=rank, p=p).to(ctx.device)
        count = trainable_count(model)
        base = {k: v.detach().clone() for k, v in model.named_parameters()} if want_spectrum else None
        lr_head = lr if method == "head" else p.lr_head
        def save(train_state, i=i):
            ctx.save_state({"rows": rows, "spectra": spectra, "lr_index": i, "train": train_state,
                            "step": train_state["step"]})

        loss = train(model, ids["train"], labels[tr], lr=lr, lr_head=lr_head, p=p, steps=steps,
                     pad_id=tok.pad_token_id, generator=ctx.torch_generator(f"batches-{n}"), device=ctx.device,
                     resume=state.get("train") if state.get("lr_index") == i else None, save=save)
        train_s = time.time() - start
        if method == "lora":
            model = model.merge_and_unload()  # evaluate the merged W0 + (α/r) B A
        row = {}
        if len(lrs) > 1:
            row["val_accuracy"] = accuracy(model, ids["val"], labels[va], pad_id=tok.pad_token_id, batch=p.eval_batch,
                                              device=ctx.device)
        t0 = time.time()
        test_acc = accuracy(model, ids["test"], labels[te], pad_id=tok.pad_token_id, batch=p.eval_batch,
                                              device=ctx.device)
        if base is not None:
            spectra.append(delta_spectra(model, base))
        rows.append(dict(row, dataset="rotten_tomatoes", model=MODEL_NAME, method=method,
                         label={"head": "head-only probe", "fft": "FFT"}.get(method, f"LoRA r={rank}"),
                         lora_rank=rank, alpha=p.alpha_over_r * rank if method == "lora" else 0.0,
                         lr=lr if method != "head" else 0.0, lr_head=lr_head, n=n, data_seed=p.data_seed,
                         train_seed=ctx.seed, trainable_params=count, steps=steps, train_loss_final=loss,
                         test_accuracy=test_acc, n_test=len(te), pooling=p.head_pooling, model_load_s=load_s,
                         train_time_s=train_s, eval_time_s=time.time() - t0, wall_time_s=time.time() - start))
        if i + 1 < len(lrs):  # the next learning rate starts from here after a kill
            ctx.save_state({"rows": rows, "spectra": spectra, "lr_index": i + 1, "train": None, "step": 0})
        del model
    best = int(np.argmax([r["val_accuracy"] for r in rows])) if len(rows) > 1 else 0
    if spectra:
        ctx.save_artifact("delta_w", spectra[best])
    for i, row in enumerate(rows):
        yield dict(row, selected=bool(i == best))


def delta_spectra(model, base: dict) -> dict:
    """Singular values of ΔW = W_ft − W_base for every encoder Linear: {(layer, module): s}."""
    import torch

    out = {}
    for name, prm in model.named_parameters():
        if not name.endswith(".weight") or prm.ndim != 2 or ".layer." not in name:
            continue
        module = next((m for m in LINEAR_MODULES if name.endswith(m + ".weight")), None)
        if module is None:
            continue
        layer = int(name.split(".layer.")[1].split(".")[0])
        out[(layer, module)] = torch.linalg.svdvals((prm.detach() - base[name]).double().cpu()).numpy()
    return out


def run_spectrum(cfg, ctx, shard):
    """fig7 right / claim 11: cumulative energy Σ_{i≤k} s_i² / Σ s_i² of ΔW per (layer, module)."""
    p = cfg.practical
    _, train_idx, _, _ = split_rotten_tomatoes(fractions=p.split, seed=p.split_seed)
    n = min(max(p.ns), len(train_idx))
    spectra = ctx.load_artifact("practical", f"fft-n{max(p.ns)}", ctx.seed, "delta_w")
    ctx.use_dataset("rotten_tomatoes")
    for (layer, module), s in sorted(spectra.items()):
        energy = np.cumsum(s**2) / max(np.sum(s**2), 1e-300)
        full = len(s)
        ranks = {q: int(np.searchsorted(energy, q / 100.0) + 1) for q in (80, 90, 95)}
        kind = "attention" if module.startswith("attention") else "mlp"
        for k in range(1, full + 1):
            yield {"dataset": "rotten_tomatoes", "model": MODEL_NAME, "n": n, "layer": layer, "module": module,
                   "module_type": kind, "k": k, "singular_value": float(s[k - 1]),
                   "normalised_sv": float(s[k - 1] / s[0]) if s[0] > 0 else 0.0,
                   "cumulative_energy": float(energy[k - 1]), "full_rank": full,
                   "rank_80": ranks[80], "rank_90": ranks[90], "rank_95": ranks[95]}


def run_param_counts(cfg, ctx, shard):
    """Claim 12 / tab1: trainable parameters of head-only, FFT and LoRA at each rank (no training)."""
    p = cfg.practical
    encoder, _ = load_encoder()
    ctx.use_dataset("rotten_tomatoes")
    specs = [("head", 0), ("fft", 0)] + [("lora", r) for r in p.count_ranks]
    for method, rank in specs:
        model = adapt(build_classifier(copy.deepcopy(encoder), pooling=p.head_pooling, seed=0),
                      method=method, rank=rank, p=p)
        yield {"dataset": "rotten_tomatoes", "model": MODEL_NAME, "method": method, "lora_rank": rank,
               "targets": "+".join(p.targets), "trainable_params": trainable_count(model),
               "total_params": int(sum(prm.numel() for prm in model.parameters()))}
