r"""Robust-loss baselines for JAX: bi-tempered, NCE+RCE, generalized and symmetric cross-entropy.

The methods the CIW/CICW paper compares with, as per-example losses (reduce
them yourself, e.g. ``jnp.mean``).  Each takes logits of shape ``(n, k)``
(any leading axes) and targets that are integer labels of shape ``(n,)`` or
probability rows of shape ``(n, k)``; half-precision logits are computed in
float32 and the losses returned in float32 (float64 stays float64).  All are
pure ``jnp`` functions: ``jit``, ``grad`` and ``vmap`` safe, with no
data-dependent control flow.  The PyTorch adapter has the same functions
with the same names (``divweights_torch.baselines``), with two differences:
its losses take a ``reduction`` (and the reverse cross-entropy a
``log_floor``), and its reverse cross-entropy does not clip the
probabilities at ``1e-7`` as the published code and this module do (the
losses differ by at most ``1e-7 (k - 1) |A|``, 1.5e-7 on random inputs).

* :func:`bi_tempered_logistic_loss` -- Amid, Warmuth, Anil & Koren (2019),
  "Robust Bi-Tempered Logistic Loss Based on Bregman Divergences".
* :func:`nce_rce_loss` -- Ma et al. (2020), "Normalized Loss Functions for
  Deep Learning with Noisy Labels" (active-passive loss NCE+RCE).
* :func:`generalized_cross_entropy` -- Zhang & Sabuncu (2018).
* :func:`symmetric_cross_entropy` -- Wang et al. (2019).

Integer labels outside ``[0, k)`` raise ``ValueError`` when the labels are
concrete host arrays; under ``jit`` they give a NaN loss for that example.
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .loss import _is_concrete, _is_zero

__all__ = [
    "bi_tempered_logistic_loss",
    "generalized_cross_entropy",
    "nce_rce_loss",
    "symmetric_cross_entropy",
]

#: Clipping of the reverse cross-entropy (Wang et al. 2019; Ma et al. 2020):
#: ``log 0`` of a one-hot label is read as ``log 1e-4`` (about -9.21), and the
#: predicted probabilities are clipped below at ``1e-7``.
RCE_LABEL_FLOOR = 1e-4
RCE_PROB_FLOOR = 1e-7

#: Added to the labels inside ``log_t`` in the bi-tempered loss, as in the reference.
_LABEL_EPS = 1e-10


# --------------------------------------------------------------------- inputs


def _real(name: str, value, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite Python real in the given range (hyperparameters that select the algorithm)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}; got {v!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}; got {v!r}")
    return v


def _weight(name: str, value):
    """A nonnegative coefficient: a Python number (checked) or a 0-d array (checked when concrete)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, not bool")
    if isinstance(value, numbers.Real) or _is_concrete(value):
        shape = getattr(value, "shape", ())
        if tuple(shape) != ():
            raise ValueError(f"{name} must be a scalar; got shape {tuple(shape)}")
        _real(name, float(value), lo=0.0)
    elif tuple(getattr(value, "shape", (None,))) != ():
        raise ValueError(f"{name} must be a real number or a 0-d array")
    return value


