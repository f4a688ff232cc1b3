r"""Radii that need no noise rate: estimate the batch's noisy mass from the model's predictions.

A divergence radius encodes how much of a mini-batch the weights may set
aside.  The right amount is the fraction of wrong labels, which a user rarely
knows.  This module estimates it from the batch and turns the estimate into a
radius for any divergence.  Three pure functions:

* :func:`noise_rate` -- the batch estimate
  :math:`\hat\pi = \frac1n\sum_i \bigl(1 - p_{iy_i}/\max_j p_{ij}\bigr)`,
  how much the model prefers another class to the label, from the class
  losses :math:`L_{ij} = -\log p_{ij}` and the labels;
* :func:`track_noise_rate` -- an exponential moving average of it started at
  ``0`` (the only state: one scalar);
* :func:`noise_radius` -- the radius of a divergence that lets the weights
  set aside a fraction :math:`\pi` of the batch (instance weights) or of a
  label's mass (class weights): :math:`-\log(1-\pi)` for KL, :math:`\pi`
  for total variation.

What it estimates, and when it fails, is derived in the docs
(``docs/derivations/adaptive.rst``).  In short: once the model has learned
the clean structure of the data (which it does first, before it memorises
the noise), a wrong label is one whose probability is far below that of the
model's favourite class, and a right label is the favourite.  An untrained
model predicts almost uniformly, so every ratio is near one and the estimate
starts near zero: the radius grows as the model learns, with no schedule to
tune.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ._array import clip, prepare, quiet, where
from ._inputs import integer_targets
from .divergences import Divergence

__all__ = ["DEFAULT_NOISE_MOMENTUM", "DEFAULT_NOISE_SHARPNESS", "noise_radius", "noise_rate", "track_noise_rate"]

#: Momentum of :func:`track_noise_rate` used by the adapters' ``delta="auto"``:
#: a time constant of about 20 steps, which smooths the batch-to-batch
#: scatter of the estimate (about ``0.5 / sqrt(n)``) and keeps the radius small
#: during the first steps, and still follows the model within an epoch on a
#: dataset of a few thousand examples (measured: ``benchmarks/adaptive_radius.py``).
DEFAULT_NOISE_MOMENTUM = 0.95

#: Exponent :math:`a` of :func:`noise_rate` (a row counts :math:`1 - r^a` for the ratio :math:`r` of
#: its label's probability to its favourite's).  ``a = 2`` reads the probabilities as a temperature of
#: 1/2 would sharpen them, undoing part of the flattening that label noise imposes: measured
#: (``benchmarks/adaptive_radius.py``, method ``sharp:2``) it gains at asymmetric noise and on digits
#: but costs about a point on clean Fashion-MNIST, so the default stays the plain ratio.
DEFAULT_NOISE_SHARPNESS = 1.0

_PROBLEMS = ("instance", "class")


def _check_momentum(momentum) -> float:
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"momentum must be a real number in [0, 1); got {type(momentum).__name__}")
    momentum = float(momentum)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1); got {momentum!r}")
    return momentum


def _check_sharpness(sharpness) -> float:
    if isinstance(sharpness, bool) or not isinstance(sharpness, numbers.Real):
        raise TypeError(f"sharpness must be a positive real number; got {type(sharpness).__name__}")
    sharpness = float(sharpness)
    if not (math.isfinite(sharpness) and sharpness > 0.0):
        raise ValueError(f"sharpness must be a positive finite number; got {sharpness!r}")
    return sharpness


def _row_losses(L, targets, work):
    """Per-row loss of the given label(s): ``L[i, y_i]`` or ``<y_i, L_i>``."""
    xp = work.xp
    if not hasattr(targets, "dtype"):
        raise TypeError(f"targets must be an array; got {type(targets).__name__}")
    k = L.shape[-1]
    if integer_targets(xp, targets, L):
        classes = xp.arange(k, device=work.device)  # the default integer type: wide enough, also under JAX
        hit = xp.astype(targets, classes.dtype)[..., None] == classes
        # a select, not a one-hot product: 0 * inf would be NaN for a class of infinite loss (logits
        # masked with -inf) that is not the label
        return xp.sum(where(xp, hit, L, xp.zeros_like(L)), axis=-1)
    y = xp.astype(targets, work.dtype)
    finite = xp.where(y > 0, L, xp.zeros_like(L))  # 0 * inf is 0 here: a class the label does not hold
    return xp.sum(y * finite, axis=-1)


def noise_rate(
    class_losses: Any, targets: Any, /, *, valid: Any = None, sharpness: float = DEFAULT_NOISE_SHARPNESS
) -> Any:
    r"""Estimate the fraction of wrong labels in a batch from how much the model prefers another class.

    .. math::

        \hat\pi = \frac{1}{|V|}\sum_{i\in V} \Bigl(1 - r_i^{\,a}\Bigr), \qquad
        r_i = \frac{p_{i y_i}/q_{y_i}}{\max_j p_{ij}/q_j}, \qquad
        q_j = \frac{1}{|V|}\sum_{i\in V} p_{ij},

    over the rows :math:`V` marked ``valid`` (all rows by default), with
    :math:`p_{ij} = e^{-L_{ij}}` (for probability targets :math:`y_i` the
    label term is :math:`\exp\langle y_i, \log(p_i/q)\rangle`).  A row counts
    fully when the model puts (almost) nothing on the label next to its
    favourite class, not at all when the label is the favourite, and in
    between when the model hesitates.  The exponent :math:`a` (``sharpness``)
    reads the probabilities as if sharpened by a temperature :math:`1/a`: label
    noise flattens the model's probabilities (at rate :math:`\pi` over :math:`K`
    classes a wrong label keeps :math:`r = \pi / ((K-1)(1-\pi))` of its
    favourite's probability, 0.44 at 80% noise over ten classes), and
    :math:`a = 2` counts such a row as 0.8 rather than 0.56 (at the price of
    counting hard clean examples more too: see :data:`DEFAULT_NOISE_SHARPNESS`).  Dividing by the batch's predicted class
    marginal :math:`q` makes a model that predicts the same class everywhere
    read as clean (every ratio is one), so the estimate cannot lock the
    weights onto such a model.  See the module notes for what this estimates
    and when it fails.

    Parameters
    ----------
    class_losses : array, shape (..., n, k)
        Class losses :math:`L_{ij} = -\log p_{ij}` (for example
        ``-log_softmax(logits)``), treated as constants.
    targets : array
        Integer labels of shape ``(..., n)`` or probabilities of shape
        ``(..., n, k)``.  Labels are not range-checked here (indexing is by
        comparison, so an out-of-range label counts as a wrong label).
    valid : array of bool, shape (..., n), optional
        Rows to use (for example not padding, not ``ignore_index``).  A batch
        without a valid row gives ``0``.
    sharpness : float, default :data:`DEFAULT_NOISE_SHARPNESS`
        The exponent :math:`a > 0`; ``1`` counts the plain ratio.

    Returns
    -------
    rate : array, shape (...)
        In :math:`[0, 1]`, in the namespace, device and (floating) dtype of
        ``class_losses``; float16/bfloat16 are computed in float32.  No host
        synchronisation (safe under ``jax.jit`` and ``torch.compile``).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import noise_rate
    >>> p = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])  # balanced predictions
    >>> round(float(noise_rate(-np.log(p), np.array([0, 1, 1, 1]))), 4)  # one label at 1/9 of its favourite
    0.2222
    >>> round(float(noise_rate(-np.log(p), np.array([0, 1, 1, 1]), sharpness=2)), 4)  # (1 - 1/81) / 4
    0.2469
    >>> float(noise_rate(-np.log(np.array([[0.8, 0.2], [0.8, 0.2]])), np.array([0, 1])))  # one class everywhere
    0.0
    """
    a = _check_sharpness(sharpness)
    L, work = prepare(class_losses, "class_losses", min_ndim=2)
    xp = work.xp
    if L.shape[-1] == 0:
        raise ValueError("class_losses must hold at least one class along the last axis")
    if valid is not None and tuple(valid.shape) != tuple(L.shape[:-1]):
        raise ValueError(
            f"valid must have shape class_losses.shape[:-1] = {tuple(L.shape[:-1])}; got {tuple(valid.shape)}"
        )
    with quiet(xp):
        mask = None if valid is None else xp.astype(valid, work.dtype)
        # the model's predicted class marginal on the batch, q_j = mean_i p_ij, in log space and up to
        # the constant log |V| (only differences between the classes of one row count below)
        logp = -L if mask is None else xp.where(mask[..., None] > 0, -L, xp.full_like(L, -math.inf))
        top = xp.max(logp, axis=-2, keepdims=True)
        log_q = xp.log(xp.sum(xp.exp(logp - top), axis=-2, keepdims=True)) + top
        # a column without a finite top (no valid row, a class every row rules out, an infinite
        # log-probability) gives -inf or NaN here (-inf - -inf): 0, as for a column nobody predicts
        log_q = xp.where(xp.isfinite(log_q), log_q, xp.zeros_like(log_q))
        # prior-corrected class losses: L_ij + log q_j (a constant predictor reads as clean)
        Lc = L + log_q
        # minus the gap between the label's corrected loss and the row's best, <= 0: each row's share
        # lost 1 - ratio ** a is -expm1(a * neg_gap), accurate near 0 (the sign is taken once, on the
        # rate); a NaN loss stays NaN, an infinite gap counts as 1
        # (clipped at 0: rounding, targets that do not sum to one and out-of-range labels cannot make it
        # positive, which would make the rate negative)
        neg_gap = clip(xp, xp.min(Lc, axis=-1) - _row_losses(Lc, targets, work), max=0.0)
        lost = xp.expm1(neg_gap if a == 1.0 else a * neg_gap)
        # 0 - x rather than -x: a batch with nothing lost gives 0.0, not -0.0
        if mask is None:
            rate = 0.0 - xp.mean(lost, axis=-1)
        else:
            total = xp.sum(mask, axis=-1)
            picked = xp.where(mask > 0, lost, xp.zeros_like(lost))
            rate = 0.0 - xp.sum(picked, axis=-1) / xp.maximum(total, xp.ones_like(total))
    return work.finish(xp.asarray(rate))  # NumPy reductions return scalars, not 0-d arrays


def track_noise_rate(
    previous: Any,
    class_losses: Any,
    targets: Any,
    /,
    *,
    momentum: float = DEFAULT_NOISE_MOMENTUM,
    valid: Any = None,
    sharpness: float = DEFAULT_NOISE_SHARPNESS,
) -> Any:
    r"""One step of the moving average of :func:`noise_rate`.

    .. math::

        \bar\pi_t = m\,\bar\pi_{t-1} + (1 - m)\,\hat\pi_t, \qquad \bar\pi_0 = 0.

    Starting at zero is deliberate (no bias correction): the radius starts at
    zero, as plain cross-entropy, and follows the estimate after about
    :math:`1/(1-m)` steps.  A batch that tells nothing about the rate leaves
    the average unchanged: one without a valid row (``valid`` all false), or
    one whose estimate is NaN (a NaN or infinite loss: that step's loss is NaN
    anyway, and the steps after it, which AMP's gradient scaler or
    ``optax.apply_if_finite`` skip it for, keep a finite rate).

    Parameters
    ----------
    previous : array or float
        The average so far (``0.0`` before the first step).
    class_losses, targets, valid, sharpness
        As in :func:`noise_rate`.
    momentum : float, default :data:`DEFAULT_NOISE_MOMENTUM`
        In ``[0, 1)``; ``0`` uses the current batch alone.

    Returns
    -------
    rate : array
        The new average, in the namespace, dtype and device of
        ``class_losses``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import track_noise_rate
    >>> L = -np.log(np.array([[0.8, 0.2], [0.2, 0.8]]))
    >>> state = 0.0
    >>> for _ in range(3):
    ...     state = track_noise_rate(state, L, np.array([0, 0]), momentum=0.5)
    >>> round(float(state), 4)  # noise_rate (1 - 0.25) / 2, times 1 - 0.5 ** 3
    0.3281
    """
    m = _check_momentum(momentum)
    rate = noise_rate(class_losses, targets, valid=valid, sharpness=sharpness)
    xp = prepare(rate, "rate", min_ndim=0)[1].xp
    if isinstance(previous, numbers.Real):
        previous = xp.full_like(rate, float(previous))
    else:
        previous = xp.astype(previous, rate.dtype)
    informative = rate == rate  # not NaN
    if valid is not None:
        informative = informative & xp.any(valid, axis=-1)
    return xp.asarray(where(xp, informative, previous * m + rate * (1.0 - m), previous))


def _adaptive_ok(divergence: Divergence, problem: str) -> bool:
    """Whether :func:`noise_radius` is meaningful for ``divergence``: an f-divergence whose radius can drop
    examples (instance problem: not reverse KL, which keeps every weight positive) or label mass (class
    problem: total variation and reverse KL)."""
    from .divergences import KL, Alpha, ChiSquared, ReverseKL, TotalVariation

    if problem == "class":
        return isinstance(divergence, (TotalVariation, ReverseKL)) or (
            isinstance(divergence, Alpha) and divergence.alpha == 0.0
        )
    if isinstance(divergence, ReverseKL) or (isinstance(divergence, Alpha) and divergence.alpha <= 0.0):
        return False
    return isinstance(divergence, (KL, Alpha, ChiSquared, TotalVariation))


def _is_kl(divergence) -> bool:
    """``KL()`` or ``Alpha(1)`` (not a subclass of KL with other weights)."""
    from .divergences import KL, Alpha

    return type(divergence) is KL or (isinstance(divergence, Alpha) and divergence.is_kl)


def _default_is_auto(instance, lam, delta, temperature) -> bool:
    """Whether an adapter's instance radius is adaptive: ``delta="auto"``, or no strength given for KL,
    the default of both the torch and the JAX loss."""
    if isinstance(delta, str) and delta == "auto":
        return True
    return delta is None and lam is None and temperature is None and _is_kl(instance)


def _closed_form(divergence: Divergence, problem: str) -> str | None:
    """``"log"`` where the radius is ``-log(1 - rate)``, ``"linear"`` where it is ``rate``."""
    from .divergences import KL, ReverseKL, TotalVariation

    if isinstance(divergence, TotalVariation):
        return "linear"
    if (problem == "instance" and type(divergence) is KL) or (problem == "class" and isinstance(divergence, ReverseKL)):
        return "log"
    return None


def noise_radius(divergence: Divergence, rate: Any, /, *, problem: str = "instance") -> Any:
    r"""The radius that lets the weights set aside a fraction ``rate`` of the mass.

    * ``problem="instance"``: :math:`D(u_S \,\|\, u)` for :math:`u_S` uniform
      on a subset :math:`S` holding a fraction :math:`1-\pi` of the batch, the
      weights that drop the noisy part when its losses stand apart.  For an
      f-divergence :math:`D_f(u_S\|u) = (1-\pi) f\!\left(\tfrac{1}{1-\pi}\right) + \pi f(0)`;
      KL gives :math:`-\log(1-\pi)`, total variation :math:`\pi`.
    * ``problem="class"``: :math:`D(v \,\|\, e_y)` for :math:`v` that keeps
      :math:`1-\pi` on the label :math:`y` and moves :math:`\pi` to another
      class (reverse KL gives :math:`-\log(1-\pi)`, total variation
      :math:`\pi`).

    Parameters
    ----------
    divergence : Divergence
        The divergence of the instance or class problem.
    rate : float or array
        Fraction in ``[0, 1)``; array values are not checked (they may be
        traced or on an accelerator: no host synchronisation) and are clipped
        to ``[0, 1 - eps]``.
    problem : {"instance", "class"}

    Returns
    -------
    radius : float or array
        A Python float for a float ``rate``, otherwise an array like ``rate``.
        ``inf`` where the divergence cannot express the drop (reverse KL of
        instance weights, which must stay positive).

    Examples
    --------
    >>> from divweights import KL, TotalVariation, ReverseKL, noise_radius
    >>> round(noise_radius(KL(), 0.6), 4)  # -log(0.4)
    0.9163
    >>> noise_radius(TotalVariation(), 0.25)
    0.25
    >>> round(noise_radius(ReverseKL(), 0.6, problem="class"), 4)
    0.9163
    """
    if not isinstance(divergence, Divergence):
        raise TypeError(f"divergence must be a divweights divergence such as KL(); got {divergence!r}")
    if problem not in _PROBLEMS:
        raise ValueError(f"problem must be one of {_PROBLEMS}; got {problem!r}")
    as_float = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
    if as_float:
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must lie in [0, 1); got {rate!r}")
        import numpy as np

        r = np.asarray(rate, dtype=np.float64)
    else:
        r = prepare(rate, "rate", min_ndim=0)[0]  # not checked: it may be traced or on a device
    xp = prepare(r, "rate", min_ndim=0)[1].xp
    eps = xp.finfo(r.dtype).eps
    r = clip(xp, r, 0.0, 1.0 - eps)
    closed = _closed_form(divergence, problem)
    if closed is not None:  # the common cases in one or two element-wise ops
        radius = -xp.log1p(-r) if closed == "log" else r
        return float(radius) if as_float else radius
    kept, dropped = 1.0 - r, r
    one, zero = xp.ones_like(r), xp.zeros_like(r)
    # two bins: the kept part and the dropped part; an f-divergence of distributions
    # that are constant on each bin equals the divergence of the two-bin masses
    pair_p = xp.stack([one, zero], axis=-1)
    pair_q = xp.stack([kept, dropped], axis=-1)
    with quiet(xp):
        if problem == "instance":
            radius = divergence(pair_p, pair_q)
        else:
            radius = divergence(pair_q, pair_p)
    if as_float:
        return float(radius)
    return radius
