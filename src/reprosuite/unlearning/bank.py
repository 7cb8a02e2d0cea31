"""The bank: original and retrained models, trained once in the DAG, and the evaluation sets.

Every unlearning paper needs the same things: a data set loaded, sub-sampled and normalised the
same way in every job; deletion requests (forget/retain splits); an *original* trained on all the
training data and *retrains* trained on D_r only, per model seed. The bank declares them as one
experiment (``models`` by default) with one job per model; consumers load them as artifacts.

Declaring (torch-free: a paper's ``__init__`` imports this module at Snakefile parse time)
---------------------------------------------------------------------------------------------
- ``DataSpec(dataset, stand_in_for=None, n_train=None, n_test=None, subset_seed=0)``: which data
  set and which stratified subsets (data-set order kept).
- ``Forget``: one deletion request. ``Forget.partial(c, frac)`` (the first ⌊frac·N_c⌋ examples of
  class c), ``Forget.full(c)``, ``Forget.random(frac, split_seed)``. ``.id`` names it in shard ids
  (``c2-f0.5``, ``class5``, ``rand-f0.1-s42``); ``.columns()`` gives its record columns.
- ``BankSpec(data, arch, train, requests, n_retrains=1, seeds=(0,), retrain=None,
  experiment="models")``. ``train`` is the original's recipe, ``retrain`` the retrains' (default:
  the same). ``seeds`` are the *model seeds*, the seed axis of the ``models`` experiment: model
  seed s trains the original and retrain i = 0..n_retrains-1 of every request, each from its own
  stream of s, so (original of s, retrain i of s) are the base/retrain pairs.
- ``models_experiment(spec_of, name="models", settings=..., resources=..., description=...)``:
  the ``Experiment`` to register; ``spec_of(cfg) -> BankSpec``, whose ``experiment`` is ``name``;
  ``settings``: the config sections ``spec_of`` reads (only their edits retrain the bank).
- ``needs(spec, request, seed, retrains=True)``: the (experiment, shard, seed) runs that hold the
  original and the retrains of ``request`` at model seed ``seed``. A consumer declares its
  ``needs`` from its own shard parameters with ``registry.param_needs``; shard ids of the bank
  are made here only (``original_shard``, ``retrain_shard``), never parsed back.

Example (a paper's ``__init__``)::

    from reprosuite.registry import Experiment, param_needs
    from reprosuite.unlearning import bank

    def _bank(cfg):
        return bank.BankSpec(bank.DataSpec("digits"), arch="mlp", train=cfg.base, retrain=cfg.retrain,
                             requests=(bank.Forget.random(0.1, 42),), seeds=cfg.seeds)

    def _curve_shards(cfg):
        return {f"eps{e:g}": {"eps": e} for e in cfg.eps}

    experiments = {
        "models": bank.models_experiment(_bank, settings=("base", "retrain")),
        "curves": Experiment("curves", run=..., shards=_curve_shards, needs=param_needs(
            _curve_shards, lambda cfg, p, seed: bank.needs(_bank(cfg), bank.Forget.random(0.1, 42), seed))),
    }

Running (torch)
---------------
``prepare(spec.data, ctx) -> Prepared`` (normalised tensors, statistics from ``reprosuite.data``);
``forget_data(prep, request) -> (UnlearnData, Split)``; ``load_original(ctx, spec, prep, seed)``
and ``load_retrains(ctx, spec, prep, request, seed)`` (eval mode, on ``ctx.device``);
``load_logits(ctx, spec, request, index, seed)``: the logits each model job computed anyway for
its accuracies, ``{"fit": (N_fit, K), "test": (N_test, K)}`` (``fit``: the examples it was trained
on, in order: all training data for the original, D_r for a retrain), so consumers need not
evaluate the model on those sets again;
``new_model(arch, prep, generator)``; ``eval_indices(...)``: fixed evaluation subsets (retain
evaluation, MIA members and non-members), identical for every method.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..registry import Experiment
from .configs import TrainConfig


@dataclass(frozen=True)
class DataSpec:
    """An image data set and its stratified subsets (``None``: all of it)."""

    dataset: str
    stand_in_for: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    subset_seed: int = 0


@dataclass(frozen=True)
class Forget:
    """One deletion request (see ``reprosuite.unlearning.splits``)."""

    kind: Literal["partial_class", "full_class", "random"]
    forget_class: int | None = None
    frac: float = 1.0
    split_seed: int = 0

    @classmethod
    def partial(cls, forget_class: int, frac: float) -> Forget:
        return cls("partial_class", int(forget_class), float(frac))

    @classmethod
    def full(cls, forget_class: int) -> Forget:
        return cls("full_class", int(forget_class), 1.0)

    @classmethod
    def random(cls, frac: float, split_seed: int) -> Forget:
        return cls("random", None, float(frac), int(split_seed))

    def __post_init__(self):
        if self.kind not in ("partial_class", "full_class", "random"):
            raise ValueError(f"kind = {self.kind!r}; allowed: partial_class, full_class, random")
        if self.kind != "random" and self.forget_class is None:
            raise ValueError(f"a {self.kind} request needs forget_class")
        if not 0 < self.frac <= 1:
            raise ValueError(f"frac = {self.frac} must be in (0, 1]")

    @property
    def id(self) -> str:
        if self.kind == "partial_class":
            return f"c{self.forget_class}-f{self.frac:g}"
        if self.kind == "full_class":
            return f"class{self.forget_class}"
        return f"rand-f{self.frac:g}-s{self.split_seed}"

    def columns(self) -> dict[str, Any]:
        """Record columns naming the request (``cell`` is its id)."""
        if self.kind == "random":
            return {"frac": self.frac, "split_seed": self.split_seed, "cell": self.id}
        return {"forget_class": self.forget_class, "frac": self.frac, "cell": self.id}

    def split(self, y):
        from . import splits

        if self.kind == "partial_class":
            return splits.partial_class_split(y, self.forget_class, self.frac)
        if self.kind == "full_class":
            return splits.full_class_split(y, self.forget_class)
        return splits.random_subset_split(len(y), self.frac, self.split_seed)


@dataclass(frozen=True)
class BankSpec:
    """Everything the bank trains: see the module docstring."""

    data: DataSpec
    arch: str
    train: TrainConfig
    requests: tuple[Forget, ...]
    n_retrains: int = 1
    seeds: tuple[int, ...] = (0,)
    retrain: TrainConfig | None = None  # None: the original's recipe
    experiment: str = "models"

    def __post_init__(self):
        if self.n_retrains < 0:
            raise ValueError(f"n_retrains = {self.n_retrains} must be >= 0")
        if not self.seeds:
            raise ValueError("seeds must name at least one model seed")
        ids = [r.id for r in self.requests]
        if len(set(ids)) != len(ids):
            raise ValueError(f"requests repeat a request: {ids}")

    @property
    def retrain_recipe(self) -> TrainConfig:
        return self.retrain or self.train

    def request(self, request_id: str) -> Forget:
        for r in self.requests:
            if r.id == request_id:
                return r
        raise KeyError(f"the bank has no request {request_id!r}; known: {', '.join(r.id for r in self.requests)}")


# shard ids: made here only -----------------------------------------------------------------------
def original_shard() -> str:
    return "original"


def retrain_shard(request: Forget, index: int) -> str:
    return f"{request.id}-r{index}"


def model_shards(spec: BankSpec) -> dict[str, dict]:
    """Shard id -> parameters of every model job (one per model seed on the seed axis)."""
    shards: dict[str, dict] = {original_shard(): {"role": "original", "index": 0}}
    for req in spec.requests:
        for i in range(spec.n_retrains):
            shards[retrain_shard(req, i)] = {"role": "retrain", "index": i, "request": req.id}
    return shards


def needs(spec: BankSpec, request: Forget | None, seed: int, retrains: bool = True) -> list[tuple[str, str, int]]:
    """The bank runs (experiment, shard, model seed) holding the original and, unless
    ``retrains`` is false or ``request`` is None, every retrain of ``request``."""
    if int(seed) not in {int(s) for s in spec.seeds}:
        raise ValueError(f"model seed {seed} is not in the bank's seeds {tuple(spec.seeds)}")
    out = [(spec.experiment, original_shard(), int(seed))]
    if retrains and request is not None:
        spec.request(request.id)  # a request the bank trains
        out += [(spec.experiment, retrain_shard(request, i), int(seed)) for i in range(spec.n_retrains)]
    return out


def _model_resources(cfg: Any) -> Mapping[str, int]:
    return {}


def models_experiment(spec_of: Callable[[Any], BankSpec], *, name: str = "models",
                      settings: tuple[str, ...] | None = None,
                      resources: Callable[[Any], Mapping[str, int]] = _model_resources,
                      description: str = "") -> Experiment:
    """The bank's ``Experiment``; ``name`` must be ``spec_of(cfg).experiment`` (checked when a job runs).
    ``settings`` names the config sections ``spec_of`` reads (see ``Experiment.settings``), so that
    editing another section does not retrain the bank."""
    return Experiment(name, run=functools.partial(run_models, spec_of=spec_of),
                      shards=lambda cfg: model_shards(spec_of(cfg)),
                      seeds=lambda cfg: tuple(spec_of(cfg).seeds), resources=resources, settings=settings,
                      reads_seeds=False,  # model seeds are the spec's, not the paper's top-level seeds
                      description=description or "bank: the original and the retrains per request, "
                                                 "per model seed; trained once, shared")


# runtime (torch) ---------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Tensors of the (sub-sampled) data set: x (N, C, H, W) normalised float32, y (N,) int64."""

    name: str
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    n_classes: int

    @property
    def shape(self) -> tuple[int, int]:  # (channels, image side)
        return self.x_train.shape[1], self.x_train.shape[2]


