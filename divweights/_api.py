"""Public entry points: :func:`instance_weights`, :func:`class_weights`."""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys

from ._array import check_scalar, is_concrete, is_eager_numpy, prepare, quiet, scalar, where
from ._inputs import detach, integer_targets, same_library
from .divergences import _check_divergence
from .solvers.total_variation import move_labels_numpy
from .strength import Strength

__all__ = ["class_weights", "instance_weights", "reweighted_class_losses"]


def _nan_rows(xp, x, out):
    """Rows of ``x`` holding a NaN give all-NaN rows of ``out``: one reduction and a
    selection, or (NumPy) a host check that leaves ``out`` alone when there is no NaN."""
    if is_eager_numpy(xp, x):
        import numpy as np

        # one sum over the whole array is NaN when any entry is (or when +inf meets -inf): only
        # then look at the rows
        if not np.isnan(np.add.reduce(x, axis=None)):
            return out
        low = np.min(x, axis=-1, keepdims=True)
        return np.where(np.isnan(low), low, out)
    low = xp.min(x, axis=-1, keepdims=True)  # NaN exactly on the rows holding one
    return xp.where(xp.isnan(low), low, out)


def instance_weights(losses, divergence, /, *, lam=None, delta=None, temperature=None):
    r"""Weights over a mini-batch that minimise the weighted loss near uniform.

    Solves, independently for every leading index, over the last axis
    (the mini-batch, of size :math:`n`) and :math:`u = 1/n`:

    * ``lam``: :math:`\min_{w\in\Delta_n} \langle w, \ell\rangle + \lambda D(w\|u)`;
    * ``delta``: :math:`\min_{w\in\Delta_n} \langle w, \ell\rangle` s.t. :math:`D(w\|u) \le \delta`
      (exact: the constraint is active whenever it binds, and the result is the
      closest-to-uniform minimiser when it does not);
    * ``temperature`` (Alpha family and KL): the published implementation's
      weights, ``w ∝ exp(-l / T)`` for KL and
      ``w ∝ max((1 - a) l + T, 0) ** (1 / (a - 1))`` for ``Alpha(a)``, normalised.
      For KL ``T`` is exactly ``lam``; for other alphas ``T`` is the shift of
      the power law, not the multiplier (see the docs for the map).

    Parameters
    ----------
    losses : array, shape (..., n)
        Per-example losses (any array-API library; integers are promoted).
    divergence : Divergence
        ``KL()``, ``ReverseKL()``, ``Alpha(a)``, ``ChiSquared()``,
        ``TotalVariation()`` or ``SquaredL2()``.
    lam, delta, temperature : float or 0-d array
        Exactly one.  ``lam > 0`` and ``temperature > 0`` (``inf`` means
        uniform weights); ``delta >= 0``.  Values may be traced (``jax.jit``).
        A Python-number ``delta`` for KL reaches the solver as a number: a constant
        of a compiled or jitted function, which builds its bracket and grid without
        array operations (a new number is a new constant: pass an array for a radius
        that changes between calls of one compiled function).

    Returns
    -------
    weights : array, shape (..., n)
        Nonnegative, summing to one along the last axis, in the namespace,
        dtype and device of ``losses`` (float16/bfloat16 are computed in
        float32).  Higher losses never get more weight.

    Notes
    -----
    * An example with loss ``+inf`` is excluded: it gets weight zero and the
      divergence is measured against the uniform distribution over the
      others (masking an example by giving it an infinite loss is the same as
      removing it).  A row whose losses are all ``+inf`` gets uniform weights.
    * A row containing NaN returns NaN weights for the whole row.
    * The weights carry no gradient: ``losses`` (and an array strength) are
      detached first (``detach()`` for torch, ``jax.lax.stop_gradient`` for
      JAX).  They are meant to be held constant in the backward pass: by
      Danskin's theorem the gradient of the optimal value is
      :math:`\sum_i w^*_i \nabla \ell_i`.
    * The strength is parsed by :meth:`Strength.parse
      <divweights.strength.Strength.parse>` (``required=True``).  Its value is
      checked (sign, NaN) only when it is known eagerly: a Python number or a
      0-d array in host memory; traced values (``jax.jit``) and arrays on an
      accelerator are used as given.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import KL, instance_weights
    >>> losses = np.array([0.2, 0.3, 2.5, 0.1])
    >>> np.round(instance_weights(losses, KL(), lam=0.5), 3)
    array([0.328, 0.268, 0.003, 0.4  ])
    >>> w = instance_weights(losses, KL(), delta=0.1)
    >>> round(float(KL()(w, np.full(4, 0.25))), 6)
    0.1
    """
    strength = Strength.parse(divergence, lam=lam, delta=delta, temperature=temperature, required=True)
    l, work = prepare(detach(losses), "losses")
    xp = work.xp
    if l.shape[-1] == 0:
        raise ValueError("losses must hold at least one example along the last axis (empty batch)")
    value = strength.value
    if (
        strength.kind == "delta"
        and isinstance(value, numbers.Real)
        and divergence._number_radius()
        and not is_eager_numpy(xp, l)
    ):  # a Python number stays one: a constant of a jitted or compiled function, no array on the device
        s = min(float(value), float(work.finfo.max))
    else:
        s = scalar(work, detach(value))
    # one reduction finds both special rows: all +inf (min = inf) and NaN (min = NaN)
    low = xp.min(l, axis=-1, keepdims=True)
    with quiet(xp):
        if is_eager_numpy(xp, l):
            # host arrays: fix rows up only when there are any (no copy, no extra pass otherwise)
            all_inf, nan = low == math.inf, xp.isnan(low)
            if bool(xp.any(all_inf)):
                l = xp.where(all_inf, 0.0, l)
                low = xp.where(all_inf, 0.0, low)
            w = divergence.instance(l, strength.kind, s, dataclasses.replace(work, row_min=low))
            if bool(xp.any(nan)):
                w = xp.where(nan, low, w)
        else:  # no host read: two selections (jit and compile safe)
            l = where(xp, low == math.inf, 0.0, l)
            w = divergence.instance(l, strength.kind, s, work)
            w = where(xp, xp.isnan(low), low, w)
    return work.finish(w)