def _prepare(logits, targets):
    """``(logits in the compute dtype, probability targets (..., k))``; out-of-range labels give NaN rows."""
    logits = jnp.asarray(logits)
    if logits.ndim < 1:
        raise ValueError(f"logits must have a class axis; got shape {logits.shape}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"logits must be floating; got dtype {logits.dtype}")
    k = logits.shape[-1]
    if k == 0:
        raise ValueError("logits must have at least one class")
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    logits = logits.astype(dtype)
    targets = jnp.asarray(targets)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if targets.shape != logits.shape[:-1]:
            raise ValueError(f"integer targets must have shape {logits.shape[:-1]}; got {targets.shape}")
        if targets.size and _is_concrete(targets):
            concrete = np.asarray(targets)
            lo, hi = int(concrete.min()), int(concrete.max())
            if lo < 0 or hi >= k:
                raise ValueError(f"integer targets must lie in [0, {k}) for {k} classes; got values in [{lo}, {hi}]")
        y = jax.nn.one_hot(targets, k, dtype=dtype)
        bad = (targets < 0) | (targets >= k)
        return logits, jnp.where(bad[..., None], jnp.nan, y)
    if jnp.issubdtype(targets.dtype, jnp.floating):
        if targets.shape != logits.shape:
            raise ValueError(f"probability targets must have the shape of logits {logits.shape}; got {targets.shape}")
        return logits, jax.lax.stop_gradient(targets.astype(dtype))
    raise TypeError(f"targets must be integer labels or floating probabilities; got dtype {targets.dtype}")


def _prepare_weighted(logits, targets, alpha, beta):
    """:func:`_prepare` for a loss of two terms weighted by ``alpha`` and ``beta`` (checked by :func:`_weight`)."""
    _weight("alpha", alpha)
    _weight("beta", beta)
    return _prepare(logits, targets)


def _reverse_cross_entropy(log_p, y):
    r""":math:`-\sum_j \mathrm{clip}(p_j, 10^{-7}, 1) \log \mathrm{clip}(y_j, 10^{-4}, 1)`."""
    p = jnp.clip(jnp.exp(log_p), RCE_PROB_FLOOR, 1.0)
    return -jnp.sum(p * jnp.log(jnp.clip(y, RCE_LABEL_FLOOR, 1.0)), axis=-1)


def _cross_entropy(log_p, y):
    """``-sum_j y_j log p_j`` with ``0 * (-inf) = 0`` (NaN labels stay NaN)."""
    return -jnp.sum(jnp.where(y == 0, 0.0, y * log_p), axis=-1)


# ------------------------------------------------------------- bi-tempered


def _log_t(u, t: float):
    r"""Tempered logarithm :math:`\log_t u = (u^{1-t} - 1) / (1 - t)` (:math:`\log` at ``t = 1``)."""
    if t == 1.0:
        return jnp.log(u)
    return (u ** (1.0 - t) - 1.0) / (1.0 - t)


def _exp_t(u, t: float):
    r"""Tempered exponential :math:`[1 + (1 - t) u]_+^{1/(1-t)}` (:math:`\exp` at ``t = 1``)."""
    if t == 1.0:
        return jnp.exp(u)
    return jnp.maximum(1.0 + (1.0 - t) * u, 0.0) ** (1.0 / (1.0 - t))


def _tempered_normaliser(a, t: float, num_iters: int):
    r"""The :math:`\lambda_t(a)` with :math:`\sum_j \exp_t(a_j - \lambda_t(a)) = 1`, over the last axis.

    ``t > 1`` (heavy tails): ``num_iters`` fixed-point steps
    :math:`\tilde a \leftarrow (a - \mu)\, Z(\tilde a)^{1-t}`,
    :math:`Z(\tilde a) = \sum_j \exp_t(\tilde a_j)`, then
    :math:`\lambda = \mu - \log_t(1/Z)`.  ``t < 1`` (finite support):
    ``num_iters`` bisection steps on :math:`[0, -\log_t(1/d)]` with ``d`` the
    number of classes inside the support.  ``t = 1``: log-sum-exp.  The
    algorithm of Amid et al. (2019), a fixed number of steps (no data-dependent
    control flow).
    """
    mu = jnp.max(a, axis=-1, keepdims=True)
    a0 = a - mu  # <= 0, zero at the maximum
    if t == 1.0:
        return mu + jnp.log(jnp.sum(jnp.exp(a0), axis=-1, keepdims=True))
    if t > 1.0:

        def step(_, x):
            z = jnp.sum(_exp_t(x, t), axis=-1, keepdims=True)
            return a0 * z ** (1.0 - t)

        x = jax.lax.fori_loop(0, num_iters, step, a0)
        z = jnp.sum(_exp_t(x, t), axis=-1, keepdims=True)
        return mu - _log_t(1.0 / z, t)
    inside = jnp.sum((a0 > -1.0 / (1.0 - t)).astype(a.dtype), axis=-1, keepdims=True)
    lo = jnp.zeros_like(mu)
    hi = -_log_t(1.0 / inside, t)

    def bisect(_, bracket):
        lo, hi = bracket
        mid = (lo + hi) / 2.0
        below = jnp.sum(_exp_t(a0 - mid, t), axis=-1, keepdims=True) < 1.0
        return jnp.where(below, lo, mid), jnp.where(below, mid, hi)

    lo, hi = jax.lax.fori_loop(0, num_iters, bisect, (lo, hi))
    return mu + (lo + hi) / 2.0


def _tempered_softmax(a, t: float, num_iters: int):
    return _exp_t(a - _tempered_normaliser(a, t, num_iters), t)


def _bi_tempered_value(a, y, t1: float, t2: float, num_iters: int):
    """Per-example loss and the tempered probabilities."""
    if t1 == 1.0 and t2 == 1.0:
        log_p = jax.nn.log_softmax(a, axis=-1)
        p = jnp.exp(log_p)
        loss = jnp.sum(jnp.where(y == 0, 0.0, y * (jnp.log(y + _LABEL_EPS) - log_p)), axis=-1)
        return loss, p
    p = _tempered_softmax(a, t2, num_iters)
    # Bregman divergence of log_t1 between the labels and the tempered probabilities
    # a class the target does not hold adds 0, also where p_j = 0 and log_t1(0) = -inf (t1 = 1; NaN stays NaN)
    cross = jnp.where(y == 0, 0.0, y * (_log_t(y + _LABEL_EPS, t1) - _log_t(p, t1)))
    power = (y ** (2.0 - t1) - p ** (2.0 - t1)) / (2.0 - t1)
    return jnp.sum(cross - power, axis=-1), p


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _bi_tempered(a, y, t1, t2, num_iters):
    return _bi_tempered_value(a, y, t1, t2, num_iters)[0]


def _bi_tempered_fwd(a, y, t1, t2, num_iters):
    loss, p = _bi_tempered_value(a, y, t1, t2, num_iters)
    return loss, (y, p)


def _bi_tempered_bwd(t1, t2, num_iters, residuals, g):
    # d loss / d a = (p - y) p^(t2 - t1) - e <(p - y) p^(t2 - t1)>, e = p^t2 / sum p^t2
    # (the exact gradient at the exact normaliser; p^(t2 - t1) comes from
    # p^t2 * p^-t1 and is 0 where p = 0, the edge of a finite support)
    y, p = residuals
    positive = p > 0
    safe_p = jnp.where(positive, p, 1.0)
    forget = jnp.where(positive, safe_p ** (t2 - t1), 0.0)
    delta = (p - y) * forget
    escort = jnp.where(positive, safe_p**t2, 0.0)
    escort = escort / jnp.sum(escort, axis=-1, keepdims=True)
    grad = delta - escort * jnp.sum(delta, axis=-1, keepdims=True)
    return g[..., None] * grad, jnp.zeros_like(y)


_bi_tempered.defvjp(_bi_tempered_fwd, _bi_tempered_bwd)


def bi_tempered_logistic_loss(logits, targets, t1, t2, *, label_smoothing=0.0, num_iters=5):
    r"""Bi-tempered logistic loss of every example (Amid et al., 2019).

    With the tempered logarithm and exponential

    .. math::

        \log_t u = \frac{u^{1-t} - 1}{1 - t}, \qquad
        \exp_t u = [1 + (1 - t)\,u]_+^{1/(1-t)},

    the tempered softmax is :math:`\hat p_j = \exp_{t_2}(a_j - \lambda_{t_2}(a))`
    with the normaliser :math:`\lambda_{t_2}(a)` making the row sum to one,
    and the loss is the Bregman divergence of :math:`\log_{t_1}`:

    .. math::

        \ell(y, a) = \sum_j \Big[ y_j \big(\log_{t_1}(y_j + 10^{-10}) - \log_{t_1} \hat p_j\big)
                     - \tfrac{1}{2 - t_1}\big(y_j^{2-t_1} - \hat p_j^{\,2-t_1}\big) \Big].

    :math:`t_1 < 1` bounds the loss (robust to mislabelled outliers);
    :math:`t_2 > 1` gives the softmax heavy tails (robust near the decision
    boundary).  ``t1 = t2 = 1`` is the cross-entropy (minus the labels'
    entropy: zero for one-hot labels).

    The normaliser has no closed form; it is computed with a fixed number
    ``num_iters`` of steps of the reference algorithm (fixed-point iteration
    for :math:`t_2 > 1`, bisection for :math:`t_2 < 1`), so the graph has no
    data-dependent control flow.  The gradient is the closed form of the
    reference implementation (exact at the exact normaliser), not the
    derivative of the iterations:
    :math:`\partial \ell / \partial a = (\hat p - y)\,\hat p^{t_2 - t_1}
    - \tilde p \,\langle \hat p - y, \hat p^{t_2 - t_1}\rangle`, with the
    escort :math:`\tilde p \propto \hat p^{t_2}`.

    Parameters
    ----------
    logits : array, shape (..., k)
        Activations :math:`a`.  float16/bfloat16 are computed in float32.
    targets : array
        Integer labels of shape ``logits.shape[:-1]`` or probability rows of
        the shape of ``logits`` (held constant).
    t1 : float
        Temperature of the loss, in ``[0, 2)``; ``< 1`` for a bounded loss.
    t2 : float
        Temperature of the softmax, ``> 0``; ``> 1`` for heavy tails.
    label_smoothing : float or 0-d array, default 0.0
        As in the reference: :math:`y \leftarrow (1 - \tfrac{k}{k-1}s)\,y + \tfrac{s}{k-1}`,
        i.e. mass ``s`` taken off a one-hot label and spread over the other
        ``k - 1`` classes.  In ``[0, 1)``; needs ``k >= 2``.
    num_iters : int, default 5
        Steps of the normaliser (``>= 0``).  The reference default; for
        :math:`t_2 < 1` (bisection) raise it for accuracy, each step halves
        the bracket.

    Returns
    -------
    loss : array, shape ``logits.shape[:-1]``
        Per-example losses, float32 (float64 for float64 logits).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from divweights_jax.baselines import bi_tempered_logistic_loss
    >>> z, y = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]]), jnp.array([0, 2])
    >>> [round(float(v), 4) for v in bi_tempered_logistic_loss(z, y, 0.8, 1.2)]
    [0.16, 1.867]
    >>> bool(jnp.allclose(bi_tempered_logistic_loss(z, y, 1.0, 1.0),
    ...                   -jax.nn.log_softmax(z)[jnp.arange(2), y]))
    True
    >>> jax.jit(jax.grad(lambda z: bi_tempered_logistic_loss(z, y, 0.5, 2.0).mean()))(z).shape
    (2, 3)
    """
    t1 = _real("t1", t1, lo=0.0, hi=2.0, hi_open=True)
    t2 = _real("t2", t2, lo=0.0, lo_open=True)
    if isinstance(num_iters, bool) or not isinstance(num_iters, numbers.Integral) or num_iters < 0:
        raise ValueError(f"num_iters must be an int >= 0; got {num_iters!r}")
    logits, y = _prepare(logits, targets)
    k = logits.shape[-1]
    if isinstance(label_smoothing, bool):
        raise TypeError("label_smoothing must be a real number, not bool")
    if isinstance(label_smoothing, numbers.Real) or _is_concrete(label_smoothing):
        _real("label_smoothing", float(label_smoothing), lo=0.0, hi=1.0, hi_open=True)
    if not _is_zero(label_smoothing):
        if k < 2:
            raise ValueError("label_smoothing needs at least two classes")
        s = jnp.asarray(label_smoothing, dtype=logits.dtype)
        y = (1.0 - s * k / (k - 1)) * y + s / (k - 1)
    return _bi_tempered(logits, y, t1, t2, int(num_iters))


# ------------------------------------------------------ NCE+RCE, GCE, SCE


def nce_rce_loss(logits, targets, *, alpha=1.0, beta=1.0):
    r"""Active-passive loss NCE+RCE of every example (Ma et al., 2020).

    .. math::

        \ell = \alpha\, \frac{-\sum_j y_j \log p_j}{-\sum_j \log p_j}
             + \beta \Big(-\sum_j \mathrm{clip}(p_j, 10^{-7}, 1)\, \log \mathrm{clip}(y_j, 10^{-4}, 1)\Big)

    with :math:`p = \mathrm{softmax}(z)`: the normalized cross-entropy (NCE,
    in :math:`[0, 1]`, active) plus the reverse cross-entropy (RCE, passive;
    :math:`\log 0` read as :math:`\log 10^{-4}`, the clipping of the
    published code).  For a one-hot label the RCE is
    :math:`-\log(10^{-4}) \sum_{j \ne y} \max(p_j, 10^{-7})`.

    Parameters
    ----------
    logits : array, shape (..., k)
        ``k >= 2`` (the NCE is 0/0 with one class).
    targets : array
        Integer labels of shape ``logits.shape[:-1]`` or probability rows.
    alpha, beta : float or 0-d array, default 1.0
        Nonnegative weights of NCE and RCE (the paper uses ``alpha = 1,
        beta = 1`` on CIFAR-10 and ``alpha = 10, beta = 0.1`` on CIFAR-100).

    Returns
    -------
    loss : array, shape ``logits.shape[:-1]``

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from divweights_jax.baselines import nce_rce_loss
    >>> z, y = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]]), jnp.array([0, 2])
    >>> [round(float(v), 4) for v in nce_rce_loss(z, y)]
    [1.4695, 9.2858]
    """
    logits, y = _prepare_weighted(logits, targets, alpha, beta)
    if logits.shape[-1] < 2:
        raise ValueError("nce_rce_loss needs at least two classes (the normalized cross-entropy is 0/0 with one)")
    log_p = jax.nn.log_softmax(logits, axis=-1)
    nce = _cross_entropy(log_p, y) / -jnp.sum(log_p, axis=-1)
    return alpha * nce + beta * _reverse_cross_entropy(log_p, y)


def generalized_cross_entropy(logits, targets, *, q=0.7):
    r"""Generalized cross-entropy :math:`L_q` of every example (Zhang & Sabuncu, 2018).

    .. math::

        \ell = \sum_j y_j\, \frac{1 - p_j^{\,q}}{q}, \qquad p = \mathrm{softmax}(z),

    i.e. :math:`(1 - p_y^q)/q` for a one-hot label: the cross-entropy as
    :math:`q \to 0`, the mean absolute error at :math:`q = 1`.
    :math:`p^q` is computed as :math:`\exp(q \log p)` from ``log_softmax``
    (no underflow to ``0 ** q``).

    Parameters
    ----------
    logits : array, shape (..., k)
    targets : array
        Integer labels of shape ``logits.shape[:-1]`` or probability rows.
    q : float, default 0.7
        In ``(0, 1]`` (the paper's default 0.7).

    Returns
    -------
    loss : array, shape ``logits.shape[:-1]``

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from divweights_jax.baselines import generalized_cross_entropy
    >>> z, y = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]]), jnp.array([0, 2])
    >>> [round(float(v), 4) for v in generalized_cross_entropy(z, y)]
    [0.1601, 1.2649]
    >>> p_y = jnp.take_along_axis(jax.nn.softmax(z), y[:, None], axis=-1)[:, 0]
    >>> bool(jnp.allclose(generalized_cross_entropy(z, y, q=1.0), 1 - p_y))  # q = 1: the mean absolute error
    True
    """
    q = _real("q", q, lo=0.0, hi=1.0, lo_open=True)
    logits, y = _prepare(logits, targets)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    # 1 - p^q = -expm1(q log p): no cancellation for small q (1 - exp(q log p) lost the loss below q ~ 1e-6)
    return jnp.sum(y * -jnp.expm1(q * log_p), axis=-1) / q


def symmetric_cross_entropy(logits, targets, *, alpha=0.1, beta=1.0):
    r"""Symmetric cross-entropy of every example (Wang et al., 2019).

    .. math::

        \ell = \alpha \Big(-\sum_j y_j \log p_j\Big)
             + \beta \Big(-\sum_j \mathrm{clip}(p_j, 10^{-7}, 1)\, \log \mathrm{clip}(y_j, 10^{-4}, 1)\Big),

    the cross-entropy plus the reverse cross-entropy of
    :func:`nce_rce_loss`.

    Parameters
    ----------
    logits : array, shape (..., k)
    targets : array
        Integer labels of shape ``logits.shape[:-1]`` or probability rows.
    alpha, beta : float or 0-d array
        Nonnegative weights of CE and RCE (defaults 0.1 and 1.0, the paper's
        CIFAR-10 setting).

    Returns
    -------
    loss : array, shape ``logits.shape[:-1]``

    Examples
    --------
    >>> from divweights_jax.baselines import nce_rce_loss, symmetric_cross_entropy
    >>> import jax, jax.numpy as jnp
    >>> z, y = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]]), jnp.array([0, 2])
    >>> [round(float(v), 4) for v in symmetric_cross_entropy(z, y)]
    [1.4557, 9.1028]
    >>> ce = -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=-1)[:, 0]
    >>> bool(jnp.allclose(symmetric_cross_entropy(z, y, alpha=1.0, beta=0.0), ce))  # beta = 0: cross-entropy
    True
    >>> rce = symmetric_cross_entropy(z, y, alpha=0.0, beta=1.0)  # the passive term NCE+RCE shares
    >>> bool(jnp.allclose(rce, nce_rce_loss(z, y, alpha=0.0, beta=1.0)))
    True
    """
    logits, y = _prepare_weighted(logits, targets, alpha, beta)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return alpha * _cross_entropy(log_p, y) + beta * _reverse_cross_entropy(log_p, y)
