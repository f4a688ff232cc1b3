"""Tests for the JAX adapter (divweights_jax): loss, schedule, weighted mixup."""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from divweights_jax import (
    DEFAULT_DELTA,
    MIXUP_MODES,
    anneal_factor,
    reweighted_loss,
    scaled_strength,
    weighted_mixup,
)

from divweights import KL, Alpha, ReverseKL, TotalVariation, class_weights, instance_weights
from divweights.mixup import mixup_ratio, partner_probabilities

N, K = 8, 5


@pytest.fixture
def batch(rng):
    logits = jnp.asarray(rng.normal(scale=2.0, size=(N, K)).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, K, size=N).astype(np.int32))
    return logits, labels


def ce(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ---------------------------------------------------------------- loss values


def test_weights_equal_core_weights(batch):
    logits, labels = batch
    _, aux = reweighted_loss(logits, labels, temperature=0.5)
    close(aux["weights"], instance_weights(ce(logits, labels), KL(), temperature=0.5))


def test_loss_is_weighted_sum_of_cross_entropies(batch):
    logits, labels = batch
    loss, aux = reweighted_loss(logits, labels, instance=Alpha(0.1), temperature=0.1)
    close(loss, jnp.sum(aux["weights"] * ce(logits, labels)))
    close(aux["losses"], ce(logits, labels))
    assert aux["class_weights"] is None


def test_default_strength_is_the_adaptive_radius(batch):
    """No strength given for KL: ``delta="auto"`` (this batch's estimate without a carried state), as the
    torch loss; the previous fixed default stays available by name."""
    logits, labels = batch
    default, aux = jax.jit(lambda z: reweighted_loss(z, labels))(logits)
    explicit, _ = jax.jit(lambda z: reweighted_loss(z, labels, instance=KL(), delta="auto"))(logits)
    close(default, explicit)
    assert "noise_rate" in aux
    _, fixed_aux = reweighted_loss(logits, labels, delta=DEFAULT_DELTA)
    assert "noise_rate" not in fixed_aux
    assert not np.allclose(np.asarray(aux["weights"]), np.asarray(fixed_aux["weights"]))


def test_default_delta_matches_the_torch_adapter():
    torch_adapter = pytest.importorskip("divweights_torch")
    if not hasattr(torch_adapter, "DEFAULT_DELTA"):
        pytest.skip("divweights_torch.DEFAULT_DELTA is not available")
    assert DEFAULT_DELTA == torch_adapter.DEFAULT_DELTA


def test_default_strength_only_for_kl(batch):
    with pytest.raises(ValueError, match="KL radius"):
        reweighted_loss(*batch, instance=Alpha(0.1))
    with pytest.raises(ValueError, match="instance=None"):
        reweighted_loss(*batch, instance=None, temperature=1.0)


def test_instance_none_gives_mean_cross_entropy(batch):
    logits, labels = batch
    loss, aux = reweighted_loss(logits, labels, instance=None)
    close(loss, jnp.mean(ce(logits, labels)))
    close(aux["weights"], jnp.full(N, 1 / N))


def test_gradient_holds_weights_constant(batch):
    logits, labels = batch
    _, aux = reweighted_loss(logits, labels, temperature=0.5)
    w = aux["weights"]
    g = jax.grad(lambda z: reweighted_loss(z, labels, temperature=0.5)[0])(logits)
    g_fixed = jax.grad(lambda z: jnp.sum(w * ce(z, labels)))(logits)
    close(g, g_fixed)


def test_gradient_holds_class_weights_constant(batch):
    logits, labels = batch
    kw = {"temperature": 0.5, "classes": TotalVariation(), "gamma": 0.3}
    _, aux = reweighted_loss(logits, labels, **kw)
    w, v = aux["weights"], aux["class_weights"]
    g = jax.grad(lambda z: reweighted_loss(z, labels, **kw)[0])(logits)
    g_fixed = jax.grad(lambda z: jnp.sum(w * jnp.sum(v * -jax.nn.log_softmax(z), -1)))(logits)
    close(g, g_fixed)


def test_tv_class_reweighting_is_hard_bootstrapping(batch):
    logits, labels = batch
    g = 0.2
    loss, aux = reweighted_loss(logits, labels, temperature=0.5, classes=TotalVariation(), gamma=g)
    L = -jax.nn.log_softmax(logits)
    expected = (1 - g) * ce(logits, labels) + g * jnp.min(L, axis=-1)
    close(aux["losses"], expected)
    close(aux["weights"], instance_weights(expected, KL(), temperature=0.5))
    close(loss, jnp.sum(aux["weights"] * expected))


def test_class_weights_equal_core(batch):
    logits, labels = batch
    _, aux = reweighted_loss(logits, labels, classes=ReverseKL(), gamma=0.1)
    close(aux["class_weights"], class_weights(-jax.nn.log_softmax(logits), labels, ReverseKL(), gamma=0.1))


def test_probability_targets_match_integer_targets(batch):
    logits, labels = batch
    onehot = jax.nn.one_hot(labels, K)
    a, aux_a = reweighted_loss(logits, labels, temperature=0.7)
    b, aux_b = reweighted_loss(logits, onehot, temperature=0.7)
    close(a, b)
    close(aux_a["weights"], aux_b["weights"])


def test_label_smoothing(batch):
    logits, labels = batch
    s = 0.1
    loss, _ = reweighted_loss(logits, labels, instance=None, label_smoothing=s)
    y = (1 - s) * jax.nn.one_hot(labels, K) + s / K
    close(loss, jnp.mean(jnp.sum(-y * jax.nn.log_softmax(logits), -1)))


def test_half_precision_logits_are_computed_in_float32(batch):
    logits, labels = batch
    loss, aux = reweighted_loss(logits.astype(jnp.bfloat16), labels, temperature=0.5)
    assert loss.dtype == jnp.float32 and aux["weights"].dtype == jnp.float32


# ------------------------------------------------------------ jit, vmap, grad


def test_jit_matches_eager(batch):
    logits, labels = batch
    kw = {"temperature": 0.5, "classes": TotalVariation(), "gamma": 0.2}
    eager, _ = reweighted_loss(logits, labels, **kw)
    jitted, _ = jax.jit(lambda z, y: reweighted_loss(z, y, **kw))(logits, labels)
    close(eager, jitted)


def test_vmap_over_batch_of_batches(rng):
    B = 3
    logits = jnp.asarray(rng.normal(size=(B, N, K)).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, K, size=(B, N)).astype(np.int32))
    f = jax.jit(lambda z, y: reweighted_loss(z, y, delta=0.3, classes=TotalVariation(), gamma=0.1))
    losses, aux = jax.jit(jax.vmap(f))(logits, labels)
    assert losses.shape == (B,) and aux["weights"].shape == (B, N)
    for b in range(B):
        loss_b, aux_b = f(logits[b], labels[b])
        close(losses[b], loss_b)
        close(aux["weights"][b], aux_b["weights"])


