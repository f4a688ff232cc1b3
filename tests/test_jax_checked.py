"""Validation of traced values in the JAX adapter (issue 14, item 7).

Under ``jax.jit`` the values of the inputs are unknown while tracing, so the
eager checks are skipped.  Two things replace them:

* out-of-range integer labels give a NaN loss instead of a silently wrong
  one (before, a label ``5`` with 3 classes had loss 0 and the largest
  weight);
* ``checked=True`` turns every bad value into a ``checkify`` error.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from divweights_jax import reweighted_loss, weighted_mixup
from jax.experimental import checkify

from divweights import Alpha, ReverseKL, TotalVariation

LOGITS = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -3.0], [1.0, 0.0, 0.5]])
LABELS = jnp.array([0, 1, 2, 0])


def checked_loss(**kw):
    """``checkify(jit(...))`` of the checked loss, with the strength passed traced."""

    def f(z, y, strength):
        return reweighted_loss(z, y, checked=True, **kw, **strength)[0]

    return checkify.checkify(jax.jit(f))


def error_of(fn, *args) -> str | None:
    err, _ = fn(*args)
    return err.get()


# ------------------------------------------------------------ without checks


@pytest.mark.parametrize(
    "kw",
    [{}, {"classes": TotalVariation(), "gamma": 0.1}, {"label_smoothing": 0.1}],
    ids=["plain", "classes", "smoothing"],
)
@pytest.mark.parametrize("bad", [5, -1])
def test_out_of_range_label_under_jit_gives_nan_not_a_weight(kw, bad):
    labels = LABELS.at[2].set(bad)
    loss, aux = jax.jit(lambda z, y: reweighted_loss(z, y, temperature=1.0, **kw))(LOGITS, labels)
    assert np.isnan(float(loss))
    assert np.all(np.isnan(np.asarray(aux["weights"])))


def test_out_of_range_label_of_a_masked_row_is_ignored():
    labels = LABELS.at[3].set(7)  # padding may carry any label
    mask = jnp.array([True, True, True, False])
    f = jax.jit(lambda z, y: reweighted_loss(z, y, temperature=1.0, mask=mask))
    loss, aux = f(LOGITS, labels)
    ref, ref_aux = reweighted_loss(LOGITS[:3], LABELS[:3], temperature=1.0)
    np.testing.assert_allclose(float(loss), float(ref), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(aux["weights"][:3]), np.asarray(ref_aux["weights"]), rtol=1e-6)


# ------------------------------------------------------------- checked mode


def test_checked_valid_input_has_no_error_and_the_same_value():
    fn = checked_loss(classes=ReverseKL(), gamma=0.1)
    err, value = fn(LOGITS, LABELS, {"lam": jnp.float32(0.5)})
    assert err.get() is None
    expected = reweighted_loss(LOGITS, LABELS, lam=0.5, classes=ReverseKL(), gamma=0.1)[0]
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-6)


@pytest.mark.parametrize("bad", [3, 5, -1])
def test_checked_label_out_of_range_is_an_error(bad):
    msg = error_of(checked_loss(), LOGITS, LABELS.at[1].set(bad), {"lam": 1.0})
    assert msg is not None and "integer targets must lie in [0, 3)" in msg
    assert str(bad) in msg


def test_checked_ignores_labels_of_masked_rows():
    fn = checked_loss(mask=jnp.array([True, True, True, False]))
    assert error_of(fn, LOGITS, LABELS.at[3].set(9), {"lam": 1.0}) is None


@pytest.mark.parametrize(
    "strength, name",
    [
        ({"lam": -1.0}, "lam must be > 0"),
        ({"lam": 0.0}, "lam must be > 0"),
        ({"temperature": -0.5}, "temperature must be > 0"),
        ({"delta": -0.1}, "delta must be >= 0"),
        ({"lam": float("nan")}, "lam must be > 0"),
    ],
)
def test_checked_bad_traced_strength_is_an_error(strength, name):
    traced = {k: jnp.float32(v) for k, v in strength.items()}
    msg = error_of(checked_loss(instance=Alpha(0.5)), LOGITS, LABELS, traced)
    assert msg is not None and name in msg


@pytest.mark.parametrize("value", [jnp.nan, jnp.inf, -jnp.inf])
def test_checked_non_finite_loss_is_an_error(value):
    logits = LOGITS.at[1, 1].set(value)
    msg = error_of(checked_loss(), logits, LABELS, {"temperature": 1.0})
    assert msg is not None and "loss of example 1 is not finite" in msg


def test_checked_ignores_non_finite_masked_rows():
    fn = checked_loss(mask=jnp.array([True, False, True, True]))
    assert error_of(fn, LOGITS.at[1].set(jnp.nan), LABELS, {"temperature": 1.0}) is None


def test_checked_negative_gamma_and_bad_label_smoothing_are_errors():
    def f(z, gamma, s):
        return reweighted_loss(z, LABELS, classes=TotalVariation(), gamma=gamma, label_smoothing=s, checked=True)[0]

    fn = checkify.checkify(jax.jit(f))
    assert "gamma must be >= 0" in fn(LOGITS, jnp.float32(-0.1), jnp.float32(0.0))[0].get()
    assert "label_smoothing must lie in [0, 1]" in fn(LOGITS, jnp.float32(0.1), jnp.float32(1.5))[0].get()
    assert fn(LOGITS, jnp.float32(0.1), jnp.float32(0.1))[0].get() is None


def test_checked_probability_targets():
    def f(z, y):
        return reweighted_loss(z, y, lam=1.0, checked=True)[0]

    fn = checkify.checkify(jax.jit(f))
    y = jax.nn.one_hot(LABELS, 3)
    assert fn(LOGITS, y)[0].get() is None
    assert "sum to 1" in fn(LOGITS, y.at[0, 1].set(0.5))[0].get()
    assert "finite and nonnegative" in fn(LOGITS, y.at[0, 0].set(-1.0).at[0, 1].set(2.0))[0].get()


def test_checked_works_with_gradients():
    def f(z, y):
        return reweighted_loss(z, y, temperature=1.0, classes=TotalVariation(), gamma=0.2, checked=True)[0]

    fn = checkify.checkify(jax.jit(jax.value_and_grad(f)))
    err, (_value, grad) = fn(LOGITS, LABELS)
    assert err.get() is None
    np.testing.assert_allclose(np.asarray(grad), np.asarray(jax.grad(f)(LOGITS, LABELS)), rtol=1e-6)
    err, _ = fn(LOGITS, LABELS.at[0].set(4))
    assert "integer targets" in err.get()


def test_checked_under_jit_without_checkify_says_what_to_do():
    f = jax.jit(lambda z: reweighted_loss(z, LABELS, lam=1.0, checked=True)[0])
    with pytest.raises(ValueError, match="checkify"):
        f(LOGITS)


def test_checked_eagerly_raises_at_once():
    with pytest.raises(Exception, match="lam must be > 0"):
        reweighted_loss(LOGITS, LABELS, lam=jnp.float32(-1.0), checked=True)


def test_checked_costs_nothing_when_off():
    def count(checked):
        f = jax.jit(lambda z: reweighted_loss(z, LABELS, lam=1.0, checked=checked)[0])
        return len(jax.make_jaxpr(f)(LOGITS).jaxpr.eqns[0].params["jaxpr"].eqns)

    assert count(False) < count(True)
    # no checkify equations on the default path
    jaxpr = jax.make_jaxpr(jax.jit(lambda z: reweighted_loss(z, LABELS, lam=1.0)[0]))(LOGITS)
    assert "check" not in str(jaxpr)


# -------------------------------------------------------------------- mixup


def test_checked_mixup_errors():
    def f(y, w):
        return weighted_mixup(jax.random.key(0), LOGITS, y, w, mode="sample_weight", num_classes=3, checked=True)[1]

    fn = checkify.checkify(jax.jit(f))
    w = jnp.array([0.4, 0.3, 0.2, 0.1])
    assert fn(LABELS, w)[0].get() is None
    assert "integer targets must lie in [0, 3)" in fn(LABELS.at[0].set(3), w)[0].get()
    assert "weights must be finite and nonnegative" in fn(LABELS, w.at[2].set(-0.1))[0].get()
    assert "weights must be finite and nonnegative" in fn(LABELS, w.at[2].set(jnp.nan))[0].get()


def test_mixup_rejects_concrete_out_of_range_labels():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        weighted_mixup(jax.random.key(0), LOGITS, LABELS.at[0].set(3), jnp.ones(4), mode="plain", num_classes=3)