def _default_int(xp, device):
    return xp.__array_namespace_info__().default_dtypes(device=device)["integral"]


def _checked_targets(targets, L, work, class_losses):
    """Return ``(targets, integer)``: the targets detached, in ``L``'s library, integer labels
    range-checked (when their values can be read) and widened when their type cannot hold
    every class index."""
    xp = work.xp
    k = L.shape[-1]
    targets = detach(same_library(xp, targets, "targets", class_losses, "class_losses"))
    if not integer_targets(xp, targets, L):
        return targets, False
    numpy = is_eager_numpy(xp, targets)
    if (numpy or is_concrete(targets)) and math.prod(targets.shape) != 0:
        lo, hi = (targets.min(), targets.max()) if numpy else (xp.min(targets), xp.max(targets))
        # inside a jit trace even a constant's reduction is staged: check it is concrete
        if (numpy or is_concrete(lo)) and (int(lo) < 0 or int(hi) >= k):
            raise ValueError(
                f"integer targets must lie in [0, {k}) for {k} classes; got values in [{int(lo)}, {int(hi)}]"
            )
    if xp.iinfo(targets.dtype).max < k - 1:
        # a narrow type (uint8 labels, 300 classes) cannot hold every class index:
        # compare in the namespace's default integer type instead of wrapping
        targets = xp.astype(targets, _default_int(xp, work.device))
    return targets, True


def _as_probabilities(targets, integer: bool, L, work):
    """Checked targets (:func:`_checked_targets`) as rows of ``L``'s shape and dtype: one-hot
    rows for labels, probability rows (value-checked when readable, renormalised) otherwise."""
    xp = work.xp
    k = L.shape[-1]
    if integer:
        if is_eager_numpy(xp, targets):
            return (targets[..., None] == sys.modules["numpy"].arange(k)).astype(work.dtype)
        classes = xp.arange(k, dtype=targets.dtype, device=work.device)
        return xp.astype(targets[..., None] == classes, work.dtype)
    y = xp.astype(targets, work.dtype)
    if is_concrete(y) and math.prod(y.shape) != 0:
        bad = xp.any(y < 0) | ~xp.all(xp.isfinite(y))
        # the tolerance follows the targets' own precision: a bfloat16 softmax is
        # off by ~1e-3 (its eps is 2**-7), and cross-entropy accepts it
        tol = max(1e-3 if work.finfo.bits < 64 else 1e-6, 4 * float(xp.finfo(targets.dtype).eps))
        off = xp.any(xp.abs(xp.sum(y, axis=-1) - 1.0) > tol)
        if is_concrete(bad):
            if bool(bad):
                raise ValueError("probability targets must be finite and nonnegative")
            if bool(off):
                raise ValueError("probability targets must sum to 1 along the last axis")
    return y / xp.sum(y, axis=-1, keepdims=True)