def test_traced_hyperparameters_compile_once(batch):
    logits, labels = batch
    traces = []

    @jax.jit
    def step(z, temperature, gamma):
        traces.append(1)  # runs only while tracing
        return jax.grad(
            lambda z: reweighted_loss(z, labels, temperature=temperature, classes=TotalVariation(), gamma=gamma)[0]
        )(z)

    g1 = step(logits, jnp.float32(5.0), jnp.float32(0.1))
    g2 = step(logits, jnp.float32(0.5), jnp.float32(0.2))
    assert len(traces) == 1
    assert not np.allclose(np.asarray(g1), np.asarray(g2))
    kw = {"temperature": 0.5, "classes": TotalVariation(), "gamma": 0.2}
    close(g2, jax.grad(lambda z: reweighted_loss(z, labels, **kw)[0])(logits))


def test_traced_label_smoothing_under_jit(batch):
    logits, labels = batch
    f = jax.jit(lambda z, s: reweighted_loss(z, labels, instance=None, label_smoothing=s)[0])
    close(f(logits, jnp.float32(0.0)), jnp.mean(ce(logits, labels)))


@pytest.mark.parametrize(
    "kw",
    [{}, {"classes": TotalVariation(), "gamma": 0.2}, {"classes": ReverseKL(), "gamma": "auto"}],
    ids=["default", "tv", "rkl-auto"],
)
def test_a_class_masked_with_minus_inf_changes_nothing(batch, kw):
    """Logits of -inf for a class ruled out for the whole batch: loss, weights and gradients equal
    those without that class, under jit (the default's noise-rate estimate gave NaN: 0 * inf)."""
    logits, labels = batch
    pad = jnp.full((logits.shape[0], 1), -jnp.inf, dtype=logits.dtype)
    f = jax.jit(jax.value_and_grad(lambda z, extra: reweighted_loss(jnp.concatenate([z, extra], 1), labels, **kw)[0]))
    g = jax.jit(jax.value_and_grad(lambda z: reweighted_loss(z, labels, **kw)[0]))
    (got, g_got), (want, g_want) = f(logits, pad), g(logits)
    close(got, want)
    close(g_got, g_want)
    close(
        reweighted_loss(jnp.concatenate([logits, pad], 1), labels, **kw)[1]["weights"],
        reweighted_loss(logits, labels, **kw)[1]["weights"],
    )


