"""Data, splits and shared models of the certified paper (Fig. 1 rows, Table 1).

``prepare`` loads a row's data set (normalised tensors, optional stratified subset);
``forget_split`` is the random 10% forget set (seed 42) of the curves, ``class_split`` the
class-wise deletion of Table 1; ``load_model`` returns a model trained by ``models``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reprosuite.data import image_dataset, normalisation, stratified_indices
from reprosuite.models import build_model
from reprosuite.unlearning.splits import Split, full_class_split, random_subset_split
from reprosuite.unlearning.training import images_to_tensor


@dataclass
class Prepared:
    """x (N, C, H, W) normalised float32, y (N,) int64; CPU tensors."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.x_train.shape[1], self.x_train.shape[2]


def prepare(row, ctx) -> Prepared:
    """Load the row's data set; record it (with the paper's data set it stands in for)."""
    data = image_dataset(row.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, row.stand_in_for)
    n = len(data.y_train)  # the whole set needs no stratified split (nor sklearn's import)
    tr = stratified_indices(data.y_train, row.n_train, seed=0) if row.n_train and row.n_train < n else np.arange(n)
    mean, std = normalisation(data.name)
    return Prepared(data.name, images_to_tensor(data.x_train[tr], mean, std), torch.from_numpy(data.y_train[tr]),
                    images_to_tensor(data.x_test, mean, std), torch.from_numpy(data.y_test), data.n_classes)


def forget_split(row, prep: Prepared) -> Split:
    return random_subset_split(len(prep.y_train), row.forget_frac, seed=row.forget_seed)


def class_split(prep: Prepared, c: int) -> Split:
    return full_class_split(prep.y_train.numpy(), c)


def new_model(arch: str, prep: Prepared, generator=None):
    c, side = prep.shape
    return build_model(arch, n_classes=prep.n_classes, in_channels=c, image_size=side, generator=generator)


def load_model(ctx, row_key: str, arch: str, prep: Prepared | None, role: str, pair: int = 0):
    """A model trained by ``models`` (the job of its row): eval mode, on ``ctx.device``; and its blob.
    ``prep`` None: the input shape, classes and data set come from the blob (no data is loaded)."""
    from . import model_shard

    blob = ctx.load_artifact("models", model_shard(row_key, role), 0, f"model-{role}-p{pair}")
    if prep is None:
        if "input" not in blob:
            raise ValueError(f"models/{model_shard(row_key, role)}: its artifact predates the input shape it now "
                             "records; rerun the models job")
        ctx.use_dataset(blob["dataset"], blob["stand_in_for"])
        (c, side), n_classes = blob["input"], blob["n_classes"]
        model = build_model(arch, n_classes=n_classes, in_channels=c, image_size=side)
    else:
        model = new_model(arch, prep)
    model.load_state_dict(blob["state_dict"])
    return model.to(ctx.device).eval(), blob


def subset(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed evaluation subset (sorted indices) of at most ``size`` of n."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, min(size, n), replace=False))
