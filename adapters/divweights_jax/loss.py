r"""Reweighted cross-entropy for JAX: CIW and CICW in one pure function.

:func:`reweighted_loss` turns logits and labels into the constrained
instance- (and optionally class-) reweighted loss of Kumar & Amid (2021).  It is
a thin layer over the framework-free core: it computes the per-class
cross-entropies, hands them (with gradients stopped) to
:func:`divweights.class_weights` and :func:`divweights.instance_weights`, and
returns the weighted sum.  Everything is a pure function of its inputs, so it
composes with ``jax.jit``, ``jax.grad`` and ``jax.vmap``; hyperparameters may be
traced 0-d arrays so that an annealing schedule never triggers recompilation.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

import divweights
from divweights import KL, Divergence
from divweights.defaults import DEFAULT_DELTA  # the shared default; its module holds the evidence

__all__ = ["DEFAULT_DELTA", "reweighted_loss"]

_KL = KL()


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_zero(x) -> bool:
    """True only when ``x`` is known (not traced) to be exactly zero."""
    if isinstance(x, numbers.Real):
        return float(x) == 0.0
    if _is_traced(x):
        return False
    return bool(np.all(np.asarray(x) == 0))


def _check_real_scalar(name, value):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, not bool")
    if isinstance(value, numbers.Real):
        return
    shape = getattr(value, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must be a real number or a 0-d array; got {type(value).__name__}")
    if tuple(shape) != ():
        raise ValueError(f"{name} must be a scalar (0-d); got shape {tuple(shape)}")


def _check_label_smoothing(value):
    _check_real_scalar("label_smoothing", value)
    if isinstance(value, numbers.Real) or not _is_traced(value):
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1]; got {v!r}")


def _target_probabilities(targets, n, k, dtype):
    """Integer labels ``(n,)`` or probabilities ``(n, k)`` as probabilities ``(n, k)``."""
    targets = jnp.asarray(targets)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if targets.shape != (n,):
            raise ValueError(f"integer targets must have shape ({n},) to match logits; got {targets.shape}")
        if not _is_traced(targets) and n > 0:
            concrete = np.asarray(targets)  # numpy: jnp would trace this under jit
            lo, hi = int(concrete.min()), int(concrete.max())
            if lo < 0 or hi >= k:
                raise ValueError(f"integer targets must lie in [0, {k}) for {k} classes; got values in [{lo}, {hi}]")
        return jax.nn.one_hot(targets, k, dtype=dtype)
    if jnp.issubdtype(targets.dtype, jnp.floating):
        if targets.shape != (n, k):
            raise ValueError(f"probability targets must have the shape of logits ({n}, {k}); got {targets.shape}")
        return targets.astype(dtype)
    raise TypeError(f"targets must be integer labels or floating probabilities; got dtype {targets.dtype}")


def _dot_rows(p, L):
    """``sum_j p_ij L_ij`` with ``0 * inf = 0`` (a class of zero weight contributes nothing)."""
    return jnp.sum(jnp.where(p > 0, p * L, jnp.zeros_like(L)), axis=-1)


def reweighted_loss(
    logits,
    targets,
    *,
    instance=_KL,
    lam=None,
    delta=None,
    temperature=None,
    classes=None,
    gamma=0.0,
    label_smoothing=0.0,
    mask=None,
    axis_name=None,
):
    r"""Instance- (and class-) reweighted cross-entropy of a mini-batch.

    With :math:`L_{ij} = -\log\mathrm{softmax}(z_i)_j` and labels :math:`y_i`,
    the per-example loss is :math:`l_i = \langle y_i, L_i\rangle`.  When
    ``classes`` is given, the label is first moved within ``gamma`` of itself
    towards the classes the model finds likely,
    :math:`\tilde l_i = \langle v_i, L_i\rangle` with
    ``v = divweights.class_weights(L, targets, classes, gamma=gamma)``
    (CICW); otherwise :math:`\tilde l_i = l_i` (CIW).  The instance weights
    ``w = divweights.instance_weights(l~, instance, ...)`` minimise the
    weighted loss within a divergence ball around uniform, and the returned
    loss is :math:`\sum_i w_i \tilde l_i`.  ``v`` and ``w`` are held constant
    (``jax.lax.stop_gradient``): by Danskin's theorem the gradient is then the
    gradient of the optimal value of the inner problems.

    Parameters
    ----------
    logits : array, shape (n, k)
        Unnormalised scores.  Computed in at least float32 (half precision is
        upcast; float64 stays float64).
    targets : array
        Integer labels of shape ``(n,)`` or probabilities of shape ``(n, k)``
        (for example mixed labels from :func:`~divweights_jax.weighted_mixup`).
    instance : Divergence or None, default ``KL()``
        Divergence of the instance constraint.  ``None`` gives uniform
        weights over the unmasked rows (plain cross-entropy, or class
        reweighting alone).
    lam, delta, temperature : float or 0-d array, optional
        At most one; the strength of the instance reweighting, as in
        :func:`divweights.instance_weights`.  If none is given and
        ``instance`` is ``KL()``, ``delta = DEFAULT_DELTA`` (other
        divergences need an explicit value; ``instance=None`` takes none).
        May be traced arrays (see
        :func:`~divweights_jax.scaled_strength`).
    classes : Divergence, optional
        Divergence of the class problem (``TotalVariation()``,
        ``ReverseKL()``, ``SquaredL2()``, or ``KL()`` for soft targets).
        ``None`` disables class reweighting.
    gamma : float or 0-d array, default 0.0
        Radius of the class constraint (ignored when ``classes`` is None).
    label_smoothing : float or 0-d array, default 0.0
        ``y <- (1 - s) y + s / k`` before anything else.  When nonzero (or
        traced) the class problem sees the smoothed probabilities.
    mask : bool array, shape (n,), optional
        ``False`` rows (padding) are excluded: they get weight zero and
        contribute neither loss nor gradient.  If every row is masked the
        loss is ``0`` with zero gradients.
    axis_name : hashable, optional
        Name of a mapped axis (``jax.shard_map``, ``jax.pmap``,
        ``jax.vmap(..., axis_name=...)``) over which the mini-batch is
        split.  The per-example losses are all-gathered, the instance weights
        are computed on the global batch and this device keeps its own slice;
        the returned loss is this device's share
        :math:`\sum_{i \in \text{local}} w_i \tilde l_i`.  ``jax.lax.psum`` the
        loss (or the gradients) over ``axis_name`` to obtain the
        single-device loss of the concatenated batch.  Every device must hold
        the same number of rows.

    Returns
    -------
    loss : 0-d array
        The weighted loss (float32, or float64 for float64 logits).
    aux : dict
        ``'weights'``: instance weights ``(n,)`` (this device's slice; they
        sum to one over the global batch), ``'class_weights'``: ``v`` of shape
        ``(n, k)`` or ``None``, ``'losses'``: the per-example losses
        :math:`\tilde l` the weights were computed from ``(n,)``, with
        ``+inf`` on masked rows.  All held constant (no gradient).

    Raises
    ------
    ValueError
        For bad shapes, more than one of ``lam``/``delta``/``temperature``,
        or out-of-range labels and hyperparameters (when not traced).
    TypeError
        For a divergence class passed instead of an instance, or bad dtypes.

    See Also
    --------
    divweights.instance_weights, divweights.class_weights

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from divweights import KL, TotalVariation
    >>> from divweights_jax import reweighted_loss
    >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -3.0]])
    >>> labels = jnp.array([0, 1, 2])
    >>> loss, aux = reweighted_loss(logits, labels, temperature=1.0)
    >>> [round(float(w), 3) for w in aux["weights"]]
    [0.567, 0.415, 0.018]

    The third example, badly fit (a likely noisy label), is down-weighted.
    Class reweighting (CICW) with total variation and gradients under ``jit``:

    >>> f = lambda z: reweighted_loss(z, labels, temperature=1.0,
    ...                               classes=TotalVariation(), gamma=0.2)[0]
    >>> jax.jit(jax.grad(f))(logits).shape
    (3, 3)
    """
    if instance is not None and not isinstance(instance, Divergence):
        if isinstance(instance, type) and issubclass(instance, Divergence):
            raise TypeError(f"pass a divergence instance such as {instance.__name__}(), not the class itself")
        raise TypeError(f"instance must be a divweights Divergence or None; got {instance!r}")
    if classes is not None and not isinstance(classes, Divergence):
        if isinstance(classes, type) and issubclass(classes, Divergence):
            raise TypeError(f"pass a divergence instance such as {classes.__name__}(), not the class itself")
        raise TypeError(f"classes must be a divweights Divergence or None; got {classes!r}")
    strength = {k: v for k, v in (("lam", lam), ("delta", delta), ("temperature", temperature)) if v is not None}
    if len(strength) > 1:
        raise ValueError(f"give at most one of lam, delta, temperature; got {' and '.join(strength)}")
    if instance is None and strength:
        raise ValueError(f"{' and '.join(strength)} given but instance=None (uniform weights); pass a divergence")
    if instance is not None and not strength:
        if type(instance) is not KL:
            raise ValueError(
                f"give one of lam=, delta=, temperature= for {instance!r}: the default "
                f"delta={DEFAULT_DELTA} is a KL radius and only applies to instance=KL()"
            )
        strength = {"delta": DEFAULT_DELTA}
    _check_label_smoothing(label_smoothing)
    _check_real_scalar("gamma", gamma)

    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (n, k); got {logits.shape} (use jax.vmap for extra batch axes)")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"logits must be floating; got dtype {logits.dtype}")
    n, k = logits.shape
    if k == 0:
        raise ValueError("logits must have at least one class")
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    logits = logits.astype(dtype)

    if mask is None:
        valid = jnp.ones((n,), dtype=bool)
    else:
        valid = jnp.asarray(mask)
        if valid.dtype != jnp.bool_:
            raise TypeError(f"mask must be a boolean array; got dtype {valid.dtype}")
        if valid.shape != (n,):
            raise ValueError(f"mask must have shape ({n},); got {valid.shape}")
        # Masked rows may hold garbage (padding): replace it so that neither
        # the loss nor its gradient can see a NaN or an infinity there.
        logits = jnp.where(valid[:, None], logits, jnp.zeros_like(logits))

    L = -jax.nn.log_softmax(logits, axis=-1)
    y = _target_probabilities(targets, n, k, dtype)
    smoothed = not _is_zero(label_smoothing)
    if smoothed:
        s = jnp.asarray(label_smoothing, dtype=dtype)
        y = (1 - s) * y + s / k

    if classes is None:
        v = None
        per_example = _dot_rows(y, L)
    else:
        class_targets = y if smoothed else jnp.asarray(targets)
        v = jax.lax.stop_gradient(
            divweights.class_weights(jax.lax.stop_gradient(L), class_targets, classes, gamma=gamma)
        ).astype(dtype)
        per_example = _dot_rows(v, L)

    detached = jax.lax.stop_gradient(per_example)
    for_weights = jnp.where(valid, detached, jnp.full_like(detached, jnp.inf))

    if axis_name is None:
        gathered = for_weights
    else:
        gathered = jax.lax.all_gather(for_weights, axis_name, tiled=True)

    if instance is None:
        keep = gathered != jnp.inf  # NaN rows stay in and propagate
        count = jnp.sum(keep)
        w_all = jnp.where(keep, 1.0 / jnp.maximum(count, 1), 0.0).astype(dtype)
    else:
        w_all = divweights.instance_weights(gathered, instance, **strength)

    if axis_name is None:
        w = w_all
    else:
        start = jax.lax.axis_index(axis_name) * n
        w = jax.lax.dynamic_slice_in_dim(w_all, start, n)
    # A fully masked batch gets uniform weights from the core: zero them here.
    w = jax.lax.stop_gradient(jnp.where(valid, w, jnp.zeros_like(w)).astype(dtype))

    loss = jnp.sum(jnp.where(valid, w * per_example, jnp.zeros_like(per_example)))
    aux = {"weights": w, "class_weights": v, "losses": for_weights}
    return loss, aux