def prepare(data: DataSpec, ctx) -> Prepared:
    """Load ``data``; stratified subsets keep data-set order (so a partial-class D_f is the first
    examples of its class in the original order)."""
    import torch

    from ..data import image_dataset, stratified_indices
    from .training import images_to_tensor

    raw = image_dataset(data.dataset, ctx.data_dir)
    ctx.use_dataset(raw.name, data.stand_in_for)
    tr = stratified_indices(raw.y_train, data.n_train or len(raw.y_train), seed=data.subset_seed)
    te = stratified_indices(raw.y_test, data.n_test or len(raw.y_test), seed=data.subset_seed)
    mean, std = raw.normalisation
    return Prepared(raw.name, images_to_tensor(raw.x_train[tr], mean, std), torch.from_numpy(raw.y_train[tr]),
                    images_to_tensor(raw.x_test[te], mean, std), torch.from_numpy(raw.y_test[te]), raw.n_classes)


def forget_data(prep: Prepared, request: Forget):
    """(UnlearnData, Split) of one request on the prepared training set."""
    import torch

    from .methods import UnlearnData

    split = request.split(prep.y_train.numpy())
    f, r = torch.from_numpy(split.forget), torch.from_numpy(split.retain)
    return UnlearnData(prep.x_train[f], prep.y_train[f], prep.x_train[r], prep.y_train[r], prep.n_classes), split


