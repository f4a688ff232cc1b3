"""The comparison's baselines as CLI methods (issue 12, item 2), in both frameworks.

Each robust loss itself is tested against a direct computation in the adapters' tests
(``test_torch_baselines.py``, ``test_jax_baselines.py``); here: the CLI method trains a
two-moons run and its training loss *is* that loss (the first step's recorded loss equals
the adapter's loss of the initial model on the first batch). Dynamic Mixup's beta mixture
(:mod:`divweights_train.bmm`), its device-side posterior and its loss are checked against
NumPy recomputations.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F
from divweights_train import cli
from divweights_train.bmm import (
    LOOKUP_SIZE,
    BetaMixtureFit,
    fit_loss_mixture,
    noise_posterior,
)
from divweights_train.config import BASELINE_LOSSES, TrainConfig
from divweights_train.prepare import epoch_permutation, prepare_data
from divweights_train.runloop import RunPlan

FRAMEWORKS = ["torch", pytest.param("jax", marks=pytest.mark.slow)]


def _config(method, framework, tmp_path, **kw) -> TrainConfig:
    base = {
        "dataset": "two-moons",
        "noise": "symmetric:0.3",
        "subset": 400,
        "batch_size": 32,
        "method": method,
        "quiet": True,
        "plots": False,
        "save_weights": False,
        "framework": framework,
        "out": str(tmp_path / f"{framework}-{method}"),
    }
    if framework == "torch":
        base["threads"] = 1
    return TrainConfig(**{**base, **kw})


def _train(cfg):
    if cfg.framework == "torch":
        from divweights_train.trainer_torch import train
    else:
        from divweights_train.trainer_jax import train
    return train(cfg, progress=False, log=lambda s: None)


def test_help_names_every_baseline(capsys):
    assert cli.main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in ("bi-tempered", "nce-rce", "gce", "sce", "dynamic-mixup"):
        assert name in out
    for flag in ("--t1", "--t2", "--loss-alpha", "--loss-beta", "--q"):
        assert flag in out
    assert "5 bytes per training example" in out


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("method", [*BASELINE_LOSSES, "dynamic-mixup"])
def test_baseline_method_trains_a_two_moons_run(method, framework, tmp_path):
    extra = {"burnin_epochs": 2.0} if method == "dynamic-mixup" else {}
    res = _train(_config(method, framework, tmp_path, epochs=6, **extra))
    assert [r.epoch for r in res.records] == list(range(1, 7))
    assert all(math.isfinite(r.train_loss) for r in res.records)
    assert res.records[-1].test_acc > 0.75  # 30% symmetric noise; plain CE reaches about 0.85


def _first_batch(cfg):
    """The backend of the resolved ``cfg`` after ``init``, and the indices of its first training batch."""
    if cfg.framework == "torch":
        from divweights_train.trainer_torch import TorchBackend as Backend
    else:
        from divweights_train.trainer_jax import JaxBackend as Backend
    cfg = cfg.resolved()
    data = prepare_data(cfg)
    n = len(data.train)
    backend = Backend(cfg)
    backend.init(data, RunPlan(n, data.num_classes, cfg.batch_size, n // cfg.batch_size, 0, 0))
    return backend, epoch_permutation(cfg.seed, 0, n)[: cfg.batch_size]


def _first_batch_loss_torch(cfg, direct):
    backend, idx = _first_batch(cfg)
    x, y = backend.tensors.batch(torch.as_tensor(idx), None)
    with torch.no_grad():
        logits = backend.model(x)
    return float(direct(logits, y)), float(F.cross_entropy(logits, y))


def _first_batch_loss_jax(cfg, direct):
    import jax
    import jax.numpy as jnp

    backend, idx = _first_batch(cfg)
    x, y = backend.x_train[idx], backend.y_train[idx]
    logits, _ = backend.model.apply(backend.params, backend.model_state, x, train=True)
    ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), y[:, None], axis=-1))
    return float(jnp.mean(direct(logits, y))), float(ce)


def _direct(method, framework, cfg):
    """The adapter's loss with the resolved options, called directly (the same signatures in both adapters)."""
    cfg = cfg.resolved()
    b = importlib.import_module(f"divweights_{framework}.baselines")
    return {
        "bi-tempered": lambda z, y: b.bi_tempered_logistic_loss(z, y, t1=cfg.t1, t2=cfg.t2),
        "nce-rce": lambda z, y: b.nce_rce_loss(z, y, alpha=cfg.loss_alpha, beta=cfg.loss_beta),
        "gce": lambda z, y: b.generalized_cross_entropy(z, y, q=cfg.q),
        "sce": lambda z, y: b.symmetric_cross_entropy(z, y, alpha=cfg.loss_alpha, beta=cfg.loss_beta),
    }[method]


