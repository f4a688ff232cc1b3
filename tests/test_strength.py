"""divweights.Strength: one parse of lam / delta / temperature, scaling by a schedule factor;
divergences are immutable values."""

import copy
import dataclasses
import pickle

import numpy as np
import pytest
from helpers import INSTANCE_CASES, case_id

import divweights as dw
from divweights.defaults import DEFAULT_DELTA
from divweights.strength import KINDS, OFF, Strength

# ------------------------------------------------------------------ parse


def test_default_is_the_kl_radius():
    assert Strength.parse(dw.KL()) == Strength("delta", DEFAULT_DELTA)


@pytest.mark.parametrize("d", [dw.ReverseKL(), dw.Alpha(1.0), dw.TotalVariation(), dw.ChiSquared()], ids=repr)
def test_default_is_refused_for_other_divergences(d):
    with pytest.raises(
        ValueError, match=r"give one of lam=, delta=, temperature= for .*KL radius and only applies to KL\(\)"
    ):
        Strength.parse(d)


def test_required_strength_has_no_default():
    with pytest.raises(ValueError, match="exactly one of lam, delta, temperature must be given; got none"):
        Strength.parse(dw.KL(), required=True)


@pytest.mark.parametrize("required, message", [(False, "give at most one"), (True, "exactly one")])
def test_two_strengths_are_refused(required, message):
    with pytest.raises(ValueError, match=f"{message}.*got lam and temperature"):
        Strength.parse(dw.KL(), lam=1.0, temperature=2.0, required=required)


@pytest.mark.parametrize("case", INSTANCE_CASES, ids=case_id)
def test_every_supported_form_parses_to_its_kind(case):
    divergence, form = case
    s = Strength.parse(divergence, **{form: 0.3})
    assert (s.kind, s.value) == (form, 0.3)
    assert s.as_kwargs() == {form: 0.3}


@pytest.mark.parametrize("d", [dw.TotalVariation(), dw.SquaredL2()], ids=repr)
def test_unsupported_form_names_the_supported_ones(d):
    with pytest.raises(ValueError, match="does not support temperature=.*use one of lam=, delta="):
        Strength.parse(d, temperature=1.0)


def test_no_divergence_means_no_strength():
    assert Strength.parse(None) is None
    with pytest.raises(ValueError, match="delta given without an instance divergence"):
        Strength.parse(None, delta=0.1)


def test_divergence_class_instead_of_instance_is_refused():
    with pytest.raises(TypeError, match=r"pass a divergence instance such as KL\(\)"):
        Strength.parse(dw.KL, lam=1.0)


@pytest.mark.parametrize(
    "kw, error, message",
    [
        ({"lam": 0.0}, ValueError, "lam must be > 0"),
        ({"temperature": -1.0}, ValueError, "temperature must be > 0"),
        ({"delta": -0.1}, ValueError, "delta must be >= 0"),
        ({"lam": float("nan")}, ValueError, "lam must not be NaN"),
        ({"delta": True}, TypeError, "delta must be a real number, not bool"),
        ({"delta": "auto"}, TypeError, "delta must be a real number or a 0-d array; got str"),
        ({"lam": np.array([1.0, 2.0])}, ValueError, "lam must be a scalar"),
    ],
)
def test_invalid_values_are_refused(kw, error, message):
    with pytest.raises(error, match=message):
        Strength.parse(dw.KL(), **kw)


def test_integers_become_floats_and_arrays_are_kept():
    assert Strength.parse(dw.KL(), lam=2) == Strength("lam", 2.0)
    assert isinstance(Strength("lam", 2).value, float)
    a = np.asarray(0.3)
    assert Strength.parse(dw.KL(), delta=a).value is a


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown strength kind 'radius'"):
        Strength("radius", 0.1)


def test_kinds_are_the_keyword_names():
    assert KINDS == ("lam", "delta", "temperature")


def test_traced_values_are_not_checked():
    jax = pytest.importorskip("jax")
    seen = []

    def f(lam):
        seen.append(Strength.parse(dw.KL(), lam=lam).value)
        return lam

    jax.jit(f)(-1.0)  # a negative lam is not visible under tracing
    assert len(seen) == 1 and isinstance(seen[0], jax.core.Tracer)