@pytest.mark.parametrize("kw", [{}, {"classes": ReverseKL(), "gamma": "auto"}], ids=["delta-auto", "gamma-auto"])
def test_non_finite_logit_gives_nan_not_an_error_with_the_batch_estimate(batch, kw):
    """Eagerly, a NaN or infinite logit made the batch's own estimate NaN and the core refused the radius
    ('delta must not be NaN', a radius the caller never gave); the loss is NaN, as under jit."""
    logits, labels = batch
    for bad in (jnp.nan, jnp.inf):
        broken = logits.at[3, 1].set(bad)
        assert np.isnan(float(reweighted_loss(broken, labels, **kw)[0]))
        assert np.isnan(float(jax.jit(lambda z: reweighted_loss(z, labels, **kw)[0])(broken)))


def test_a_non_finite_batch_does_not_poison_the_carried_rate(batch):
    """With the rate carried from step to step, a batch with an infinite logit gives a NaN loss and hands
    back the rate it was given; the next step equals the one after a skipped bad step."""
    logits, labels = batch
    step = jax.jit(lambda z, s: reweighted_loss(z, labels, noise_rate=s))
    _, aux = step(logits, 0.0)
    state = aux["noise_rate"]
    loss, bad_aux = step(logits.at[3, 1].set(jnp.inf), state)
    assert np.isnan(float(loss))
    assert float(bad_aux["noise_rate"]) == float(state)
    close(step(logits, bad_aux["noise_rate"])[0], step(logits, state)[0])


def test_empty_batch_names_the_problem():
    with pytest.raises(ValueError, match="empty batch"):
        reweighted_loss(jnp.zeros((0, 3)), jnp.zeros((0,), jnp.int32))


def test_nan_logit_makes_a_class_weighted_loss_nan(batch):
    """A NaN class weight stays in the class-weighted sum (a test p > 0 dropped it: a finite loss)."""
    logits, labels = batch
    bad = logits.at[3, 2].set(jnp.nan)
    loss, _ = reweighted_loss(bad, labels, delta=0.5, classes=TotalVariation(), gamma=0.2)
    assert np.isnan(float(loss))


# ---------------------------------------------------------------- masking


def test_mask_excludes_rows(batch):
    logits, labels = batch
    mask = jnp.arange(N) < 5
    garbage = logits.at[5:].set(jnp.nan)  # padding rows may hold anything
    loss, aux = reweighted_loss(garbage, labels, temperature=0.5, mask=mask)
    ref, ref_aux = reweighted_loss(logits[:5], labels[:5], temperature=0.5)
    close(loss, ref)
    close(aux["weights"][:5], ref_aux["weights"])
    assert np.all(np.asarray(aux["weights"][5:]) == 0)
    g = jax.grad(lambda z: reweighted_loss(z, labels, temperature=0.5, mask=mask)[0])(garbage)
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(g[5:]) == 0)


def test_all_masked_gives_zero_loss_and_finite_gradients(batch):
    logits, labels = batch
    mask = jnp.zeros(N, dtype=bool)
    f = lambda z: reweighted_loss(z, labels, delta=0.5, classes=TotalVariation(), gamma=0.2, mask=mask)[0]
    assert float(f(logits)) == 0.0
    g = jax.jit(jax.grad(f))(logits)
    assert np.all(np.asarray(g) == 0)


# ----------------------------------------------------------- axis_name (vmap)