_LOSS_CASES = [
    ("bi-tempered", {"t1": 0.7, "t2": 1.3}),
    ("nce-rce", {"loss_alpha": 2.0, "loss_beta": 0.5}),
    ("gce", {"q": 0.5}),
    ("sce", {"loss_alpha": 0.3, "loss_beta": 2.0}),
]


@pytest.mark.parametrize(
    "method, options, framework",
    [
        pytest.param(
            m,
            o,
            fw,
            id=f"{m}-{fw}",
            marks=[pytest.mark.slow] if fw == "jax" and m != "gce" else [],
        )
        for m, o in _LOSS_CASES
        for fw in ("torch", "jax")
    ],
)
def test_baseline_method_trains_on_that_loss_with_its_options(method, options, framework, tmp_path):
    cfg = _config(method, framework, tmp_path, epochs=1, max_steps=1, **options)
    first = _train(cfg).records[0]
    assert first.step == 1
    recompute = _first_batch_loss_torch if framework == "torch" else _first_batch_loss_jax
    want, ce = recompute(cfg, _direct(method, framework, cfg))
    assert first.train_loss == pytest.approx(want, rel=1e-5)
    assert abs(want - ce) > 1e-3  # and it is not the cross-entropy


def test_baseline_defaults_follow_their_papers_per_dataset():
    def resolved(method, dataset):
        return TrainConfig(dataset=dataset, method=method, noise="symmetric:0.4").resolved()

    assert (
        resolved("bi-tempered", "cifar10").t1,
        resolved("bi-tempered", "cifar10").t2,
    ) == (0.8, 1.2)
    assert resolved("gce", "fashion-mnist").q == 0.7
    # (alpha, beta) on CIFAR-10, then on CIFAR-100
    for method, want in (("nce-rce", (1.0, 1.0, 10.0, 0.1)), ("sce", (0.1, 1.0, 6.0, 0.1))):
        c10, c100 = resolved(method, "cifar10"), resolved(method, "cifar100")
        assert (c10.loss_alpha, c10.loss_beta, c100.loss_alpha, c100.loss_beta) == want, method
    assert resolved("dynamic-mixup", "cifar10").mixup_alpha == 32.0
    assert resolved("ce", "cifar10").t1 is None  # options of the other methods stay unset


@pytest.mark.parametrize(
    "args, flag, why",
    [
        (["--method", "ce", "--t1", "0.5"], "--t1", "bi-tempered"),
        (["--method", "gce", "--loss-alpha", "2"], "--loss-alpha", "nce-rce, sce"),
        (["--method", "sce", "--q", "0.5"], "--q", "gce"),
        (
            ["--method", "dynamic-mixup", "--anneal-steps", "5"],
            "--anneal-steps",
            "warm-up",
        ),
        (
            ["--method", "nce-rce", "--burnin-steps", "5"],
            "--burnin-steps",
            "does not reweight",
        ),
    ],
)
def test_options_of_other_methods_are_refused(capsys, args, flag, why):
    assert cli.main(["--dataset", "two-moons", *args]) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: has no effect" in err and why in err


def test_out_of_range_loss_options_are_one_line_errors(capsys):
    for args in (["--t1", "1.5"], ["--t2", "0"], ["--q", "0"], ["--loss-alpha", "-1"]):
        assert cli.main(["--dataset", "two-moons", "--method", "bi-tempered", *args]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert (
        cli.main(
            [
                "--dataset",
                "two-moons",
                "--method",
                "sce",
                "--loss-alpha",
                "0",
                "--loss-beta",
                "0",
            ]
        )
        == 2
    )
    assert "cannot both be 0" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "--dataset",
                "two-moons",
                "--method",
                "dynamic-mixup",
                "--mixup-mode",
                "sample",
            ]
        )
        == 2
    )


# --------------------------------------------------------------------------- #
# Dynamic Mixup: the beta mixture, the posterior on the device, the loss, the state.
# --------------------------------------------------------------------------- #
def _two_populations(seed=0, clean=800, noisy=200):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.gamma(2.0, 0.1, clean), rng.gamma(30.0, 0.1, noisy)])


