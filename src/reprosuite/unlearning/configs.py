"""Frozen configs of the unlearning core (torch-free, so paper declarations import cheaply).

``TrainConfig`` (originals, retrains, teachers); one config per unlearning method, each a
``LoopConfig`` (the shared loop's settings) plus its own: ``GAConfig``, ``GAFTConfig``,
``RLConfig``, ``FTConfig``, ``SalUnConfig``, and ``LTDConfig`` with its ``StudentConfig``
(docs/papers/collateral.md §2.4). ``methods.METHODS`` maps each ``kind`` to its config and its function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import check_range


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
        check_range(self, "", "epochs", "batch_size", "step_size", ge=1)
        check_range(self, "", "lr", "step_gamma", gt=0)
        check_range(self, "", "weight_decay", ge=0)
        check_range(self, "", "momentum", ge=0, lt=1)
        check_range(self, "", "stop_train_acc", gt=0, le=1)


@dataclass(frozen=True)
class LoopConfig:
    """The mixed-epoch loop every method runs (``methods.mixed_epochs``); defaults: the code's CLI,
    docs/papers/collateral.md §2.3. ``kind`` names the method in ``methods.METHODS``."""

    kind: str = "loop"
    epochs: int = 10  # maximum epochs (with ua_target: the cap)
    batch_size: int = 256
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 1e-6
    ua_target: float | None = None  # stop once UA = 1 - acc(D_f) >= target (checked every step)
    forget_oversample: int = 1  # copies of D_f in the mixed loader

    def __post_init__(self):
        check_range(self, "", "epochs", "batch_size", "forget_oversample", ge=1)
        check_range(self, "", "lr", gt=0)
        check_range(self, "", "weight_decay", ge=0)
        check_range(self, "", "momentum", ge=0, lt=1)
        check_range(self, "", "ua_target", gt=0, le=1)
        self._check_own()

    def _check_own(self) -> None:
        """A method's own settings (overridden by the methods that have some)."""


@dataclass(frozen=True)
class GAConfig(LoopConfig):
    """Gradient ascent on D_f."""

    kind: Literal["ga"] = "ga"


@dataclass(frozen=True)
class GAFTConfig(LoopConfig):
    """Gradient ascent on D_f, then fine-tuning on D_r (``ft_*``)."""

    kind: Literal["ga_ft"] = "ga_ft"
    ft_epochs: int = 1
    ft_lr: float = 0.01
    ft_batch_size: int = 128

    def _check_own(self) -> None:
        check_range(self, "", "ft_epochs", "ft_batch_size", ge=1)
        check_range(self, "", "ft_lr", gt=0)


@dataclass(frozen=True)
class RLConfig(LoopConfig):
    """Random labels on D_f, mixed with a ``retain_fraction`` share of D_r (0: RL without D_r)."""

    kind: Literal["rl"] = "rl"
    retain_fraction: float = 1.0
    label_mode: Literal["any", "wrong"] = "any"  # random labels: any class / not the true one

    def _check_own(self) -> None:
        check_range(self, "", "retain_fraction", ge=0, le=1)


@dataclass(frozen=True)
class FTConfig(LoopConfig):
    """Fine-tuning on D_r only."""

    kind: Literal["ft"] = "ft"


@dataclass(frozen=True)
class SalUnConfig(RLConfig):
    """RL on the ``mask_ratio`` share of weights with the largest |grad of -CE on D_f|."""

    kind: Literal["salun"] = "salun"
    mask_ratio: float = 0.5

    def _check_own(self) -> None:
        super()._check_own()
        check_range(self, "", "mask_ratio", gt=0, le=1)


@dataclass(frozen=True)
class StudentConfig(LoopConfig):
    """LTD's student loop (D_f with the teacher's soft labels, mixed with all of D_r)."""

    kind: Literal["ltd"] = "ltd"


def _teacher_recipe() -> TrainConfig:
    return TrainConfig(epochs=250, batch_size=256, optimizer="sgd", lr=0.2, momentum=0.9,
                       weight_decay=1e-4, schedule="step", step_size=200, step_gamma=0.1,
                       stop_train_acc=0.99)


@dataclass(frozen=True)
class LTDConfig:
    """LTD settings (code defaults of ``distill_labels.py``); the student uses ``student``."""

    kind: Literal["ltd"] = "ltd"
    n_support: int = 1000
    support_mode: Literal["closest", "random", "farthest"] = "closest"
    teacher_arch: str = "resnet8"
    teacher: TrainConfig = field(default_factory=_teacher_recipe)
    soft_label: Literal["top3_renorm", "soft", "hard", "threshold_renorm"] = "top3_renorm"
    threshold: float = 0.02  # threshold_renorm: drop p < threshold
    temperature: float = 1.0
    w_retain: float = 1.0
    w_forget: float = 2.0
    student: StudentConfig = field(default_factory=lambda: StudentConfig(
        epochs=10, batch_size=256, optimizer="adamw", lr=1e-4, weight_decay=1e-6))

    def __post_init__(self):
        check_range(self, "", "n_support", ge=1)
        check_range(self, "", "temperature", "threshold", gt=0)
        check_range(self, "", "w_retain", "w_forget", ge=0)