def test_strength_is_frozen():
    s = Strength("lam", 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.value = 2.0


# ------------------------------------------------------------------ scaled


@pytest.mark.parametrize("kind, expected", [("lam", 0.5 * 4.0), ("temperature", 0.5 * 4.0), ("delta", 0.5 / 4.0)])
def test_scaled_multiplies_temperature_and_lam_and_divides_delta(kind, expected):
    s = Strength(kind, 0.5).scaled(4.0)
    assert s == Strength(kind, expected)


@pytest.mark.parametrize("kind, off", [("lam", OFF), ("temperature", OFF), ("delta", 0.0)])
def test_inactive_schedule_gives_the_uniform_value(kind, off):
    assert Strength(kind, 0.5).scaled(4.0, active=False) == Strength(kind, off)
    w = dw.instance_weights(np.array([0.0, 1.0, 50.0]), dw.KL(), **Strength(kind, 0.5).scaled(4.0, False).as_kwargs())
    np.testing.assert_allclose(w, np.full(3, 1 / 3), rtol=1e-12)


def test_scaled_by_one_is_the_target():
    assert Strength("delta", 0.3).scaled(1.0) == Strength("delta", 0.3)


@pytest.mark.parametrize(
    "factor, error",
    [(0.0, "factor must be > 0"), (-2.0, "factor must be > 0"), (float("nan"), "factor must not be NaN")],
)
def test_invalid_factors_are_refused(factor, error):
    with pytest.raises(ValueError, match=error):
        Strength("lam", 1.0).scaled(factor)


def test_tensor_factor_stays_a_tensor():
    torch = pytest.importorskip("torch")
    f = torch.tensor(4.0)
    s = Strength("delta", 0.5).scaled(f)
    assert isinstance(s.value, torch.Tensor) and s.value.item() == 0.125


def test_tensor_factor_and_flag_are_never_read_on_the_host():
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    reads = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                reads.append(func)
            return func(*args, **(kwargs or {}))

    with Count():
        for kind in KINDS:
            s = Strength(kind, 0.5).scaled(torch.tensor(4.0), torch.tensor(True))
    assert reads == []
    assert s.value.item() == 2.0


def test_array_factor_must_be_a_scalar():
    with pytest.raises(ValueError, match="factor must be a scalar"):
        Strength("lam", 1.0).scaled(np.ones(2))
    with pytest.raises(TypeError, match="factor must be a real number or a 0-d array"):
        Strength("lam", 1.0).scaled("10")


def test_traced_factor_and_flag_compile_once():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    traces = []

    @jax.jit
    def f(factor, active):
        traces.append(1)
        return Strength("temperature", 0.1).scaled(factor, active).value

    np.testing.assert_allclose(f(jnp.asarray(5.5), jnp.asarray(True)), 0.55, rtol=1e-6)
    np.testing.assert_allclose(f(jnp.asarray(2.0), jnp.asarray(False)), OFF, rtol=1e-6)
    assert len(traces) == 1


def test_array_flag_with_python_factor_gives_an_array():
    s = Strength("delta", 0.5).scaled(2.0, active=np.asarray(False))
    assert isinstance(s.value, np.ndarray) and s.value.shape == () and float(s.value) == 0.0


def test_flag_must_be_a_scalar():
    with pytest.raises(TypeError, match="active must be a bool or a 0-d bool array"):
        Strength("delta", 0.5).scaled(2.0, active=np.array([True, False]))


def test_scaled_strength_gives_the_weights_of_the_scaled_value():
    losses = np.array([0.1, 0.4, 2.0, 0.3])
    s = Strength.parse(dw.Alpha(0.5), delta=0.4).scaled(2.0)
    np.testing.assert_array_equal(
        dw.instance_weights(losses, dw.Alpha(0.5), **s.as_kwargs()),
        dw.instance_weights(losses, dw.Alpha(0.5), delta=0.2),
    )


# ------------------------------------------------------------------ immutable divergences


@pytest.mark.parametrize(
    "d, attribute",
    [(dw.Alpha(0.5), "alpha"), (dw.ReverseKL(), "alpha"), (dw.KL(), "alpha"), (dw.TotalVariation(), "x")],
    ids=repr,
)
def test_divergences_cannot_be_changed(d, attribute):
    h = hash(d)
    with pytest.raises(AttributeError, match="immutable"):
        setattr(d, attribute, 1.0)
    assert hash(d) == h
    if hasattr(d, attribute):
        with pytest.raises(AttributeError, match="immutable"):
            delattr(d, attribute)


def test_alpha_keeps_its_value_and_hash():
    d = dw.Alpha(0.5)
    with pytest.raises(AttributeError):
        d.alpha = 1.0
    assert d.alpha == 0.5 and d == dw.Alpha(0.5) and hash(d) == hash(dw.Alpha(0.5))
    assert {dw.Alpha(0.5): 1}[dw.Alpha(0.5)] == 1


def test_equal_divergences_are_equal_and_distinct_ones_are_not():
    assert dw.Alpha(2) == dw.Alpha(2.0) and dw.KL() == dw.KL()
    assert dw.Alpha(0.0) != dw.ReverseKL() and dw.Alpha(0.5) != dw.Alpha(0.6) and dw.KL() != dw.Alpha(1.0)


@pytest.mark.parametrize("d", [dw.Alpha(0.5), dw.ReverseKL(), dw.KL(), dw.SquaredL2()], ids=repr)
def test_divergences_survive_pickling_and_copying(d):
    e = pickle.loads(pickle.dumps(d))
    assert e == d and hash(e) == hash(d)
    assert copy.deepcopy(d) == d and copy.copy(d) == d
    with pytest.raises(AttributeError, match="immutable"):
        e.alpha = 3.0
