"""Frozen configs of the unlearning core (torch-free, so paper declarations import cheaply).

``TrainConfig`` (originals, retrains, teachers), ``MethodConfig`` (GA, GA+FT, RL, FT, SalUn and
LTD's student loop) and ``LTDConfig`` (collateral spec §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe. Defaults: the SmallCNN recipe (Adam 1e-3, batch 128, 4 epochs)."""

    epochs: int = 4
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: Literal["none", "cosine", "step"] = "none"
    step_size: int = 200  # StepLR period (epochs) for schedule = step
    step_gamma: float = 0.1
    augment: bool = False  # RandomCrop(pad 4) + horizontal flip (CIFAR recipe)
    stop_train_acc: float | None = None  # stop once clean train accuracy >= this (LTD teacher)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs = {self.epochs} and batch_size = {self.batch_size} must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr = {self.lr} must be > 0")
        if self.stop_train_acc is not None and not 0 < self.stop_train_acc <= 1:
            raise ValueError(f"stop_train_acc = {self.stop_train_acc} must be in (0, 1]")


@dataclass(frozen=True)
class MethodConfig:
    """Hyperparameters of one unlearning method (defaults: the code's CLI, spec §3.3)."""

    kind: Literal["ga", "rl", "ft", "salun", "ga_ft", "ltd"] = "ga"
    epochs: int = 10  # maximum epochs (with ua_target: the cap)
    batch_size: int = 256
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 1e-6
    ua_target: float | None = None  # stop once UA = 1 - acc(D_f) >= target (checked every step)
    retain_fraction: float = 1.0  # RL/SalUn: share of D_r mixed in (0 = RL without D_r)
    forget_oversample: int = 1  # copies of D_f in the mixed loader
    label_mode: Literal["any", "wrong"] = "any"  # RL random labels: any class / not the true one
    mask_ratio: float = 0.5  # SalUn: share of weights updated (top |grad| of -CE on D_f)
    ft_epochs: int = 1  # GA+FT: fine-tuning stage on D_r
    ft_lr: float = 0.01
    ft_batch_size: int = 128

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.forget_oversample < 1:
            raise ValueError("epochs, batch_size and forget_oversample must be >= 1")
        if not 0.0 <= self.retain_fraction <= 1.0:
            raise ValueError(f"retain_fraction = {self.retain_fraction} must be in [0, 1]")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio = {self.mask_ratio} must be in (0, 1]")
        if self.ua_target is not None and not 0.0 < self.ua_target <= 1.0:
            raise ValueError(f"ua_target = {self.ua_target} must be in (0, 1]")


def _teacher_recipe() -> TrainConfig:
    return TrainConfig(epochs=250, batch_size=256, optimizer="sgd", lr=0.2, momentum=0.9,
                       weight_decay=1e-4, schedule="step", step_size=200, step_gamma=0.1,
                       stop_train_acc=0.99)


@dataclass(frozen=True)
class LTDConfig:
    """LTD settings (code defaults of ``distill_labels.py``); the student uses ``student``."""

    n_support: int = 1000
    support_mode: Literal["closest", "random", "farthest"] = "closest"
    teacher_arch: str = "resnet8"
    teacher: TrainConfig = field(default_factory=_teacher_recipe)
    soft_label: Literal["top3_renorm", "soft", "hard", "threshold_renorm"] = "top3_renorm"
    threshold: float = 0.02  # threshold_renorm: drop p < threshold
    temperature: float = 1.0
    w_retain: float = 1.0
    w_forget: float = 2.0
    student: MethodConfig = field(default_factory=lambda: MethodConfig(
        kind="ltd", epochs=10, batch_size=256, optimizer="adamw", lr=1e-4, weight_decay=1e-6))

    def __post_init__(self):
        if self.n_support < 1:
            raise ValueError(f"n_support = {self.n_support} must be >= 1")
        if self.temperature <= 0:
            raise ValueError(f"temperature = {self.temperature} must be > 0")