def test_beta_mixture_finds_the_high_loss_examples():
    losses = _two_populations()
    fit = fit_loss_mixture(losses)
    b = noise_posterior(losses, fit)
    flipped = np.arange(losses.size) >= 800
    assert b[flipped].min() > 0.5 > b[~flipped].max() or (
        np.mean(b[flipped] > 0.5) > 0.95 and np.mean(b[~flipped] < 0.5) > 0.95
    )
    assert fit.weights[1] == pytest.approx(0.2, abs=0.05)  # the noisy share
    assert fit.alphas[1] / (fit.alphas[1] + fit.betas[1]) > fit.alphas[0] / (fit.alphas[0] + fit.betas[0])


def test_posterior_table_is_non_decreasing_after_its_maximum_and_clipped():
    fit = fit_loss_mixture(_two_populations(1))
    top = int(np.argmax(fit.table))
    assert np.all(np.diff(fit.table[top:]) >= 0) and fit.table.shape == (LOOKUP_SIZE,)
    b = noise_posterior(np.array([-1.0, 0.0, 1e9]), fit)
    assert b.min() >= 1e-4 and b.max() <= 1 - 1e-4


@pytest.mark.parametrize(
    "losses",
    [
        np.full(50, 0.7),
        np.array([0.1, 5.0] * 20),
        np.array([0.0, 0.0, 1e-30]),
        np.geomspace(1e-8, 1e4, 64),
    ],
    ids=["constant", "two-values", "zeros", "wide"],
)
def test_beta_mixture_of_degenerate_losses_is_finite(losses):
    fit = fit_loss_mixture(losses)
    assert np.all(np.isfinite(fit.table)) and np.all((fit.table >= 0) & (fit.table <= 1))
    assert np.all(np.isfinite(noise_posterior(losses, fit)))


def test_device_posteriors_match_the_numpy_reference():
    from divweights_train.trainer_torch import noise_posterior as torch_posterior

    losses = _two_populations(2)
    fit = fit_loss_mixture(losses)
    probe = np.concatenate([losses, [0.0, fit.loss_min, fit.loss_max, 50.0]]).astype(np.float32)
    want = noise_posterior(probe, fit)
    got = torch_posterior(torch.from_numpy(probe), torch.from_numpy(fit.table), fit.loss_min, fit.loss_max)
    np.testing.assert_array_equal(got.numpy(), want)
    jax = pytest.importorskip("jax")
    from divweights_train.jax_step import noise_posterior as jax_posterior

    got = jax.jit(jax_posterior)(probe, fit.table, np.float32(fit.loss_min), np.float32(fit.loss_max))
    np.testing.assert_array_equal(np.asarray(got), want)


def _fit_for(losses) -> BetaMixtureFit:
    return fit_loss_mixture(np.concatenate([losses, losses * 3 + 1]))


def test_torch_dynamic_mixup_loss_is_bootstrapped_mixup_plus_the_class_balance_term():
    from divweights_train.trainer_torch import TorchBackend

    n, k = 32, 4
    cfg = TrainConfig(dataset="two-moons", method="dynamic-mixup", noise="symmetric:0.3", threads=1).resolved()
    backend = TorchBackend(cfg)
    backend.plan = RunPlan(n, k, n, 1, 2, 0)
    torch.manual_seed(0)
    backend.model = torch.nn.Linear(n, k)
    x, y = torch.eye(n), torch.arange(n) % k
    with torch.no_grad():
        logits0 = backend.model(x)
        l0 = F.cross_entropy(logits0, y, reduction="none").numpy()
    backend._set_fit(_fit_for(l0), fitted=True)
    seen = []
    backend.model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()) and None)
    loss, w, _scored, clean = backend._dynamic_mixup(x, y, torch.Generator().manual_seed(0), step=2)
    np.testing.assert_allclose(clean.numpy(), l0, rtol=1e-6)
    b = noise_posterior(l0, backend.dm_fit)[:, None]
    target = (1 - b) * np.eye(k)[y.numpy()] + b * np.eye(k)[logits0.argmax(-1).numpy()]
    mx = seen[1].numpy()
    r, partners = np.diag(mx).copy(), np.arange(n)
    for i in range(n):
        row = mx[i].copy()
        row[i] = 0
        if row.max() > 1e-6:
            partners[i] = int(np.argmax(row))
    my = r[:, None] * target + (1 - r[:, None]) * target[partners]
    with torch.no_grad():
        logp = F.log_softmax(backend.model(torch.from_numpy(mx)), -1).double().numpy()
    mean_p = np.exp(logp).mean(0)
    want = -(my * logp).sum(-1).mean() + np.mean(np.log(1 / k) - np.log(mean_p))
    assert loss.item() == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(w.numpy(), (1 - b[:, 0]) / (1 - b[:, 0]).sum(), rtol=1e-5)
    # during the warm-up: plain mixup of the labels, no regulariser, uniform weights
    loss, w, _, _ = backend._dynamic_mixup(x, y, torch.Generator().manual_seed(0), step=1)
    np.testing.assert_allclose(w.numpy(), 1 / n)


