"""Data, shared models and the shared evaluation of the partial-class experiments (C-F3/C-T1/C-F4).

``prepare`` loads the (stand-in) data set; ``reference_eval`` computes, once per cell, everything
that depends only on the original and the retrains (similarity s(x), shared bin edges, their
logits, evaluation subsets); ``evaluate`` turns one model's logits into bin rows and aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reprosuite.data import image_dataset, stratified_indices
from reprosuite.models import build_model
from reprosuite.unlearning import metrics as M
from reprosuite.unlearning.methods import UnlearnData
from reprosuite.unlearning.mia import loss_mia, svc_mia
from reprosuite.unlearning.splits import partial_class_split
from reprosuite.unlearning.training import images_to_tensor, predict

NORMALISATION = {
    "cifar100": ((0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2761)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "mnist5k": ((0.1307,), (0.3081,)), "mnist": ((0.1307,), (0.3081,)), "digits": ((0.1307,), (0.3081,)),
}


@dataclass
class Prepared:
    """Tensors of the (sub-sampled) data set: x (N, C, H, W) normalised, y (N,) int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def shape(self) -> tuple[int, int]:  # (channels, image side)
        return self.x_train.shape[1], self.x_train.shape[2]


def prepare(main, ctx) -> Prepared:
    """Load ``main.dataset``; stratified subsets keep data-set order (so D_f = first of class c)."""
    data = image_dataset(main.dataset, ctx.data_dir)
    ctx.use_dataset(data.name, main.stand_in_for)
    tr = stratified_indices(data.y_train, main.n_train or len(data.y_train), seed=main.subset_seed)
    te = stratified_indices(data.y_test, main.n_test or len(data.y_test), seed=main.subset_seed)
    mean, std = NORMALISATION[data.name]
    return Prepared(data.name, images_to_tensor(data.x_train[tr], mean, std), torch.from_numpy(data.y_train[tr]),
                    images_to_tensor(data.x_test[te], mean, std), torch.from_numpy(data.y_test[te]),
                    data.n_classes)


def new_model(arch: str, prep: Prepared, generator: torch.Generator | None = None):
    c, side = prep.shape
    return build_model(arch, n_classes=prep.n_classes, in_channels=c, image_size=side, generator=generator)


def load_model(ctx, arch: str, prep: Prepared, shard: str):
    blob = ctx.load_artifact("models", shard, 0, "model")
    model = new_model(arch, prep)
    model.load_state_dict(blob["state_dict"])
    return model.to(ctx.device).eval()


def unlearn_data(prep: Prepared, c: int, frac: float) -> tuple[UnlearnData, object]:
    split = partial_class_split(prep.y_train.numpy(), c, frac)
    f, r = torch.from_numpy(split.forget), torch.from_numpy(split.retain)
    return UnlearnData(prep.x_train[f], prep.y_train[f], prep.x_train[r], prep.y_train[r], prep.n_classes), split


def eval_indices(main, n_retain: int, n_test: int) -> dict[str, np.ndarray]:
    """Fixed evaluation subsets (identical for every method): retain-side and MIA shadow sets."""
    rng = np.random.default_rng(main.subset_seed + 1)
    k = min(main.retain_eval_size or n_retain, n_retain)
    shadow = min(main.mia_shadow_size or n_test, n_test, n_retain)
    return {"retain_eval": np.sort(rng.choice(n_retain, k, replace=False)),
            "mia_member": np.sort(rng.choice(n_retain, shadow, replace=False)),
            "mia_nonmember": np.sort(rng.choice(n_test, shadow, replace=False))}


def model_logits(model, d: UnlearnData, prep: Prepared, idx: dict[str, np.ndarray], device: str) -> dict:
    """Logits (N, K) of one model on every evaluated split."""
    xr = d.x_retain
    return {"test": predict(model, prep.x_test, device),
            "retain": predict(model, xr[idx["retain_eval"]], device),
            "forget": predict(model, d.x_forget, device),
            "mia_member": predict(model, xr[idx["mia_member"]], device)}


def reference_eval(main, prep: Prepared, d: UnlearnData, original, retrains: list, device: str) -> dict:
    """Everything a method's evaluation compares against (saved once per cell as an artifact)."""
    idx = eval_indices(main, len(d.x_retain), len(prep.x_test))
    centre = M.forget_centre(predict(original, d.x_forget, device, features=True))
    sim = {"test": M.cosine_to_centre(predict(original, prep.x_test, device, features=True), centre).numpy(),
           "retain": M.cosine_to_centre(predict(original, d.x_retain[idx["retain_eval"]], device, features=True),
                                        centre).numpy()}
    edges = {(split, b): M.bin_edges(sim[split], main.n_bins, b) for split in sim for b in main.binnings}
    labels = {"test": prep.y_test, "retain": d.y_retain[idx["retain_eval"]], "forget": d.y_forget,
              "mia_member": d.y_retain[idx["mia_member"]]}
    n_consensus = len(retrains) - int(main.floor_retrain)
    return {"idx": idx, "sim": sim, "edges": edges, "labels": labels,
            "original": model_logits(original, d, prep, idx, device),
            "retrains": [model_logits(r, d, prep, idx, device) for r in retrains],
            "n_consensus": n_consensus}


def evaluate(logits: dict, ref: dict, forget_class: int, seed: int, main) -> tuple[list[dict], dict]:
    """(bin rows, aggregate dict) of one model against the consensus retrains."""
    labels, consensus = ref["labels"], ref["retrains"][: ref["n_consensus"]]
    rows = []
    for split in ("test", "retain"):
        point = M.pointwise(labels[split], logits[split], ref["original"][split], [r[split] for r in consensus])
        for binning in main.binnings:
            for row in M.binned_discrepancies(ref["sim"][split], ref["edges"][(split, binning)], point):
                rows.append({"row": "bin", "split": split, "binning": binning, **row})
    agg = M.aggregates(logits, labels, forget_class)
    agg.update(n_test_eval=len(labels["test"]), n_retain_eval=len(labels["retain"]), n_forget=len(labels["forget"]))
    nonmember = (logits["test"][ref["idx"]["mia_nonmember"]], labels["test"][ref["idx"]["mia_nonmember"]])
    mia = svc_mia((logits["mia_member"], labels["mia_member"]), nonmember, (logits["forget"], labels["forget"]),
                  variants=main.mia_variants)
    agg["mia_svc"] = mia["confidence"]
    agg.update({f"mia_svc_{k}": v for k, v in mia.items()})
    agg["mia_loss_accuracy"] = loss_mia((logits["forget"], labels["forget"]), (logits["test"], labels["test"]),
                                        seed=seed)
    return rows, agg
