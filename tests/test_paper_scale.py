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
PINNED = {("lenet_gn", "mnist"): 44_470, ("resnet18", "cifar10"): 11_173_962, ("vgg_gn", "cifar10"): 9_231_114}


def _fits(name: str, data: str) -> bool:
    if name == "lenet_gn":
        return data == "mnist"
    if name == "vgg_gn":  # five 2x2 pools: 32x32 inputs only
        return SHAPES[data][1] == 32
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


def _fake_cifar10(n_train: int, n_test: int):
    from reprosuite.data import ImageData

    rng = np.random.default_rng(0)
    return ImageData("cifar10", rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), np.arange(n_train) % 10,
                     rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), np.arange(n_test) % 10)


def test_teleportation_tab2_paper_scale_vgg_takes_a_gossip_step_on_colour_images():
    """Paper-scale tab2 is CIFAR-10 + VGG-11-GN: the gossip core's image pipeline turns (N, 32, 32, 3)
    pixels into per-channel normalised (N, 3, 32, 32), and the simulator (vmap over 3 slots, no
    buffers) takes one step with the model the config names."""
    from reprosuite.gossip.simulator import GossipSimulator
    from reprosuite.gossip.training import image_split

    c = load_config(load_papers()["teleportation"], "paper", root=ROOT).tab2
    assert (c.dataset, c.arch) == ("cifar10", "vgg_gn")
    data = _fake_cifar10(6, 3)
    split = image_split(data, n_train=None, n_test=None, n_test_nodes=3, device="cpu")
    assert split.x_train.shape == (6, 3, 32, 32) and split.test.x.shape == (3, 3, 32, 32) and split.x_train.is_contiguous()
    (mean, std), px = normalisation("cifar10"), data.x_train[5, 7, 9]  # image 5, row 7, column 9: (3,) channels
    expect = (torch.as_tensor(px, dtype=torch.float32) / 255 - torch.tensor(mean)) / torch.tensor(std)
    assert torch.allclose(split.x_train[5, :, 7, 9], expect, atol=1e-6)
    model = build_model(c.arch, n_classes=data.n_classes, in_channels=3, image_size=32, generator=0)
    assert sum(p.numel() for p in model.parameters()) == 9_231_114 and not list(model.buffers())
    sim = GossipSimulator(model, n_slots=3, momentum=c.momentum, weight_decay=c.weight_decay)
    before = sim.flat.clone()
    x, y = split.x_train[:3].reshape(3, 1, 3, 32, 32), split.y_train[:3].reshape(3, 1)  # (k, B, C, H, W)
    losses = sim.step(x, y, lr=c.lr, w=np.full((3, 3), 1 / 3))
    assert losses.shape == (3,) and torch.isfinite(losses).all() and torch.isfinite(sim.flat).all()
    assert not torch.equal(before, sim.flat)
    assert sim.consensus_distance() < 1e-8  # W = 11ᵀ/3: the three slots hold one model


def test_teleportation_tab2_paper_scale_run_builds_the_vgg(monkeypatch):
    """run_tab2 with the paper-scale config (sizes shrunk: 3 nodes, one epoch) builds ``tab2.arch`` on
    the colour data and yields finite records."""
    import dataclasses

    from reprosuite.papers.teleportation import nn as tele_nn

    from .conftest import FakeContext

    cfg = load_config(load_papers()["teleportation"], "paper", root=ROOT)
    cfg = dataclasses.replace(cfg, tab2=dataclasses.replace(cfg.tab2, n_nodes=3, batch_size=2, epochs=1, tele_ks=(3,),
                                                            dsgd_graphs=("ring",), n_test_nodes=3, alphas=(10.0,),
                                                            eval_on="xbar"))
    built = []

    def spy(arch, **kw):
        built.append((arch, kw["in_channels"], kw["image_size"]))
        return build_model(arch, **kw)

    monkeypatch.setattr(tele_nn, "image_dataset", lambda name, data_dir=None: _fake_cifar10(6, 3))
    monkeypatch.setattr(tele_nn, "build_model", spy)
    ctx = FakeContext(experiment="tab2", paper="teleportation", shard="s", scale="paper")
    from reprosuite.papers.teleportation import _tab2_shards

    (shard,) = _tab2_shards(cfg).values()  # one job: D-SGD ring and TELEPORTATION k = 3, stacked
    rows = list(tele_nn.run_tab2(cfg, ctx, shard))
    assert built == [("vgg_gn", 3, 32)] and ctx.datasets == {"cifar10": None}  # one init per α, shared by the runs
    assert sorted(r["method"] for r in rows) == ["dsgd", "tele"]
    assert all(r["rounds"] == 1 and np.isfinite(r["train_loss_node_mean"]) and 0 <= r["test_accuracy_xbar"] <= 1
               for r in rows)
