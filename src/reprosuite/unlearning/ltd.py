"""Local Teacher Distillation (docs/papers/collateral.md §2.4; C-F3, C-T1, C-F5).

1. e(x) = the original's penultimate features; forget centre c_f = normalise(mean e(D_f)).
2. Support = the ``n_support`` retained examples with the highest cos(e(x), c_f) (``closest``;
   ablations ``random`` and ``farthest``); candidates are all of D_r.
3. A small teacher trained from scratch on the support only, stopping at train accuracy >= 0.99.
4. Soft targets for D_f, online per batch: softmax(teacher(x)/T), top-3 renormalised.
5. Student loss [w_r Σ_{D_r∩B} CE + w_f Σ_{D_f∩B} CE_soft] / |B| with AdamW.

RTE includes feature extraction, support selection and teacher training (the released code
leaves support selection out of the timed window). Steps 1-3 are ``fit_teacher``; a caller that
trains the teacher elsewhere (one job shared by several consumers) passes the ``Teacher`` to
``local_teacher_distillation``, whose RTE then adds the teacher's own measured seconds.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import build_model
from .configs import LTDConfig
from .methods import Callback, Stopwatch, UnlearnData, mixed_epochs, register_method
from .metrics import cosine_to_centre, forget_centre
from .training import predict, train_model


def soft_ce(logits: torch.Tensor, q: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-example CE_soft(q, z/T) = -Σ_k q_k log softmax(z/T)_k; logits, q: (B, K) -> (B,)."""
    return -(q * F.log_softmax(logits / temperature, dim=1)).sum(1)


def soft_targets(teacher_logits: torch.Tensor, mode: str, temperature: float = 1.0,
                 threshold: float = 0.02) -> torch.Tensor:
    """Teacher probabilities (B, K) post-processed: keep top-3 / all / argmax / p >= threshold."""
    p = F.softmax(teacher_logits / temperature, dim=1)
    if mode == "soft":
        return p
    if mode == "hard":
        return F.one_hot(p.argmax(1), p.shape[1]).float()
    if mode == "top3_renorm":
        keep = torch.zeros_like(p).scatter_(1, p.topk(min(3, p.shape[1]), dim=1).indices, 1.0)
    else:
        keep = (p >= threshold).float()
        keep.scatter_(1, p.argmax(1, keepdim=True), 1.0)  # never an empty distribution
    q = p * keep
    return q / q.sum(1, keepdim=True)


def select_support(feat_retain: torch.Tensor, feat_forget: torch.Tensor, n_support: int,
                   mode: str = "closest", seed: int = 0) -> torch.Tensor:
    """Indices into D_r of the support; feats: (N_r, 64), (N_f, 64)."""
    n = min(n_support, len(feat_retain))
    if mode == "random":
        return torch.randperm(len(feat_retain), generator=torch.Generator().manual_seed(seed))[:n]
    sim = cosine_to_centre(feat_retain, forget_centre(feat_forget))
    return torch.topk(sim, n, largest=(mode == "closest")).indices


def train_teacher(data: UnlearnData, support: torch.Tensor, cfg: LTDConfig, *, seed: int, device: str,
                  in_channels: int, image_size: int) -> tuple[nn.Module, list[dict]]:
    """Train a fresh ``teacher_arch`` on the support only (stop at ``teacher.stop_train_acc``)."""
    gen = torch.Generator().manual_seed(seed)
    teacher = build_model(cfg.teacher_arch, n_classes=data.n_classes, in_channels=in_channels,
                          image_size=image_size, generator=gen).to(device)
    history = train_model(teacher, data.x_retain[support], data.y_retain[support], cfg.teacher,
                          seed=seed + 1, device=device)
    return teacher.eval(), history


@dataclass
class Teacher:
    """LTD's steps 1-3: the teacher (eval mode), its epochs, the support (indices into D_r) and the
    wall-clock seconds of feature extraction, support selection and training (part of LTD's RTE)."""

    model: nn.Module
    history: list[dict]
    support: torch.Tensor
    seconds: float