def class_weights(class_losses, targets, divergence, /, *, gamma):
    r"""Per-example weights over the classes, near the label.

    For every row :math:`i`, solves
    :math:`\min_{v\in\Delta_k}\langle v, \ell_{i\cdot}\rangle` s.t. :math:`D(v\|y_i) \le \gamma`.

    Parameters
    ----------
    class_losses : array, shape (..., k)
        Loss of each class, e.g. ``-log_softmax(logits)``.
    targets : array
        Integer labels of shape ``(...)`` or probabilities of shape ``(..., k)``.
    divergence : Divergence
        ``TotalVariation()`` (``gamma`` is half the L1 radius; one-hot labels
        give hard bootstrapping), ``ReverseKL()`` (``KL(target || v) <= gamma``),
        ``SquaredL2()``, or ``KL()`` (probability targets only:
        ``v ∝ target * exp(-class_losses / lam)``, loss-adaptive label smoothing).
    gamma : float or 0-d array
        Radius, ``>= 0``.  ``0`` returns the targets.  A radius at or above
        ``divergence.max_class_radius`` (``1`` for ``TotalVariation()``: no
        two distributions are farther apart) leaves the whole simplex
        feasible, so ``TotalVariation()`` with ``gamma > 1`` gives exactly the
        weights of ``gamma = 1`` (all mass on the lowest-loss classes).  If
        you have an L1 radius ``r``, pass ``gamma = r / 2``.

    Returns
    -------
    v : array, shape (..., k)
        Rows on the simplex; namespace, dtype and device of ``class_losses``.
        No gradient: the inputs are detached first.

    Raises
    ------
    TypeError
        ``targets`` from another array library than ``class_losses`` (NumPy
        targets with JAX losses are accepted and converted, as JAX itself
        does), boolean targets, or a non-divergence.
    ValueError
        Shapes that do not match; labels outside ``[0, k)``; probability
        targets that are negative, non-finite or do not sum to one (within a
        tolerance that follows the targets' dtype: ``4 eps``, at least
        ``1e-3``, or ``1e-6`` in float64 work); ``gamma`` negative or NaN.

    Notes
    -----
    Integer labels of any integer type are accepted; a type too narrow to
    hold every class index (``uint8`` with 300 classes) is widened to the
    namespace's default integer type before comparing.  Value checks (label
    range, probability rows, ``gamma``) run when the values are known
    eagerly (host memory, not traced); under ``jax.jit`` and on accelerators
    they are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import TotalVariation, class_weights
    >>> L = np.array([[2.0, 0.1, 1.0]])
    >>> class_weights(L, np.array([0]), TotalVariation(), gamma=0.3)
    array([[0.7, 0.3, 0. ]])
    """
    _check_divergence(divergence)
    L, work = prepare(detach(class_losses), "class_losses")
    xp = work.xp
    if L.shape[-1] == 0:
        raise ValueError("class_losses must have at least one class along the last axis")
    gamma = detach(gamma)
    check_scalar("gamma", gamma, positive=False)
    targets, integer = _checked_targets(targets, L, work, class_losses)
    if integer and is_eager_numpy(xp, L) and _host_number(gamma):
        # NumPy labels, a radius known on the host and no NaN row: closed forms skip the one-hot
        # targets and the array-API layer (small batches feel every call)
        keep = divergence._label_keep(float(gamma), work) if not math.isnan(L.sum()) else None
        if keep is not None:
            return work.finish(move_labels_numpy(L, targets, keep))
    g = scalar(work, gamma)
    with quiet(xp):
        v = divergence.class_problem(L, _as_probabilities(targets, integer, L, work), integer, g, work)
        v = _nan_rows(xp, L, v)
    return work.finish(v)


def _host_number(x) -> bool:
    """A Python real number or a NumPy scalar / 0-d array (readable without a device sync)."""
    if isinstance(x, numbers.Real):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, (np.ndarray, np.generic))


def reweighted_class_losses(class_losses, targets, divergence, /, *, gamma):
    r"""The class-reweighted loss :math:`\langle v^*, \ell\rangle` of every row.

    Same arguments as :func:`class_weights`; classes with zero weight
    contribute zero even when their loss is infinite.  The weights
    :math:`v^*` are computed from the detached losses and held constant, so
    the result is differentiable in ``class_losses`` with Danskin's gradient
    :math:`\sum_c v^*_c \nabla \ell_c` (torch autograd, ``jax.grad``).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import TotalVariation, reweighted_class_losses
    >>> L = np.array([[2.0, 0.1, 1.0]])
    >>> np.round(reweighted_class_losses(L, np.array([0]), TotalVariation(), gamma=0.3), 6)
    array([1.43])
    """
    v = class_weights(class_losses, targets, divergence, gamma=gamma)
    L, work = prepare(class_losses, "class_losses")
    xp = work.xp
    v_w = xp.astype(v, work.dtype)
    with quiet(xp):
        out = xp.sum(xp.where(v_w > 0, v_w * L, xp.zeros_like(L)), axis=-1)
    return work.finish(out)
