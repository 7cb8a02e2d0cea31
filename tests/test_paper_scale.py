"""Paper scale cannot rot without a GPU: every registered model and the image pipeline run one
training step on tiny fake inputs at the papers' shapes, and every paper's paper-scale plan
resolves, with its long jobs asking the scheduler for a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reprosuite.config import load_config
from reprosuite.data import N_CLASSES, normalisation
from reprosuite.models import build_model, model_names
from reprosuite.registry import iter_runs, load_papers

ROOT = Path(__file__).resolve().parents[1]
# the papers' data shapes: (channels, side, classes)
SHAPES = {"cifar10": (3, 32, 10), "cifar100": (3, 32, 100), "mnist": (1, 28, 10)}
PINNED = {("lenet_gn", "mnist"): 44_470, ("resnet18", "cifar10"): 11_173_962}


def _fits(name: str, data: str) -> bool:
    if name == "lenet_gn":
        return data == "mnist"
    return True


CASES = [(m, d) for m in model_names() for d in SHAPES if _fits(m, d)]


@pytest.mark.parametrize("arch, data", CASES)
def test_model_takes_one_step_at_paper_shapes(arch, data):
    torch.manual_seed(0)
    c, side, k = SHAPES[data]
    model = build_model(arch, n_classes=k, in_channels=c, image_size=side, generator=torch.Generator().manual_seed(0))
    if (arch, data) in PINNED:
        assert sum(p.numel() for p in model.parameters()) == PINNED[(arch, data)]
    pixels = np.random.default_rng(0).integers(0, 256, size=(4, side, side, c) if c == 3 else (4, side, side), dtype=np.uint8)
    from reprosuite.unlearning.training import images_to_tensor

    x = images_to_tensor(pixels, *normalisation(data))
    assert x.shape == (4, c, side, side) and abs(float(x.mean())) < 5
    y = torch.arange(4) % k
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and model(x).shape == (4, k)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert N_CLASSES[data] == k


@pytest.mark.parametrize("pid", list(load_papers()))
def test_paper_scale_plan_resolves_and_long_jobs_ask_for_a_gpu(pid):
    paper = load_papers()[pid]
    cfg = load_config(paper, "paper", root=ROOT)
    runs = list(iter_runs(paper, cfg))
    assert runs, f"{pid}: no job at paper scale"
    for name, exp in paper.active_experiments(cfg).items():
        res = exp.resources(cfg)
        if res.get("runtime", 0) >= 60:  # an hour of CPU work at paper scale belongs on a GPU
            assert res.get("gpu", 0) >= 1, f"{pid}/{name}: {res} at paper scale declares no GPU"