def fit_teacher(original: nn.Module, data: UnlearnData, cfg: LTDConfig, *, seed: int, device: str = "cpu",
                retain_view: torch.Tensor | None = None,
                features: tuple[torch.Tensor, torch.Tensor, float] | None = None) -> Teacher:
    """Steps 1-3 of LTD at ``seed`` (the seed LTD itself is given): support selection draws from
    ``seed``, the teacher from ``seed + 7``. ``features`` = (feat_retain, feat_forget, seconds) of the
    original, when the caller embedded the clean D_r and D_f once for several teachers (their
    seconds count in every teacher's time); None: embedded here (``retain_view``: see LTD)."""
    t0 = time.perf_counter()
    if features is None:
        x_view = data.x_retain if retain_view is None else retain_view
        feat_r = predict(original, x_view, device, features=True)  # (N_r, 64)
        feat_f = predict(original, data.x_forget, device, features=True)  # (N_f, 64)
        embed_s = 0.0
    else:
        feat_r, feat_f, embed_s = features
    support = select_support(feat_r, feat_f, cfg.n_support, cfg.support_mode, seed)
    _, c, h, _ = data.x_forget.shape
    teacher, history = train_teacher(data, support, cfg, seed=seed + 7, device=device,
                                     in_channels=c, image_size=h)
    return Teacher(teacher, history, support, embed_s + time.perf_counter() - t0)


@register_method("ltd", LTDConfig)
def local_teacher_distillation(original: nn.Module, data: UnlearnData, cfg: LTDConfig, *, seed: int,
                               device: str = "cpu", callback: Callback | None = None,
                               retain_view: torch.Tensor | None = None,
                               teacher: Teacher | None = None) -> tuple[nn.Module, dict]:
    """LTD from a copy of ``original``; returns (student, info with rte_s and teacher diagnostics).

    ``retain_view`` (optional, same shape as ``data.x_retain``) is what support selection embeds:
    the code embeds augmented images (``support_transform = augmented``); default the clean ones.
    ``teacher``: steps 1-3 done already (``fit_teacher`` at this ``seed``); its seconds enter RTE.
    """
    watch = Stopwatch()
    fitted_elsewhere = teacher is not None
    if teacher is None:  # steps 1-3 inside the timed window
        teacher = fit_teacher(original, data, cfg, seed=seed, device=device, retain_view=retain_view)
    before = teacher.seconds if fitted_elsewhere else 0.0  # measured where the teacher was fitted
    history, support, teacher = teacher.history, teacher.support, teacher.model
    model = copy.deepcopy(original).to(device)

    def batch_loss(model, xb, yb, flag, t_f, fi):
        logits = model(xb)  # (B, K)
        loss = torch.zeros((), device=xb.device)
        if (~flag).any():
            loss = loss + cfg.w_retain * F.cross_entropy(logits[~flag], yb[~flag], reduction="sum")
        if flag.any():
            with torch.no_grad():
                q = soft_targets(teacher(xb[flag]), cfg.soft_label, cfg.temperature, cfg.threshold)
            loss = loss + cfg.w_forget * soft_ce(logits[flag], q, cfg.temperature).sum()
        return loss / len(xb)

    info = mixed_epochs(model, data, cfg.student, seed=seed, device=device, batch_loss=batch_loss,
                        use_forget=True, use_retain=True, watch=watch, callback=callback)
    model.eval()
    info["rte_s"] = before + watch.total()
    teacher_pred = predict(teacher, data.x_forget, device).argmax(1)
    info.update({"teacher_epochs": len(history),
                 "teacher_train_accuracy": history[-1].get("train_accuracy", float("nan")),
                 "teacher_forget_accuracy": float((teacher_pred == data.y_forget).float().mean()),
                 "support_size": int(len(support)),
                 "support_retained_forget_class": int((data.y_retain[support] == data.y_forget[0]).sum())
                 if len(data.y_forget) else 0})
    return model, {**info, "teacher": teacher, "teacher_forget_pred": teacher_pred}
