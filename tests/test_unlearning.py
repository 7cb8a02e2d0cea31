"""Unit tests of the shared unlearning core (reprosuite.unlearning); fast (< 30 s)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reprosuite.models import build_model
from reprosuite.models.cnn import SmallCNN, resnet8
from reprosuite.unlearning import metrics as M
from reprosuite.unlearning.configs import GAConfig, RLConfig, TrainConfig
from reprosuite.unlearning.ltd import soft_ce, soft_targets
from reprosuite.unlearning.methods import METHODS, UnlearnData, method, method_config, unlearn
from reprosuite.unlearning.mia import loss_mia, svc_mia
from reprosuite.unlearning.splits import (
    full_class_split,
    partial_class_split,
    random_subset_split,
    split_facts,
)
from reprosuite.unlearning.training import predict, train_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI cores: oversubscription is slower
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def trained(digits):
    """SmallCNN trained on the first 800 digits only."""
    x, y, _, _ = digits
    model = build_model("small_cnn", n_classes=10, in_channels=1, image_size=8, generator=torch.Generator().manual_seed(0))
    train_model(model, x[:800], y[:800], TrainConfig(epochs=10, batch_size=64), seed=0)
    return model


@pytest.fixture(scope="module")
def digits():
    from reprosuite.data import digits as load

    d = load()
    x = torch.from_numpy(d.x_train).float().div(255).unsqueeze(1)  # (N, 1, 8, 8)
    xt = torch.from_numpy(d.x_test).float().div(255).unsqueeze(1)
    return x, torch.from_numpy(d.y_train), xt, torch.from_numpy(d.y_test)


def test_partial_split_is_first_k_of_class_disjoint_and_covering():
    y = np.array([3, 1, 3, 2, 3, 3, 0, 3, 1])
    s = partial_class_split(y, 3, 0.5)  # N_c = 5 -> floor(2.5) = 2
    assert s.forget.tolist() == [0, 2]
    assert np.intersect1d(s.forget, s.retain).size == 0
    assert sorted(np.concatenate([s.forget, s.retain]).tolist()) == list(range(len(y)))
    facts = split_facts(y, s)
    assert facts["forget_is_first_k_of_class"] and facts["retain_keeps_rest_of_class"] and facts["covers"]
    assert facts["retain_class_c"] == 3


@pytest.mark.parametrize("frac", [0.1, 0.33, 1.0])
def test_split_sizes_and_determinism(frac):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 997)
    s = partial_class_split(y, 4, frac)
    assert len(s.forget) == int(np.floor(frac * (y == 4).sum()))
    assert np.array_equal(s.forget, partial_class_split(y, 4, frac).forget)
    full = full_class_split(y, 4)
    assert np.array_equal(full.forget, np.flatnonzero(y == 4))
    r1, r2 = random_subset_split(997, 0.1, seed=3), random_subset_split(997, 0.1, seed=3)
    assert np.array_equal(r1.forget, r2.forget) and len(r1.forget) + len(r1.retain) == 997
    assert not np.array_equal(r1.forget, random_subset_split(997, 0.1, seed=4).forget)


def test_same_seed_same_model(digits):
    x, y, _, _ = digits
    cfg = TrainConfig(epochs=1, batch_size=64)
    models = []
    for _ in range(2):
        m = build_model("small_cnn", n_classes=10, in_channels=1, image_size=8, generator=torch.Generator().manual_seed(5))
        train_model(m, x[:300], y[:300], cfg, seed=11)
        models.append(m.state_dict())
    assert all(torch.equal(models[0][k], models[1][k]) for k in models[0])


def test_predict_chunks_give_the_logits_of_one_large_batch(digits, trained):
    """Evaluation batches of 256 (a conv net on the CPU) give the logits, bit for bit, of 2,048;
    a last chunk under 64 joins the one before."""
    from reprosuite.unlearning.training import chunks, eval_batch_size

    x = digits[0]
    assert eval_batch_size(trained) == 256 and eval_batch_size(build_model(
        "mlp", n_classes=10, in_channels=1, image_size=8)) == 2048
    assert chunks(550, 256) == [(0, 256), (256, 550)] and chunks(600, 256)[-1] == (512, 600)
    assert chunks(300, 256) == [(0, 300)]
    assert chunks(0, 256) == [] and chunks(100, 256) == [(0, 100)]
    for n in (len(x), 700, 513):
        assert torch.equal(predict(trained, x[:n]), predict(trained, x[:n], batch_size=2048))
        assert torch.equal(predict(trained, x[:n], features=True), predict(trained, x[:n], batch_size=2048, features=True))


def test_early_stop_check_takes_the_decision_of_the_full_accuracy(digits, trained):
    from reprosuite.unlearning.training import accuracy, reaches_accuracy, reaches_error

    x, y, _, _ = digits
    acc = accuracy(trained, x, y)
    assert reaches_accuracy(trained, x, y, acc) == acc  # reached: the full accuracy
    assert reaches_accuracy(trained, x, y, min(1.0, acc + 1e-9)) is None
    assert reaches_accuracy(trained, x, y, acc - 0.05) == acc
    wrong_labels = (y + 1) % 10  # mostly wrong: a high error rate
    err = 1.0 - accuracy(trained, x, wrong_labels)
    assert reaches_error(trained, x, wrong_labels, err) == err and reaches_error(trained, x, wrong_labels, err + 1e-9) is None
    assert reaches_error(trained, x, y, 0.9) is None
    cfg = TrainConfig(epochs=30, batch_size=64, stop_train_acc=0.9)
    runs = []
    for _ in range(2):  # the early-stopping run: same epochs, same weights, full accuracy at the stop
        m = build_model("small_cnn", n_classes=10, in_channels=1, image_size=8, generator=torch.Generator().manual_seed(3))
        runs.append((train_model(m, x[:300], y[:300], cfg, seed=4), m))
    (hist, model), _ = runs
    assert hist[-1]["train_accuracy"] == accuracy(model, x[:300], y[:300]) >= 0.9
    assert all("train_accuracy" not in h for h in hist[:-1]) and len(hist) < 30
    capped = build_model("small_cnn", n_classes=10, in_channels=1, image_size=8, generator=torch.Generator().manual_seed(3))
    short = train_model(capped, x[:300], y[:300], TrainConfig(epochs=2, batch_size=64, stop_train_acc=0.999), seed=4)
    assert len(short) == 2 and short[-1]["train_accuracy"] == accuracy(capped, x[:300], y[:300])  # the last epoch


def test_ltd_with_a_teacher_fitted_elsewhere_is_ltd(digits, trained):
    """A teacher fitted beforehand (``fit_teacher`` at LTD's seed) gives the student LTD fits with its
    own teacher, and LTD's RTE adds the teacher's seconds."""
    from reprosuite.unlearning.configs import LTDConfig, StudentConfig
    from reprosuite.unlearning.ltd import fit_teacher, local_teacher_distillation

    x, y, _, _ = digits
    f = torch.from_numpy(partial_class_split(y[:800].numpy(), 8, 0.5).forget)
    keep = torch.ones(800, dtype=torch.bool)
    keep[f] = False
    data = UnlearnData(x[f], y[f], x[:800][keep][:300], y[:800][keep][:300], 10)
    cfg = LTDConfig(n_support=60, teacher_arch="small_cnn",
                    teacher=TrainConfig(epochs=5, batch_size=32, optimizer="sgd", lr=0.05, stop_train_acc=0.9),
                    student=StudentConfig(epochs=1, batch_size=64, optimizer="adamw", lr=1e-3))
    inside, info_in = local_teacher_distillation(trained, data, cfg, seed=5)
    teacher = fit_teacher(trained, data, cfg, seed=5)
    outside, info_out = local_teacher_distillation(trained, data, cfg, seed=5, teacher=teacher)
    assert all(torch.equal(a, b) for a, b in zip(inside.state_dict().values(), outside.state_dict().values()))
    assert info_in["teacher_epochs"] == info_out["teacher_epochs"] and info_out["rte_s"] > teacher.seconds > 0
    assert torch.equal(info_in["teacher_forget_pred"], info_out["teacher_forget_pred"])


def test_features_are_64d_and_head_of_features_is_forward():
    for model, shape in ((SmallCNN(), (2, 1, 28, 28)), (resnet8(n_classes=100), (2, 3, 32, 32))):
        model.eval()
        x = torch.randn(shape)
        assert model.features(x).shape == (2, 64)
        assert torch.allclose(model.head(model.features(x)), model(x), atol=1e-6)


def test_soft_ce_equals_cross_entropy_for_one_hot():
    logits = torch.randn(7, 5)
    y = torch.randint(0, 5, (7,))
    assert torch.allclose(soft_ce(logits, F.one_hot(y, 5).float()), F.cross_entropy(logits, y, reduction="none"), atol=1e-6)


def test_top3_soft_targets_renormalised():
    q = soft_targets(torch.randn(4, 10), "top3_renorm")
    assert torch.allclose(q.sum(1), torch.ones(4)) and ((q > 0).sum(1) == 3).all()


def test_bins_identical_across_methods_and_counts_sum():
    rng = np.random.default_rng(1)
    s = rng.uniform(-0.2, 0.9, 500)
    y = torch.from_numpy(rng.integers(0, 3, 500))
    edges = M.bin_edges(s, 10)
    orig, retrain = torch.randn(500, 3), torch.randn(500, 3)
    tables = []
    for seed in (0, 1):  # two "methods": different logits, same s
        unl = torch.randn(500, 3, generator=torch.Generator().manual_seed(seed))
        rows = M.binned_discrepancies(s, edges, M.pointwise(y, unl, orig, [retrain]))
        tables.append([(r["bin_lo"], r["bin_hi"], r["count"], r["consensus_count"]) for r in rows])
    assert tables[0] == tables[1]
    assert sum(t[2] for t in tables[0]) == 500
    q = M.bin_edges(s, 5, "quantile")
    assert np.bincount(M.assign_bins(s, q), minlength=5).tolist() == [100] * 5


def test_mia_near_chance_for_model_that_never_saw_forget_set(digits, trained):
    """A model trained without the 'forget' points: the loss MIA (forget vs test) is at chance and
    SVC-MIA scores the forget set like fresh test points."""
    x, y, xt, yt = digits
    model = trained
    lg = lambda a, b: (predict(model, a), b)  # noqa: E731
    member, forget = lg(x[:400], y[:400]), lg(x[800:1250], y[800:1250])  # forget: never trained on
    nonmember, fresh = lg(xt[:270], yt[:270]), lg(xt[270:], yt[270:])
    assert 0.4 <= loss_mia(forget, lg(xt, yt), seed=0) <= 0.6
    score_f = svc_mia(member, nonmember, forget, variants=("confidence",))["confidence"]
    score_t = svc_mia(member, nonmember, fresh, variants=("confidence",))["confidence"]
    assert abs(score_f - score_t) <= 15, (score_f, score_t)


def test_unlearning_methods_run_and_time(digits, trained):
    x, y, _, _ = digits
    x, y, model = x[:800], y[:800], trained
    f = torch.from_numpy(partial_class_split(y.numpy(), 8, 0.5).forget)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[f] = False
    data = UnlearnData(x[f], y[f], x[mask][:300], y[mask][:300], 10)
    for kind in ("ga", "rl", "ft", "salun", "ga_ft"):
        cfg = method_config(kind, epochs=1, batch_size=32, lr=0.01, ua_target=0.9 if kind == "ga" else None)
        assert cfg.kind == kind and isinstance(cfg, method(kind).config)
        out, info = unlearn(model, data, cfg, seed=0)
        assert info["rte_s"] > 0 and torch.isfinite(predict(out, x[:10])).all()
    assert not torch.equal(next(out.parameters()), next(model.parameters()))  # copy, original intact


# the bank -------------------------------------------------------------------------------------
def _digits_bank(seeds=(0, 1)):
    from reprosuite.unlearning import bank

    return bank.BankSpec(bank.DataSpec("digits", n_train=600), arch="small_cnn",
                         train=TrainConfig(epochs=1, batch_size=64),
                         retrain=TrainConfig(epochs=1, batch_size=60),
                         requests=(bank.Forget.partial(3, 0.5), bank.Forget.random(0.1, 42)),
                         n_retrains=2, seeds=seeds)


def test_bank_declares_one_job_per_model_and_needs_by_parameters():
    from reprosuite.registry import param_needs
    from reprosuite.unlearning import bank

    spec = _digits_bank()
    assert list(bank.model_shards(spec)) == ["original", "c3-f0.5-r0", "c3-f0.5-r1",
                                             "rand-f0.1-s42-r0", "rand-f0.1-s42-r1"]
    exp = bank.models_experiment(lambda cfg: spec)
    assert exp.name == "models" and tuple(exp.seeds(None)) == (0, 1)
    shards = {"a": {"frac": 0.1, "model_seed": 1}}
    needs = param_needs(lambda cfg: shards, lambda cfg, p, seed: bank.needs(
        spec, bank.Forget.random(p["frac"], 42), p["model_seed"]))
    assert needs(None, "a", 0) == [("models", "original", 1), ("models", "rand-f0.1-s42-r0", 1),
                                   ("models", "rand-f0.1-s42-r1", 1)]
    with pytest.raises(ValueError, match="model seed 7"):
        bank.needs(spec, None, 7)
    with pytest.raises(KeyError, match="known: c3-f0.5, rand-f0.1-s42"):
        bank.needs(spec, bank.Forget.full(3), 0)
    with pytest.raises(ValueError, match="frac = 0.0"):
        bank.Forget.partial(3, 0.0)


def test_bank_trains_once_per_seed_and_consumers_load_the_pair(tmp_path):
    from reprosuite.runner import RunContext
    from reprosuite.unlearning import bank

    spec = _digits_bank()

    def train(shard, seed):
        ctx = RunContext(paper="toy", experiment="models", shard=shard, seed=seed, scale="smoke", device="cpu",
                         results=tmp_path)
        rows = list(bank.run_models(None, ctx, bank.model_shards(spec)[shard], spec_of=lambda cfg: spec))
        (ctx.dir / "state.pt").unlink()  # as the runner does after a finished job
        return rows[0], ctx

    orig0, ctx = train("original", 0)
    ret0, _ = train("rand-f0.1-s42-r1", 0)
    train("rand-f0.1-s42-r0", 0)
    orig1, _ = train("original", 1)
    assert orig0["n_train_examples"] == 600 and ret0["n_train_examples"] == 540
    assert ret0["cell"] == "rand-f0.1-s42" and ctx.datasets == {"digits": None}
    assert orig0["train_loss"] != orig1["train_loss"]  # model seeds are separate streams
    again, _ = train("original", 0)
    assert again["train_loss"] == orig0["train_loss"]  # and deterministic
    use = RunContext(paper="toy", experiment="curves", shard="a", seed=0, scale="smoke", device="cpu",
                     results=tmp_path)
    prep = bank.prepare(spec.data, use)
    request = bank.Forget.random(0.1, 42)
    d, split = bank.forget_data(prep, request)
    assert len(d.x_forget) == 60 and len(split.retain) == 540
    original = bank.load_original(use, spec, prep, 0)
    retrains = bank.load_retrains(use, spec, prep, request, 0)
    assert len(retrains) == 2 and not original.training
    ref = bank.new_model("small_cnn", prep)
    ref.load_state_dict(torch.load(tmp_path / "toy/runs/models/original/seed0/artifacts/model.pt")["state_dict"])
    assert torch.equal(predict(ref, prep.x_test), predict(original, prep.x_test))
    idx = bank.eval_indices(540, len(prep.x_test), retain_size=100, shadow_size=50, seed=1)
    assert len(idx["retain_eval"]) == 100 and len(idx["mia_member"]) == len(idx["mia_nonmember"]) == 50


def test_normalisation_lives_with_the_data_sets():
    from reprosuite.data import NORMALISATION, normalisation

    assert normalisation("fashion_mnist") == ((0.2860,), (0.3530,))
    assert set(NORMALISATION) >= {"cifar100", "fashion_mnist", "mnist", "mnist5k", "digits"}
    with pytest.raises(KeyError, match="known"):
        normalisation("imagenet")


def test_method_registry_lists_known_names_and_refuses_bad_settings():
    assert {"ga", "ga_ft", "rl", "ft", "salun", "ltd"} <= set(METHODS) | {"ltd"}
    with pytest.raises(KeyError, match="known: .*ga.*ltd"):
        method("gradient_descent")
    with pytest.raises(ValueError, match="lr = 0.0 must be > 0"):
        GAConfig(lr=0.0)
    with pytest.raises(ValueError, match="retain_fraction = 1.5"):
        RLConfig(retain_fraction=1.5)
    with pytest.raises(TypeError, match="mask_ratio"):
        method_config("ga", mask_ratio=0.3)  # SalUn's setting is not GA's
    with pytest.raises(TypeError, match="takes a RLConfig"):
        unlearn(None, None, GAConfig(kind="rl"), seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("stop", [None, 0.01], ids=["full-epochs", "early-stop"])
def test_bank_job_killed_after_its_last_checkpoint_resumes_to_the_same_record(tmp_path, monkeypatch, stop):
    """A kill between the last epoch's checkpoint and the records (here: while saving the model)
    trains nothing more on resume, and the record keeps the checkpoint's loss; after an early stop
    (stop_train_acc reached) the resumed job does not train on to the full epoch count."""
    import dataclasses

    from reprosuite.runner import RunContext
    from reprosuite.unlearning import bank

    spec = _digits_bank()
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=2, stop_train_acc=stop))
    shard = bank.model_shards(spec)["original"]

    def job(results):
        ctx = RunContext(paper="toy", experiment="models", shard="original", seed=0, scale="smoke", device="cpu",
                         results=results)
        return list(bank.run_models(None, ctx, shard, spec_of=lambda cfg: spec))[0], ctx

    ref, _ = job(tmp_path / "ref")
    killed = RunContext.save_artifact

    def die(self, key, obj):
        raise KeyboardInterrupt("killed while saving the model")

    monkeypatch.setattr(RunContext, "save_artifact", die)
    with pytest.raises(KeyboardInterrupt):
        job(tmp_path / "run")
    monkeypatch.setattr(RunContext, "save_artifact", killed)
    import torch

    saved = torch.load(tmp_path / "run/toy/runs/models/original/seed0/state.pt", weights_only=False)["state"]
    assert saved["epoch"] == (1 if stop is not None else 2)
    resumed, _ = job(tmp_path / "run")
    assert resumed["train_loss"] == ref["train_loss"] is not None
    assert resumed["train_accuracy"] == ref["train_accuracy"]


def test_small_cnn_pools_before_relu_with_the_numbers_of_relu_before_pool(digits):
    """SmallCNN pools, then applies ReLU (cheaper), and pools by the maxima of the four quarters
    when no gradient is recorded (faster); training and inference give the numbers, bit for bit,
    of the textbook order ReLU -> max_pool2d, on images with flat (tied) backgrounds too."""
    import copy

    class ReluFirst(SmallCNN):
        def features(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return F.relu(self.fc1(x.flatten(1)))

    x, y, _, _ = digits
    ours = build_model("small_cnn", n_classes=10, in_channels=1, image_size=8, generator=torch.Generator().manual_seed(2))
    ref = ReluFirst(1, 10, 8)
    ref.load_state_dict(copy.deepcopy(ours.state_dict()))
    cfg = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05)
    for m in (ours, ref):
        train_model(m, x[:600], y[:600], cfg, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))
    assert torch.equal(predict(ours, x), predict(ref, x))  # inference pools by maxima of quarters: same logits
    with torch.enable_grad():  # the pooling kernel (autograd on) gives the numbers inference gives
        assert torch.equal(ours(x[:300]).detach(), predict(ours, x[:300]))
    from reprosuite.models.cnn import _max_pool_2x2

    z = torch.randn(3, 4, 7, 9)
    z[:, :, :4, :4] = 0.5  # ties
    z[0, 0, 0, 1] = float("nan")
    assert torch.equal(_max_pool_2x2(z).isnan(), F.max_pool2d(z, 2).isnan())
    assert torch.equal(_max_pool_2x2(z).nan_to_num(), F.max_pool2d(z, 2).nan_to_num())