@pytest.mark.slow
def test_jax_dynamic_mixup_step_matches_a_recomputation():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from divweights_jax import weighted_mixup
    from divweights_train.jax_step import StepSpec, epoch_key_data, train_step
    from divweights_train.models_jax import build_model as build_jax_model

    n, k = 32, 4
    model = build_jax_model("mlp", (n,), k, hidden=())
    spec = StepSpec(model=model, mixup="plain", loss="dynamic-mixup", mixup_alpha=32.0)
    params, state = model.init(jax.random.key(0))
    buf = jax.tree.map(jnp.zeros_like, params)
    x, y = np.eye(n, dtype=np.float32), (np.arange(n) % k).astype(np.int32)
    logits0 = np.asarray(model.apply(params, state, x, train=True)[0], np.float64)
    l0 = -np.log(
        np.exp(logits0 - logits0.max(1, keepdims=True))
        / np.exp(logits0 - logits0.max(1, keepdims=True)).sum(1, keepdims=True)
    )[np.arange(n), y]
    fit = _fit_for(l0)
    aux = {
        "table": fit.table,
        "loss_min": np.float32(fit.loss_min),
        "loss_max": np.float32(fit.loss_max),
    }
    keys = jax.random.wrap_key_data(epoch_key_data(0, 0), impl="threefry2x32")
    out = train_step(spec, params, state, buf, x, y, np.arange(n, dtype=np.int32), keys, np.int32(0),
                     np.float32(0.0), np.float32(0.0), np.bool_(True), aux=aux)  # fmt: skip
    loss, w, clean = float(out[3]), np.asarray(out[4]), np.asarray(out[7])
    np.testing.assert_allclose(clean, l0, rtol=1e-5)
    b = noise_posterior(l0.astype(np.float32), fit)[:, None].astype(np.float64)
    target = (1 - b) * np.eye(k)[y] + b * np.eye(k)[logits0.argmax(-1)]
    k_mix = jax.random.fold_in(keys[1], np.int32(0))
    mx, my, _ = weighted_mixup(k_mix, x, target.astype(np.float32), w, mode="plain", alpha=32.0)
    logits = np.asarray(model.apply(params, state, mx, train=True)[0], np.float64)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want = -(np.asarray(my) * logp).sum(-1).mean() + np.mean(np.log(1 / k) - np.log(np.exp(logp).mean(0)))
    assert loss == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(w, (1 - b[:, 0]) / (1 - b[:, 0]).sum(), rtol=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_dynamic_mixup_finds_flipped_labels_and_resumes_exactly(framework, tmp_path):
    import dataclasses

    def config(out, **kw):
        return _config(
            "dynamic-mixup",
            framework,
            tmp_path,
            epochs=4,
            burnin_epochs=1.0,
            out=str(out),
            **kw,
        )

    ref = _train(config(tmp_path / "ref")).records
    assert ref[-1].auroc > 0.7  # the trust weights 1 - B single out the flipped labels
    stopped = config(tmp_path / "cut", stop_after_epochs=2)
    _train(stopped)  # the beta mixture and the per-example losses go into the checkpoint
    resumed = _train(dataclasses.replace(stopped, stop_after_epochs=None, resume=True)).records
    assert [r.without_timing() for r in resumed] == [r.without_timing() for r in ref]


def test_dynamic_mixup_keeps_five_bytes_per_example(tmp_path):
    from divweights_train.trainer_torch import TorchBackend

    cfg = _config("dynamic-mixup", "torch", tmp_path).resolved()
    data = prepare_data(cfg)
    n = len(data.train)
    backend = TorchBackend(cfg)
    backend.init(data, RunPlan(n, 2, 32, n // 32, 0, 0))
    assert backend.dm_losses.nbytes + backend.dm_seen.nbytes == 5 * n
    state = backend.state()["dynamic_mixup"]
    assert state["losses"].shape == (n,) and state["table"].shape == (LOOKUP_SIZE,)