def test_axis_name_gathers_the_global_batch(rng):
    D, n = 2, 4
    logits = jnp.asarray(rng.normal(scale=2.0, size=(D * n, K)).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, K, size=D * n).astype(np.int32))
    kw = {"temperature": 0.5, "classes": TotalVariation(), "gamma": 0.2}
    single, single_aux = reweighted_loss(logits, labels, **kw)
    per_device = jax.vmap(lambda z, y: reweighted_loss(z, y, axis_name="d", **kw), axis_name="d")
    local, aux = per_device(logits.reshape(D, n, K), labels.reshape(D, n))
    close(aux["weights"].reshape(-1), single_aux["weights"])
    close(jnp.sum(local), single)


# ------------------------------------------------------------------- errors


def test_more_than_one_strength_is_an_error(batch):
    with pytest.raises(ValueError, match="at most one"):
        reweighted_loss(*batch, lam=1.0, temperature=1.0)


def test_divergence_class_instead_of_instance_is_an_error(batch):
    with pytest.raises(TypeError, match="instance"):
        reweighted_loss(*batch, instance=KL)


def test_bad_shapes_are_errors(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match="logits"):
        reweighted_loss(logits[None], labels)
    with pytest.raises(ValueError, match="targets"):
        reweighted_loss(logits, labels[:3])
    with pytest.raises(ValueError, match="mask"):
        reweighted_loss(logits, labels, mask=jnp.ones(3, dtype=bool))


