"""Paper scale (ii), the authors' LLM recipe (docs/papers/lora_risk.md, "Practical"): Qwen2.5 fine-tuned with FFT or peft LoRA on BoolQ / ARC-E / ARC-C /
CommonsenseQA, scored like lm-eval zero-shot `acc` (highest log-likelihood choice).

Uses the normal Hugging Face download path (``datasets.load_dataset``, ``from_pretrained``). Offline
or without the files it stops with ``DataUnavailable`` naming the expected local cache paths.
Not runnable on the default CPU scale; the config loads at every scale (tests check that).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from reprosuite.data import DataUnavailable

TASKS = {  # task -> (hub dataset, config, eval split)
    "boolq": ("google/boolq", None, "validation"),
    "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test"),
    "commonsense_qa": ("tau/commonsense_qa", None, "validation"),
}


def hf_home(cache_dir: str | None) -> Path:
    return Path(cache_dir or os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")


def expected_paths(*, task: str, model: str, cache_dir: str | None) -> list[Path]:
    """Where the HF caches keep the data set and the model (what an offline run needs)."""
    home = hf_home(cache_dir)
    name = TASKS[task][0]
    return [home / "datasets" / name.replace("/", "___"), home / "hub" / f"datasets--{name.replace('/', '--')}",
            home / "hub" / f"models--{model.replace('/', '--')}"]


def _unavailable(task: str, model: str, cache_dir: str | None, err: Exception) -> DataUnavailable:
    paths = ", ".join(str(p) for p in expected_paths(task=task, model=model, cache_dir=cache_dir))
    return DataUnavailable(
        f"lora_risk paper scale needs {TASKS[task][0]} and {model} from the Hugging Face hub "
        f"({type(err).__name__}: {str(err)[:120]}). Expected them in the HF cache at: {paths}. On a machine "
        f"with internet run the job once without HF_HUB_OFFLINE/HF_DATASETS_OFFLINE (or set llm.cache_dir "
        f"to a copied HF_HOME).")


def load_task(task: str, *, model: str, cache_dir: str | None):
    """(train, eval) lists of {prompt, choices, label}; DataUnavailable offline or when missing."""
    try:
        from datasets import load_dataset

        name, config, split = TASKS[task]
        ds = load_dataset(name, config, cache_dir=str(hf_home(cache_dir) / "datasets") if cache_dir else None)
    except Exception as err:  # ConnectionError, DatasetNotFoundError, OfflineModeIsEnabled, ...
        raise _unavailable(task, model, cache_dir, err) from err
    return [_format(task, ex) for ex in ds["train"]], [_format(task, ex) for ex in ds[split]]


def _format(task: str, ex: dict) -> dict:
    """Prompt (passage/question included; docs/papers/lora_risk.md: the authors' later train.py dropped `input`)."""
    if task == "boolq":
        return {"prompt": f"{ex['passage']}\nQuestion: {ex['question']}?\nAnswer:", "choices": [" no", " yes"],
                "label": int(ex["answer"])}
    labels = list(ex["choices"]["label"])
    text = "\n".join(f"{lab}. {c}" for lab, c in zip(labels, ex["choices"]["text"]))
    key = ex["answerKey"]
    return {"prompt": f"Question: {ex['question']}\n{text}\nAnswer:", "choices": [f" {lab}" for lab in labels],
            "label": labels.index(key) if key in labels else 0}


def load_model(model: str, cache_dir: str | None, device: str):
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model, cache_dir=cache_dir)
        net = AutoModelForCausalLM.from_pretrained(model, cache_dir=cache_dir,
                                                   torch_dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    except Exception as err:
        raise _unavailable("boolq", model, cache_dir, err) from err
    return net.to(device), tok


def choice_logprob(net, tok, prompt: str, choice: str, device: str) -> float:
    import torch

    p_ids = tok(prompt)["input_ids"]
    c_ids = tok(choice)["input_ids"]
    ids = torch.tensor([p_ids + c_ids], device=device)
    with torch.no_grad():
        logits = net(ids).logits.float().log_softmax(-1)[0, len(p_ids) - 1:-1]  # (len(c), vocab)
    return float(logits.gather(1, torch.tensor(c_ids, device=device)[:, None]).sum())


def evaluate(net, tok, examples, device: str) -> float:
    net.eval()
    hits = sum(int(max(range(len(ex["choices"])), key=lambda i, ex=ex: choice_logprob(net, tok, ex["prompt"], ex["choices"][i], device)) == ex["label"])
               for ex in examples)
    return hits / max(len(examples), 1)


def run_llm(cfg, ctx, shard):
    """One (task, method, rank) cell at paper scale: fine-tune, merge, score like lm-eval `acc`."""
    import numpy as np
    import torch
    from transformers import get_cosine_schedule_with_warmup

    c = cfg.llm
    task, method, rank = shard["task"], shard["method"], int(shard["rank"])
    train, test = load_task(task, model=c.model, cache_dir=c.cache_dir)
    ctx.use_dataset(task)
    rng = np.random.default_rng(c.data_seed)
    order = rng.permutation(len(train))[: c.max_train or len(train)]
    train = [train[i] for i in order[: int(len(order) * (1 - c.val_fraction))]]  # 80/20 split as the authors
    test = test[: c.max_eval or len(test)]
    net, tok = load_model(c.model, c.cache_dir, ctx.device)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        net = get_peft_model(net, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=c.lora_dropout,
                                             target_modules="all-linear"))
    params = [p for p in net.parameters() if p.requires_grad]
    lr = c.lr_lora if method == "lora" else c.lr_fft
    steps = max(1, math.ceil(c.epochs * len(train) / c.batch_size))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, int(c.warmup * steps), steps)
    gen = ctx.numpy_rng("batches")
    start = time.time()
    net.train()
    for _step in ctx.progress(range(steps), desc=f"{task} {method}{rank or ''}"):
        batch = [train[i] for i in gen.choice(len(train), size=min(c.batch_size, len(train)), replace=False)]
        loss = 0.0
        for ex in batch:  # loss on the answer tokens only
            p_ids = tok(ex["prompt"])["input_ids"][-c.cutoff:]
            a_ids = tok(ex["choices"][ex["label"]])["input_ids"]
            ids = torch.tensor([p_ids + a_ids], device=ctx.device)
            labels = ids.clone()
            labels[0, : len(p_ids)] = -100
            loss = loss + net(input_ids=ids, labels=labels).loss / len(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    if method == "lora":
        net = net.merge_and_unload()
    acc = evaluate(net, tok, test, ctx.device)
    yield {"dataset": task, "model": c.model, "method": method, "lora_rank": rank,
           "alpha": 2 * rank if method == "lora" else 0, "lr": lr, "n": len(train), "data_seed": c.data_seed,
           "train_seed": ctx.seed, "trainable_params": int(sum(p.numel() for p in params)), "steps": steps,
           "accuracy": acc, "task": task, "wall_time_s": time.time() - start}
