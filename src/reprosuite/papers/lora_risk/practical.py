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
            self.pooling = pooling
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


def packed_features(encoder, input_ids, attention_mask):
    """``Classifier.features`` with mean pooling, with the Linear layers, LayerNorms and GELUs of the
    encoder applied to the real tokens only: a training batch padded to its longest text is ~45%
    padding. Attention runs on the padded layout with the padding masked, as in the model; every
    dropout mask is drawn on the padded shape in the model's order, as ``F.dropout`` draws it on the
    CPU. Same function and random stream as the padded forward: the features are bit for bit the
    same, and so are the gradients, up to float rounding in some FFT ones (the summation order over
    the tokens; ``tests/test_lora_risk.py``)."""
    import torch
    import torch.nn.functional as F

    b, width = input_ids.shape
    x = encoder.embeddings(input_ids=input_ids)  # (b, L, h), its dropout drawn as in the model
    h = x.shape[-1]
    idx = attention_mask.reshape(-1).nonzero().squeeze(1)  # the real tokens of the flat (b·L) layout
    x = x.reshape(-1, h).index_select(0, idx)  # (T, h)
    key_mask = attention_mask.bool()[:, None, None, :]  # (b, 1, 1, L)
    train = encoder.training

    def unpack(t):  # (T, d) -> (b, L, d), zeros at the padding
        return t.new_zeros(b * width, t.shape[-1]).index_copy(0, idx, t).view(b, width, -1)

    def dropout(t, p):  # F.dropout on the CPU: bernoulli(1 − p) on the padded shape, divided by 1 − p
        if not train or p == 0:
            return t
        noise = torch.empty((b, width, t.shape[-1]), dtype=t.dtype, device=t.device).bernoulli_(1 - p)
        noise.div_(1 - p)
        return t * noise.view(-1, t.shape[-1]).index_select(0, idx)

    for layer in encoder.encoder.layer:
        sa, so = layer.attention.self, layer.attention.output
        heads, d = sa.num_attention_heads, sa.attention_head_size
        q, k, v = (unpack(m(x)).view(b, width, heads, d).transpose(1, 2) for m in (sa.query, sa.key, sa.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=sa.dropout.p if train else 0.0,
                                           scale=getattr(sa, "scaling", None))
        a = a.transpose(1, 2).reshape(b * width, h).index_select(0, idx)
        x = so.LayerNorm(dropout(so.dense(a), so.dropout.p) + x)
        inter = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
        x = layer.output.LayerNorm(dropout(layer.output.dense(inter), layer.output.dropout.p) + x)
    hidden = unpack(x)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (b, L, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


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


def encode(model, ids, *, pad_id: int, batch: int, device: str = "cpu", features: bool = False):
    """Length-sorted batches of ``ids`` through the model (a ``Classifier``) in inference mode:
    (order, per-batch logits), or per-batch pooled features of the encoder with ``features``. On the
    CPU with mean pooling the encoder skips the padding (``packed_features``: the same features)."""
    import torch

    model.eval()
    packed = model.pooling == "mean" and torch.device(device).type == "cpu"
    order = np.argsort([len(s) for s in ids], kind="stable")
    ids = [ids[i] for i in order]
    out = []
    with torch.inference_mode():
        for start in range(0, len(ids), batch):
            x, m = (t.to(device) for t in pad(ids[start:start + batch], pad_id))
            feats = packed_features(model.encoder, x, m) if packed else model.features(x, m)
            out.append(feats if features else model.classifier(feats))
    return order, out


def accuracy(model, ids, labels, *, pad_id: int, batch: int, device: str = "cpu", encoded=None) -> float:
    """Test accuracy; ``encoded`` (``encode(..., features=True)`` of a frozen encoder) replaces the
    encoder's pass by the classifier on those features (the same batches, so the same logits)."""
    import torch

    if encoded is None:
        order, logits = encode(model, ids, pad_id=pad_id, batch=batch, device=device)
    else:
        order, feats = encoded
        model.eval()
        with torch.inference_mode():
            logits = [model.classifier(f) for f in feats]
    pred = torch.cat(logits).argmax(-1).cpu().numpy()
    return int((pred == np.asarray(labels)[order]).sum()) / max(len(ids), 1)


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
    # fused: one pass over the weights per step instead of ~10 per-tensor loops (FFT on the CPU: 0.36 s
    # of a 1.3 s step -> 0.07 s); the same update up to float rounding
    opt = torch.optim.AdamW(groups, weight_decay=p.weight_decay, fused=True)
    sched = get_cosine_schedule_with_warmup(opt, int(round(p.warmup * steps)), steps)
    labels_t = torch.as_tensor(labels).to(device)
    order, pos, loss = torch.randperm(len(ids), generator=generator), 0, torch.tensor(float("nan"))
    # on the CPU (mean pooling) the encoder skips the padding of a batch: packed_features, the same
    # function and dropout stream; on CUDA the padded forward (F.dropout draws another stream there)
    net = model.get_base_model() if hasattr(model, "get_base_model") else model
    packed = p.head_pooling == "mean" and torch.device(device).type == "cpu"

    def forward_features(x, m):
        x, m = x.to(device), m.to(device)
        return packed_features(net.encoder, x, m) if packed else net.features(x, m)

    feats = None
    if not body:  # head-only probe: the frozen encoder's features are computed once (eval mode)
        model.eval()
        with torch.no_grad():
            feats = torch.cat([forward_features(*pad(ids[i:i + 64], pad_id)) for i in range(0, len(ids), 64)])
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
        feat = feats[batch] if feats is not None else forward_features(*pad([ids[i] for i in batch], pad_id))
        logits = net.classifier(feat)
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


def cell_name(cell: dict) -> str:
    return f"{cell['method']}{cell['rank'] if cell['method'] == 'lora' else ''}-n{cell['n']}"


def run_practical(cfg, ctx, shard):
    """The job's (method, rank, n) cells in turn (one cell, or every cell of an n: ``practical.jobs``):
    each trains at every lr of its method's grid (validation picks one) and is seeded as a job of its
    own, so its records do not depend on how cells are grouped into jobs.

    Resume: the state holds the rows of finished cells, the finished learning rates of the cell in
    training and its last checkpoint; ``step`` counts the AdamW steps of the whole job."""
    import torch

    p = cfg.practical
    cells = shard.get("cells", [shard])
    frame, train_idx, val_idx, test_idx = split_rotten_tomatoes(fractions=p.split, seed=p.split_seed)
    ctx.use_dataset("rotten_tomatoes")
    te = subset(test_idx, p.test_subset, p.split_seed + 1)
    va = subset(val_idx, p.val_subset, p.split_seed + 2)
    start_load = time.time()
    encoder, tok = load_encoder()
    load_s = time.time() - start_load
    texts, labels = frame["text"].to_numpy(), frame["label"].to_numpy()
    ids = {k: tokenize(tok, texts[v], p.max_length) for k, v in (("test", te), ("val", va))}
    data = {"frame": frame, "train_idx": train_idx, "te": te, "va": va, "ids": ids, "tok": tok, "labels": labels,
            "encoder": encoder, "load_s": load_s, "frozen": {}}
    state = ctx.load_state() or {}  # after a kill: finished cells, finished learning rates, a checkpoint
    done = dict(state.get("done", {}))
    for cell in cells:
        name = cell_name(cell)
        if name not in done:
            resume = state if state.get("cell") == name else {}
            if not resume:
                torch.manual_seed(ctx.seed_for("global"))  # as the runner seeds a job of this cell alone
            done[name] = _run_cell(p, ctx, cell, data, done=done, resume=resume)
        yield from done[name]


def _run_cell(p, ctx, cell: dict, data: dict, *, done: dict, resume: dict) -> list[dict]:
    """Rows of one cell, one per learning rate, the validation pick marked ``selected``."""
    import torch

    method, rank, name = cell["method"], cell["rank"], cell_name(cell)
    train_idx, te, va, ids, tok, labels = (data[k] for k in ("train_idx", "te", "va", "ids", "tok", "labels"))
    n = min(cell["n"], len(train_idx))
    tr = subset(train_idx, n, p.data_seed)
    ids_train = tokenize(tok, data["frame"]["text"].to_numpy()[tr], p.max_length)
    lrs = {"head": p.lrs_head, "fft": p.lrs_fft, "lora": p.lrs_lora}[method]
    steps = n_steps(p, n)
    offset = sum(int(r["steps"]) for rows in done.values() for r in rows)  # steps of the finished cells
    want_spectrum = method == "fft" and p.spectrum and n == min(max(p.ns), len(train_idx))
    rows, spectra = list(resume.get("rows", [])), list(resume.get("spectra", []))
    if resume.get("torch_rng") is not None:  # killed between two learning rates: the stream goes on
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(resume["cuda_rng"])

    def save(cell_state):
        ctx.save_state(dict(cell_state, done=done, cell=name, rows=rows, spectra=spectra))

    for i, lr in enumerate(lrs):
        if i < len(rows):
            continue
        start = time.time()
        model = adapt(build_classifier(copy.deepcopy(data["encoder"]), pooling=p.head_pooling,
                                       seed=ctx.seed_for("head")), method=method, rank=rank, p=p).to(ctx.device)
        count = trainable_count(model)
        base = {k: v.detach().clone() for k, v in model.named_parameters()} if want_spectrum else None
        lr_head = lr if method == "head" else p.lr_head
        steps_before = offset + i * steps

        def save_train(train_state, i=i, steps_before=steps_before):
            save({"lr_index": i, "train": train_state, "step": steps_before + train_state["step"]})

        loss = train(model, ids_train, labels[tr], lr=lr, lr_head=lr_head, p=p, steps=steps,
                     pad_id=tok.pad_token_id, generator=ctx.torch_generator(f"batches-{n}"), device=ctx.device,
                     resume=resume.get("train") if resume.get("lr_index") == i else None, save=save_train)
        train_s = time.time() - start
        if method == "lora":
            model = model.merge_and_unload()  # evaluate the merged W0 + (α/r) B A
        acc = {}
        for k in ("val", "test") if len(lrs) > 1 else ("test",):
            t0 = time.time()
            frozen = None
            if method == "head":  # the frozen encoder's features: once per job, shared by its head-only cells
                if k not in data["frozen"]:
                    data["frozen"][k] = encode(model, ids[k], pad_id=tok.pad_token_id, batch=p.eval_batch,
                                               device=ctx.device, features=True)
                frozen = data["frozen"][k]
            acc[k] = accuracy(model, ids[k], labels[va if k == "val" else te], pad_id=tok.pad_token_id,
                              batch=p.eval_batch, device=ctx.device, encoded=frozen)
        row = {"val_accuracy": acc["val"]} if "val" in acc else {}
        test_acc = acc["test"]
        if base is not None:
            spectra.append(delta_spectra(model, base))
        rows.append(dict(row, dataset="rotten_tomatoes", model=MODEL_NAME, method=method,
                         label={"head": "head-only probe", "fft": "FFT"}.get(method, f"LoRA r={rank}"),
                         lora_rank=rank, alpha=p.alpha_over_r * rank if method == "lora" else 0.0,
                         lr=lr if method != "head" else 0.0, lr_head=lr_head, n=n, data_seed=p.data_seed,
                         train_seed=ctx.seed, trainable_params=count, steps=steps, train_loss_final=loss,
                         test_accuracy=test_acc, n_test=len(te), pooling=p.head_pooling,
                         model_load_s=data["load_s"], train_time_s=train_s, eval_time_s=time.time() - t0,
                         wall_time_s=time.time() - start))
        if i + 1 < len(lrs):  # the next learning rate starts from here after a kill
            save({"lr_index": i + 1, "train": None, "step": steps_before + steps, "torch_rng": torch.get_rng_state(),
                  "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None})
        del model
    best = int(np.argmax([r["val_accuracy"] for r in rows])) if len(rows) > 1 else 0
    if spectra:
        ctx.save_artifact("delta_w", spectra[best])
    return [dict(row, selected=bool(i == best)) for i, row in enumerate(rows)]


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
    from . import _spectrum_needs

    _, producer, _ = _spectrum_needs(cfg, ctx.shard, ctx.seed)[0]
    spectra = ctx.load_artifact("practical", producer, ctx.seed, "delta_w")
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
