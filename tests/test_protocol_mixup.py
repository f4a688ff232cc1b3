"""``--protocol paper``: the published mixup rules, pinned (issue 12, item 1; split from ``test_protocol.py``).

CIW-M's smoothing with margins and mean CE of the mixed batch, CICW-M's burn-in (plain mixup with
permutation partners and Beta(2, 2) ratios) and its ratios from ``w ** m``, in both backends. The
row-by-row comparison with the published code is ``docs/guide/protocol.rst``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F
from divweights_train.config import TrainConfig
from divweights_train.protocol import mixing_weights, published_smoothing
from divweights_train.runloop import RunPlan


# --------------------------------------------------------------------------- #
# The published mixup rules (in the training program, both backends).
# --------------------------------------------------------------------------- #
def test_published_smoothing_factors_with_margins():
    w = np.array([0.05, 0.15, 0.3, 0.5])
    lo, hi = max(w.min() - 0.01, 0.0), min(w.max() + 0.01, 1.0)
    np.testing.assert_allclose(published_smoothing(w), (w - lo) / (hi - lo))
    np.testing.assert_allclose(published_smoothing(np.array([0.0, 1.0])), [0.0, 1.0])  # margins clipped
    np.testing.assert_allclose(published_smoothing(torch.tensor(w)).numpy(), published_smoothing(w))


def test_mixing_weights_are_normalised_powers():
    w = np.array([0.1, 0.2, 0.7])
    np.testing.assert_allclose(mixing_weights(w, 3.0), w**3 / np.sum(w**3))
    np.testing.assert_allclose(mixing_weights(np.zeros(4), 2.0), np.full(4, 0.25))


def _recover(mx):
    """Partners and ratios of mixed one-hot inputs: row i = r e_i + (1 - r) e_j."""
    n = mx.shape[0]
    partners, ratios = np.arange(n), np.ones(n)
    for i in range(n):
        row = mx[i].copy()
        ratios[i] = row[i]
        row[i] = 0
        if row.max() > 1e-6:
            partners[i] = int(np.argmax(row))
    return partners, ratios


def _torch_backend(method, n, k, *, rule="published", burnin=0, power=2.0, alpha=None, **kw):
    from divweights_train.trainer_torch import TorchBackend, build_loss

    cfg = TrainConfig(
        dataset="two-moons",
        method=method,
        noise="symmetric:0.3",
        mixup_rule=rule,
        mixup_power=power,
        **({} if alpha is None else {"mixup_alpha": alpha}),
        threads=1,
        **kw,
    ).resolved()
    backend = TorchBackend(cfg)
    backend.plan = RunPlan(n, k, n, 1, burnin, 0)
    backend.published_mixup = rule == "published"
    torch.manual_seed(0)
    backend.model = torch.nn.Linear(n, k)
    backend.loss_fn = build_loss(cfg, burnin, 0)
    backend.mixed_loss_fn = backend.dwt.ReweightedLoss(None, reduction="sum")
    return backend


def test_torch_published_rule_mixes_with_ratios_from_w_to_the_power_m():
    n, k = 64, 5
    backend = _torch_backend("cicw-m", n, k)
    w = torch.rand(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.05
    w = (w / w.sum()).float()
    y = torch.arange(n) % k
    gen = torch.Generator().manual_seed(2)
    mx, _ = backend._mix(torch.eye(n), y, w, "sample_weight", None, gen)
    partners, ratios = _recover(mx.numpy())
    mw = (w.double() ** 2 / (w.double() ** 2).sum()).numpy()
    mixed = partners != np.arange(n)
    want = mw / (mw + mw[partners])
    np.testing.assert_allclose(ratios[mixed], want[mixed], rtol=1e-5)
    raw = (w / (w + w[partners])).numpy()  # divweights' ratio from the raw weights differs
    assert not np.allclose(ratios[mixed], raw[mixed], rtol=1e-3)


def test_torch_published_ciw_m_smoothing_then_plain_mixup():
    n, k = 48, 4
    backend = _torch_backend("ciw-m", n, k, power=1.0)
    g = torch.Generator().manual_seed(3)
    w = torch.rand(n, generator=g)
    w = w / w.sum()
    y = torch.arange(n) % k
    logits0 = torch.randn(n, k, generator=g)
    mx, my = backend._mix(torch.eye(n), y, w, "label_smoothing", logits0, torch.Generator().manual_seed(4))
    partners, ratios = _recover(mx.numpy())
    s = published_smoothing(w.double().numpy())[:, None]
    soft = s * np.eye(k)[y.numpy()] + (1 - s) * np.eye(k)[logits0.argmax(-1).numpy()]
    want = ratios[:, None] * soft + (1 - ratios[:, None]) * soft[partners]
    np.testing.assert_allclose(my.numpy(), want, atol=1e-5)
    clear = (ratios > 1e-3) & (ratios < 1 - 1e-3)  # rows whose partner can be read off
    assert len(set(partners[clear].tolist())) == clear.sum()  # partners: a random permutation


def _forward_inputs(backend, x, y, step):
    seen = []
    backend.model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()) and None)
    loss, *_ = backend._forward(x, y, torch.arange(len(y)), torch.Generator().manual_seed(5), step)
    return loss, seen


def test_cicw_m_burn_in_is_plain_mixup_with_permutation_partners_and_beta_2_ratios():
    n, k = 512, 4
    backend = _torch_backend("cicw-m", n, k, burnin=10, alpha=2.0)
    _, seen = _forward_inputs(backend, torch.eye(n), torch.arange(n) % k, step=0)
    assert len(seen) == 1  # no clean pass during the burn-in
    partners, ratios = _recover(seen[0].numpy())
    assert len(set(partners.tolist())) == n
    mixed = partners != np.arange(n)
    assert ratios[mixed].mean() == pytest.approx(0.5, abs=0.03)
    assert ratios[mixed].var() == pytest.approx(1 / 20, abs=0.012)  # Beta(2, 2)
    # divweights' rule mixes with the (uniform) clean-pass weights instead: partners drawn with replacement,
    # and its weighted Beta ratio is Beta(alpha, alpha) at equal weights (the published ratio would be 1/2)
    ours = _torch_backend("cicw-m", n, k, rule="divweights", burnin=10, alpha=2.0)
    _, seen = _forward_inputs(ours, torch.eye(n), torch.arange(n) % k, step=0)
    partners, ratios = _recover(seen[-1].numpy())
    assert len(set(partners.tolist())) < n
    mixed = partners != np.arange(n)
    assert ratios[mixed].mean() == pytest.approx(0.5, abs=0.03)
    assert ratios[mixed].var() == pytest.approx(1 / 20, abs=0.012)  # Beta(2, 2)


def test_ciw_m_burn_in_has_no_mixup_and_after_it_takes_mean_ce_of_the_mixed_batch():
    from divweights_train.trainer_torch import _clean_pass_weights

    n, k = 16, 3
    x, y = torch.eye(n), torch.arange(n) % k
    backend = _torch_backend("ciw-m", n, k, burnin=4, mixup_recompute=False)
    loss, seen = _forward_inputs(backend, x, y, step=0)
    assert len(seen) == 1 and torch.equal(seen[0], x)
    assert loss.item() == pytest.approx(F.cross_entropy(backend.model(x), y).item(), rel=1e-5)
    backend = _torch_backend("ciw-m", n, k, burnin=4, mixup_recompute=False)
    backend.loss_fn.step = backend.loss_fn.step + 4  # past the burn-in
    loss, seen = _forward_inputs(backend, x, y, step=4)
    assert len(seen) == 2 and torch.equal(seen[0], x)  # clean pass, then the mixed batch
    mixed_input = seen[1]
    with torch.no_grad():
        logits0 = backend.model(x)
        w = _clean_pass_weights(backend.loss_fn, logits0, y)
        mx, my = backend._mix(x, y, w, "label_smoothing", logits0, torch.Generator().manual_seed(5))
        assert torch.equal(mx, mixed_input)
        want = -(my * F.log_softmax(backend.model(mx), -1)).sum(-1).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_jax_burn_in_spec_and_published_mixup():
    jax = pytest.importorskip("jax")
    from divweights_train.jax_step import StepSpec, _published_mixup
    from divweights_train.models_jax import build_model as build_jax_model
    from divweights_train.trainer_jax import _burnin_spec

    n, k = 64, 5
    model = build_jax_model("mlp", (n,), k, hidden=())
    spec = StepSpec(model=model, mixup="sample_weight", mixup_rule="published", mixup_power=2.0)
    assert _burnin_spec(spec).mixup == "plain"
    assert _burnin_spec(dataclasses.replace(spec, mixup="label_smoothing")).mixup is None
    assert _burnin_spec(dataclasses.replace(spec, mixup_rule="divweights")) is None
    w = np.random.default_rng(1).random(n).astype(np.float32) + 0.05
    w /= w.sum()
    y = np.arange(n) % k
    mx, _, _ = _published_mixup(spec, jax.random.key(0), np.eye(n, dtype=np.float32), y, w, None, k)
    partners, ratios = _recover(np.asarray(mx, np.float64))
    mw = w.astype(np.float64) ** 2 / np.sum(w.astype(np.float64) ** 2)
    mixed = partners != np.arange(n)
    np.testing.assert_allclose(ratios[mixed], (mw / (mw + mw[partners]))[mixed], rtol=1e-4)
    ls = dataclasses.replace(spec, mixup="label_smoothing", mixup_power=1.0, mixup_alpha=1.0)
    logits0 = np.random.default_rng(2).normal(size=(n, k)).astype(np.float32)
    mx, my, _ = _published_mixup(ls, jax.random.key(1), np.eye(n, dtype=np.float32), y, w, logits0, k)
    partners, ratios = _recover(np.asarray(mx, np.float64))
    s = published_smoothing(w.astype(np.float64))[:, None]
    soft = s * np.eye(k)[y] + (1 - s) * np.eye(k)[logits0.argmax(-1)]
    want = ratios[:, None] * soft + (1 - ratios[:, None]) * soft[partners]
    np.testing.assert_allclose(np.asarray(my), want, atol=1e-5)