def new_model(arch: str, prep: Prepared, generator=None):
    """A fresh ``arch`` for the prepared data; weights from ``generator`` (seeded) if given."""
    from ..models import build_model

    c, side = prep.shape
    return build_model(arch, n_classes=prep.n_classes, in_channels=c, image_size=side, generator=generator)


def _load(ctx, spec: BankSpec, prep: Prepared, shard: str, seed: int):
    blob = ctx.load_artifact(spec.experiment, shard, int(seed), "model")
    model = new_model(spec.arch, prep)
    model.load_state_dict(blob["state_dict"])
    return model.to(ctx.device).eval()


def load_original(ctx, spec: BankSpec, prep: Prepared, seed: int):
    """The original of model seed ``seed`` (declare it with ``needs``)."""
    return _load(ctx, spec, prep, original_shard(), seed)


def load_retrains(ctx, spec: BankSpec, prep: Prepared, request: Forget, seed: int) -> list:
    """Retrains 0..n_retrains-1 of ``request`` at model seed ``seed``."""
    return [_load(ctx, spec, prep, retrain_shard(request, i), seed) for i in range(spec.n_retrains)]


def load_logits(ctx, spec: BankSpec, request: Forget | None, index: int, seed: int) -> dict | None:
    """``{"fit", "test"}`` logits saved by the model job (the original if ``request`` is None, else
    retrain ``index`` of ``request``); None for a model saved without them."""
    shard = original_shard() if request is None else retrain_shard(request, index)
    return ctx.load_artifact(spec.experiment, shard, int(seed), "model").get("logits")