def test_out_of_range_labels_are_an_error(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        reweighted_loss(logits, labels.at[0].set(K))


def test_bad_label_smoothing_is_an_error(batch):
    with pytest.raises(ValueError, match="label_smoothing"):
        reweighted_loss(*batch, label_smoothing=1.5)


# ----------------------------------------------------------------- schedule


def test_anneal_factor_values():
    got = [anneal_factor(t, burnin_steps=2, anneal_steps=4) for t in range(8)]
    assert [bool(a) for _, a in got] == [False, False] + [True] * 6
    close([float(f) for f, _ in got][2:], [10.0, 7.75, 5.5, 3.25, 1.0, 1.0])


def test_anneal_factor_without_annealing_jumps_to_one():
    f, on = anneal_factor(5, burnin_steps=5, anneal_steps=0)
    assert float(f) == 1.0 and bool(on)


def test_anneal_factor_matches_torch_schedule():
    torch_adapter = pytest.importorskip("divweights_torch")
    schedule_cls = getattr(torch_adapter, "AnnealSchedule", None)
    if schedule_cls is None:
        pytest.skip("divweights_torch.AnnealSchedule is not available")
    s = schedule_cls(burnin_steps=3, anneal_steps=7, start_factor=10.0)
    for t in range(12):
        f, on = anneal_factor(t, burnin_steps=3, anneal_steps=7, start_factor=10.0)
        expected = s.factor(t)
        assert bool(on) == (expected is not None)
        if expected is not None:
            assert math.isclose(float(f), expected, rel_tol=1e-6)


def test_anneal_factor_is_jit_safe_with_traced_step():
    traces = []

    @jax.jit
    def f(step):
        traces.append(1)
        return anneal_factor(step, burnin_steps=10, anneal_steps=10)

    assert not bool(f(jnp.int32(3))[1])
    close(f(jnp.int32(15))[0], 5.5)
    assert len(traces) == 1


def test_scaled_strength_scales_like_the_torch_adapter():
    close(scaled_strength(4.0, temperature=0.5)["temperature"], 2.0)
    close(scaled_strength(4.0, lam=0.5)["lam"], 2.0)
    close(scaled_strength(4.0, delta=0.5)["delta"], 0.125)
    with pytest.raises(ValueError, match="exactly one"):
        scaled_strength(1.0, lam=1.0, delta=1.0)


@pytest.mark.parametrize(
    "instance, strength",
    [(KL(), "temperature"), (Alpha(0.1), "temperature"), (KL(), "lam"), (KL(), "delta")],
)
def test_burn_in_gives_uniform_weights_and_no_class_reweighting(batch, instance, strength):
    logits, labels = batch
    factor, active = anneal_factor(0, burnin_steps=10, anneal_steps=10)
    kw = scaled_strength(factor, active, **{strength: 0.5}, gamma=0.3)
    mask = jnp.arange(N) < N - 2  # padded rows (+inf loss for the weights) must not break uniformity
    loss, aux = jax.jit(
        lambda z: reweighted_loss(z, labels, instance=instance, classes=TotalVariation(), mask=mask, **kw)
    )(logits)
    close(aux["weights"], jnp.where(mask, 1 / (N - 2), 0.0))
    close(loss, jnp.mean(ce(logits, labels)[: N - 2]))


# -------------------------------------------------------------------- mixup


def test_sampled_partners_follow_the_weights():
    w = jnp.array([0.5, 0.3, 0.15, 0.05, 0.0])
    n, draws, power = w.shape[0], 4000, 2.0
    x = jnp.arange(n, dtype=jnp.float32)[:, None]
    keys = jax.random.split(jax.random.key(7), draws)
    mix = jax.jit(
        jax.vmap(lambda k: weighted_mixup(k, x, jnp.arange(n), w, mode="sample", num_classes=n, power=power)[2])
    )
    partners = np.asarray(mix(keys)["partners"]).ravel()
    freq = np.bincount(partners, minlength=n) / partners.size
    p = np.asarray(partner_probabilities(w, power=power))
    sd = np.sqrt(p * (1 - p) / partners.size)
    assert np.all(np.abs(freq - p) <= 5 * sd + 1e-12)
    assert freq[-1] == 0.0


def test_weight_ratio_and_same_ratio_for_labels():
    x = jnp.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    y = jnp.array([0, 1, 2, 0])
    w = jnp.array([0.6, 0.4, 0.0, 0.0])
    xm, ym, info = weighted_mixup(
        jax.random.key(1), x, y, w, mode="weight", num_classes=3, weight_ratio="deterministic"
    )
    j, r = info["partners"], info["ratios"]
    assert sorted(np.asarray(j).tolist()) == [0, 1, 2, 3]  # a permutation
    close(r, mixup_ratio(w, w[j]))
    both_zero = np.asarray((w == 0) & (w[j] == 0))
    assert np.all(np.asarray(r)[both_zero] == 0.5)
    close(xm, r[:, None] * x + (1 - r[:, None]) * x[j])
    close(ym, r[:, None] * jax.nn.one_hot(y, 3) + (1 - r[:, None]) * jax.nn.one_hot(y[j], 3))


@pytest.mark.parametrize("mode", ["plain", "sample", "label_smoothing"])
def test_beta_ratio_modes_share_the_ratio(rng, mode):
    x = jnp.asarray(rng.normal(size=(16, 3, 2)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 4, size=16).astype(np.int32))
    w = jnp.asarray(rng.random(16).astype(np.float32))
    preds = jnp.asarray(rng.normal(size=(16, 4)).astype(np.float32))
    xm, ym, info = weighted_mixup(jax.random.key(3), x, y, w, mode=mode, num_classes=4, alpha=0.4, predictions=preds)
    j, r = info["partners"], info["ratios"]
    assert np.all((np.asarray(r) >= 0) & (np.asarray(r) <= 1))
    close(xm, r[:, None, None] * x + (1 - r[:, None, None]) * x[j])
    close(ym.sum(-1), jnp.ones(16))
    if mode != "sample":
        assert sorted(np.asarray(j).tolist()) == list(range(16))


def test_beta_ratio_has_the_beta_mean_and_variance():
    a = 0.4
    x = jnp.zeros((4000, 1))
    _, _, info = weighted_mixup(
        jax.random.key(0), x, jnp.zeros(4000, jnp.int32), jnp.ones(4000), mode="plain", num_classes=2, alpha=a
    )
    r = np.asarray(info["ratios"])
    var = 1 / (4 * (2 * a + 1))
    assert abs(r.mean() - 0.5) < 5 * math.sqrt(var / r.size)
    assert abs(r.var() - var) < 0.1 * var


def test_label_smoothing_mode_pulls_labels_towards_predictions():
    w = jnp.array([0.5, 0.25, 0.0, 0.25])
    y = jnp.array([0, 1, 2, 0])
    preds = jax.nn.one_hot(jnp.array([1, 1, 0, 2]), 3) * 5.0
    x = jnp.eye(4)  # one-hot inputs reveal the mixing of each row
    xm, ym, info = weighted_mixup(jax.random.key(2), x, y, w, mode="label_smoothing", predictions=preds, num_classes=3)
    s = np.array([1.0, 0.5, 0.0, 0.5])
    close(info["smoothing"], s)
    smoothed = s[:, None] * np.eye(3)[[0, 1, 2, 0]] + (1 - s[:, None]) * np.eye(3)[[1, 1, 0, 2]]
    close(info["smoothed_targets"], smoothed)
    j, r = np.asarray(info["partners"]), np.asarray(info["ratios"])
    close(ym, r[:, None] * smoothed + (1 - r[:, None]) * smoothed[j])
    close(xm, r[:, None] * np.eye(4) + (1 - r[:, None]) * np.eye(4)[j])


def test_mixup_modes_and_smoothing_rule_come_from_the_core():
    import divweights.mixup as core

    assert MIXUP_MODES is core.MIXUP_MODES
    w = jnp.array([0.1, 0.6, 0.0, 0.3])
    y, preds = jnp.array([0, 1, 2, 0]), jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    _, _, info = weighted_mixup(
        jax.random.key(0), jnp.eye(4), y, w, mode="label_smoothing", num_classes=3, predictions=preds
    )
    close(info["smoothing"], core.smoothing_factors(w))
    close(info["smoothed_targets"], core.smooth_targets(jax.nn.one_hot(y, 3), w, preds))


@pytest.mark.parametrize("mode", MIXUP_MODES)
def test_info_keys_are_those_of_the_torch_adapter(mode):
    x, y, w = jnp.eye(4), jnp.array([0, 1, 2, 0]), jnp.array([0.4, 0.3, 0.2, 0.1])
    _, _, info = weighted_mixup(jax.random.key(0), x, y, w, mode=mode, num_classes=3, predictions=jnp.zeros((4, 3)))
    smoothing = {"smoothing", "smoothed_targets"} if mode == "label_smoothing" else set()
    assert set(info) == {"partners", "ratios", "ratio"} | smoothing
    assert info["ratio"] is info["ratios"]  # deprecated alias, the same array
    torch = pytest.importorskip("torch")
    torch_mixup = pytest.importorskip("divweights_torch").weighted_mixup
    _, _, t_info = torch_mixup(
        torch.eye(4),
        torch.tensor([0, 1, 2, 0]),
        torch.tensor([0.4, 0.3, 0.2, 0.1]),
        mode=mode,
        num_classes=3,
        predictions=torch.zeros((4, 3)),
    )
    assert set(t_info) <= set(info)  # every torch key exists here with the same meaning
    assert {"partners", "ratios"} <= set(t_info)


def test_all_zero_weights_do_not_divide_by_zero():
    x = jnp.ones((5, 2))
    for mode in MIXUP_MODES:
        xm, ym, _info = weighted_mixup(
            jax.random.key(0),
            x,
            jnp.arange(5) % 2,
            jnp.zeros(5),
            mode=mode,
            num_classes=2,
            predictions=jnp.zeros((5, 2)),
        )
        assert np.all(np.isfinite(np.asarray(xm))) and np.all(np.isfinite(np.asarray(ym)))


def test_mixup_under_jit_and_probability_targets():
    x = jnp.arange(12.0).reshape(6, 2)
    y = jax.nn.one_hot(jnp.arange(6) % 3, 3)
    w = jnp.linspace(0.0, 1.0, 6)
    f = jax.jit(lambda k, x, y, w: weighted_mixup(k, x, y, w, mode="sample_weight"))
    xm, ym, info = f(jax.random.key(5), x, y, w)
    eager = weighted_mixup(jax.random.key(5), x, y, w, mode="sample_weight")
    close(xm, eager[0])
    close(ym, eager[1])
    assert np.all(np.asarray(info["partners"]) != 0)  # zero weight is never sampled


def test_mixup_errors():
    x, w = jnp.ones((3, 2)), jnp.ones(3)
    with pytest.raises(ValueError, match="mode"):
        weighted_mixup(jax.random.key(0), x, jnp.arange(3), w, mode="dynamic", num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        weighted_mixup(jax.random.key(0), x, jnp.arange(3), w, mode="plain")
    with pytest.raises(ValueError, match="predictions"):
        weighted_mixup(jax.random.key(0), x, jnp.arange(3), w, mode="label_smoothing", num_classes=3)
    with pytest.raises(TypeError, match="floating"):
        weighted_mixup(jax.random.key(0), jnp.ones((3, 2), jnp.uint8), jnp.arange(3), w, mode="plain", num_classes=3)


# --------------------------------------------------------- torch vs. jax


def test_torch_and_jax_adapters_agree(rng):
    torch_adapter = pytest.importorskip("divweights_torch")
    torch = pytest.importorskip("torch")
    if not hasattr(torch_adapter, "ReweightedLoss"):
        pytest.skip("divweights_torch.ReweightedLoss is not available yet")
    logits = rng.normal(scale=2.0, size=(16, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=16)
    criterion = torch_adapter.ReweightedLoss(
        instance=KL(), temperature=0.5, classes=TotalVariation(), gamma=0.2, reduction="sum"
    )
    t_loss = criterion(torch.asarray(logits), torch.asarray(labels))
    t_weights = criterion.last_weights.detach().cpu().numpy()
    j_loss, aux = reweighted_loss(
        jnp.asarray(logits),
        jnp.asarray(labels.astype(np.int32)),
        instance=KL(),
        temperature=0.5,
        classes=TotalVariation(),
        gamma=0.2,
    )
    close(float(t_loss), float(j_loss), tol=1e-5)
    close(t_weights, aux["weights"], tol=1e-5)


def test_jax_default_without_state_is_the_torch_loss_with_zero_noise_momentum(rng):
    """The benchmark's ``momentum:0`` row stands for the JAX default: ``ReweightedLoss(noise_momentum=0)``
    and ``reweighted_loss(logits, labels)`` give the same rate, weights and loss on one batch."""
    torch_adapter = pytest.importorskip("divweights_torch")
    torch = pytest.importorskip("torch")
    logits = rng.normal(scale=3.0, size=(64, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=64)
    criterion = torch_adapter.ReweightedLoss(noise_momentum=0.0, reduction="sum")
    t_loss = criterion(torch.asarray(logits), torch.asarray(labels))
    j_loss, aux = reweighted_loss(jnp.asarray(logits), jnp.asarray(labels.astype(np.int32)))
    assert float(aux["noise_rate"]) > 0.2  # the radius is far from zero: the weights move
    close(float(criterion.noise_rate), float(aux["noise_rate"]), tol=1e-5)
    close(criterion.last_weights.detach().numpy(), aux["weights"], tol=1e-5)
    close(float(t_loss), float(j_loss), tol=1e-5)


def test_auto_radius_tracks_the_noise_rate_and_returns_the_new_state():
    import divweights as dw

    z = jax.random.normal(jax.random.key(0), (64, 5))
    y = jnp.arange(64) % 5
    step = jax.jit(lambda z, y, r: reweighted_loss(z, y, delta="auto", noise_rate=r))
    state, expected = 0.0, 0.0
    for _ in range(3):
        _, aux = step(z, y, state)
        state = aux["noise_rate"]
        expected = dw.track_noise_rate(expected, -jax.nn.log_softmax(z), y)
    np.testing.assert_allclose(float(state), float(expected), rtol=1e-6)
    w = np.asarray(aux["weights"], np.float64)
    radius = float(dw.KL()(w, np.full(64, 1 / 64)))
    np.testing.assert_allclose(radius, -np.log1p(-float(state)), rtol=1e-4)


def test_auto_radius_of_chi_squared_and_sharpened_noise_score():
    import divweights as dw

    z = jax.random.normal(jax.random.key(1), (32, 4)) * 2
    y = jnp.arange(32) % 4
    _, aux = reweighted_loss(
        z, y, instance=dw.ChiSquared(), delta="auto", noise_rate=0.0, noise_momentum=0.0, noise_sharpness=2.0
    )
    rate = float(aux["noise_rate"])
    np.testing.assert_allclose(rate, float(dw.noise_rate(-jax.nn.log_softmax(z), y, sharpness=2.0)), rtol=1e-6)
    w = np.asarray(aux["weights"], np.float64)
    np.testing.assert_allclose(float(dw.ChiSquared()(w, np.full(32, 1 / 32))), rate / (1 - rate), rtol=1e-3)


def test_auto_radius_without_state_uses_the_batch_estimate_alone():
    """``noise_rate=None``: the radius of this batch's own estimate (no tracked state), under jit."""
    import divweights as dw

    z = jax.random.normal(jax.random.key(2), (64, 5)) * 3
    y = jnp.arange(64) % 5
    _, aux = jax.jit(lambda z, y: reweighted_loss(z, y, delta="auto"))(z, y)
    rate = float(dw.noise_rate(-jax.nn.log_softmax(z), y))
    assert 0.3 < rate < 0.9  # a batch the estimate reads as noisy: the weights move
    np.testing.assert_allclose(float(aux["noise_rate"]), rate, rtol=1e-6)
    w = np.asarray(aux["weights"], np.float64)
    np.testing.assert_allclose(float(dw.KL()(w, np.full(64, 1 / 64))), -np.log1p(-rate), rtol=1e-4)


def test_auto_radius_without_state_equals_zero_momentum_tracking():
    z = jax.random.normal(jax.random.key(3), (32, 4)) * 2
    y = jnp.arange(32) % 4
    alone, a = reweighted_loss(z, y, delta="auto")
    tracked, b = reweighted_loss(z, y, delta="auto", noise_rate=0.7, noise_momentum=0.0)
    close(alone, tracked)
    close(a["weights"], b["weights"])


def test_auto_class_radius_keeps_one_minus_rate_on_the_label():
    import divweights as dw

    z = jnp.asarray([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    _, aux = reweighted_loss(
        z, jnp.asarray([1, 0]), instance=None, classes=dw.ReverseKL(), gamma="auto", noise_rate=0.5
    )
    rate = float(aux["noise_rate"])
    v = np.asarray(aux["class_weights"])
    np.testing.assert_allclose(v[[0, 1], [1, 0]], 1 - rate, rtol=1e-5)


@pytest.mark.parametrize("alpha", [1.0, 0.2])
def test_weighted_ratio_at_equal_weights_is_plain_mixups_beta(alpha):
    """Equal weights: Beta(alpha, alpha) ratios, as in the torch adapter (not a constant 1/2)."""
    n = 4000
    _, _, info = weighted_mixup(
        jax.random.key(0),
        jnp.zeros((n, 1)),
        jnp.zeros(n, jnp.int32),
        jnp.ones(n),
        mode="sample_weight",
        num_classes=2,
        alpha=alpha,
    )
    r = np.asarray(info["ratios"], np.float64)
    var = 1 / (4 * (2 * alpha + 1))
    assert abs(r.mean() - 0.5) < 0.03
    assert abs(r.var() - var) < 0.1 * var


def test_weighted_ratio_has_mean_rho_and_is_pinned_at_zero_weights():
    n, alpha = 4000, 1.0
    w = jnp.where(jnp.arange(n) % 4 == 0, 0.0, jnp.where(jnp.arange(n) % 2 == 0, 3.0, 1.0))
    _, _, info = weighted_mixup(
        jax.random.key(7), jnp.zeros((n, 1)), jnp.zeros(n, jnp.int32), w, mode="weight", num_classes=2, alpha=alpha
    )
    r, j = np.asarray(info["ratios"], np.float64), np.asarray(info["partners"])
    wn = np.asarray(w)
    pick = (wn == 3.0) & (wn[j] == 1.0)
    assert abs(r[pick].mean() - 0.75) < 0.03
    assert abs(r[pick].var() - 0.75 * 0.25 / (2 * alpha + 1)) < 0.15 * 0.75 * 0.25 / 3
    assert np.all(r[(wn > 0) & (wn[j] == 0)] == 1.0) and np.all(r[(wn == 0) & (wn[j] > 0)] == 0.0)
    assert np.all(np.isfinite(r))


@pytest.mark.slow  # compiling jax.random.beta takes ~30 s on a loaded 2-core machine
def test_weighted_ratio_under_jit_matches_eager():
    w = jnp.array([0.4, 0.3, 0.2, 0.1, 0.0])
    x, y = jnp.arange(10.0).reshape(5, 2), jnp.array([0, 1, 0, 1, 0])

    def f(key, w):
        return weighted_mixup(key, x, y, w, mode="sample_weight", num_classes=2, alpha=0.5)[2]["ratios"]

    close(jax.jit(f)(jax.random.key(3), w), f(jax.random.key(3), w))