def eval_indices(n_retain: int, n_test: int, *, retain_size: int | None, shadow_size: int | None,
                 seed: int) -> dict[str, Any]:
    """Fixed evaluation subsets, identical for every method: ``retain_eval`` (into D_r, at most
    ``retain_size``), ``mia_member`` (into D_r) and ``mia_nonmember`` (into the test set), both of
    min(shadow_size or n_test, n_test, n_retain). Sorted index arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    k = min(retain_size or n_retain, n_retain)
    shadow = min(shadow_size or n_test, n_test, n_retain)
    return {"retain_eval": np.sort(rng.choice(n_retain, k, replace=False)),
            "mia_member": np.sort(rng.choice(n_retain, shadow, replace=False)),
            "mia_nonmember": np.sort(rng.choice(n_test, shadow, replace=False))}


def run_models(cfg, ctx, shard: Mapping[str, Any], *, spec_of: Callable[[Any], BankSpec]):
    """One bank job: the original (all training data) or retrain ``index`` of a request (D_r only),
    at model seed ``ctx.seed``; saved as the artifact ``model``; one record."""
    from . import metrics as M
    from .training import predict, train_model

    spec = spec_of(cfg)
    if ctx.experiment != spec.experiment:
        raise ValueError(f"the bank is declared as experiment {spec.experiment!r}, run as {ctx.experiment!r}")
    prep = prepare(spec.data, ctx)
    if shard["role"] == "original":
        x, y, columns, recipe = prep.x_train, prep.y_train, {}, spec.train
    else:
        request = spec.request(shard["request"])
        d, _ = forget_data(prep, request)
        x, y, columns, recipe = d.x_retain, d.y_retain, request.columns(), spec.retrain_recipe
    stage = f"{shard['role']}-{shard['index']}"  # separate streams: original, each retrain
    model = new_model(spec.arch, prep, ctx.torch_generator(f"init-{stage}")).to(ctx.device)
    state = ctx.load_state()
    start, opt_state, wall0, last_loss = 0, None, 0.0, None
    if state is not None:
        model.load_state_dict(state["model"])
        start, opt_state, wall0, last_loss = state["epoch"], state, state["wall_s"], state.get("train_loss")
        if state.get("stopped"):  # killed after an early stop: training is over, do not train on
            start = recipe.epochs
    t0 = time.perf_counter()

    def checkpoint(epoch, model, opt, info):
        stop = recipe.stop_train_acc
        ctx.save_state({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                        "scheduler": info["scheduler"], "wall_s": wall0 + time.perf_counter() - t0,
                        "train_loss": info["train_loss"],
                        "stopped": stop is not None and info.get("train_accuracy", 0.0) >= stop})

    history = train_model(model, x, y, recipe, seed=ctx.seed_for(f"data-{stage}"), device=ctx.device,
                          start_epoch=start, optimizer_state=opt_state, on_epoch=checkpoint)
    wall = wall0 + time.perf_counter() - t0
    logits = {"fit": predict(model, x, ctx.device), "test": predict(model, prep.x_test, ctx.device)}
    ctx.save_artifact("model", {"state_dict": model.state_dict(), "arch": spec.arch, "role": shard["role"],
                                "index": shard["index"], "model_seed": ctx.seed, "logits": logits, **columns})
    yield {"role": shard["role"], "retrain_index": shard["index"], **columns, "arch": spec.arch,
           "epochs": recipe.epochs, "n_train_examples": len(x),
           # a job killed after its last epoch's checkpoint trains nothing on resume: the loss is the checkpoint's
           "train_loss": history[-1]["train_loss"] if history else last_loss,
           "train_accuracy": M.accuracy_np(logits["fit"], y),
           "test_accuracy": M.accuracy_np(logits["test"], prep.y_test),
           "train_wall_time_s": wall}


__all__: Sequence[str] = (
    "BankSpec", "DataSpec", "Forget", "Prepared", "eval_indices", "forget_data", "load_logits", "load_original",
    "load_retrains", "model_shards", "models_experiment", "needs", "new_model", "original_shard",
    "prepare", "retrain_shard", "run_models",
)
