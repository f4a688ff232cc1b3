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
from jax.experimental import checkify

import divweights
import divweights.adaptive
import divweights.mixup
from divweights import KL, Divergence
from divweights._array import is_concrete
from divweights.adaptive import DEFAULT_NOISE_MOMENTUM, DEFAULT_NOISE_SHARPNESS
from divweights.defaults import DEFAULT_DELTA  # the shared default; its module holds the evidence
from divweights.strength import KINDS, Strength, _check_real_or_0d

__all__ = ["DEFAULT_DELTA", "reweighted_loss"]

_KL = KL()


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_concrete(x) -> bool:
    """True when ``x``'s values can be read cheaply: a Python number, a NumPy
    array, or a JAX array that is not traced and lives in host memory (reading
    an accelerator's array would synchronise the device; the core skips those
    checks for the same reason)."""
    if isinstance(x, (numbers.Number, np.ndarray, np.generic)):
        return True
    if _is_traced(x):
        return False
    try:
        return all(d.platform == "cpu" for d in x.devices())
    except (AttributeError, TypeError, RuntimeError):  # pragma: no cover - an array type we do not know
        return False


def _is_zero(x) -> bool:
    """True only when ``x`` is known (not traced) to be exactly zero."""
    if isinstance(x, numbers.Real):
        return float(x) == 0.0
    if _is_traced(x):
        return False
    return bool(np.all(np.asarray(x) == 0))


def _check_label_smoothing(value):
    _check_real_or_0d("label_smoothing", value)
    if _is_concrete(value):
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1]; got {v!r}")


def _check_divergence(name, value):
    if value is None or isinstance(value, Divergence):
        return
    if isinstance(value, type) and issubclass(value, Divergence):
        raise TypeError(f"pass a divergence instance such as {value.__name__}(), not the class itself")
    raise TypeError(f"{name} must be a divweights Divergence or None; got {value!r}")


def _instance_strength(instance, lam, delta, temperature) -> Strength | None:
    """The instance strength, parsed once by the core (``None`` for ``instance=None``)."""
    if instance is None:
        given = [k for k, v in zip(KINDS, (lam, delta, temperature)) if v is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} given but instance=None (uniform weights); pass a divergence")
        return None
    return Strength.parse(instance, lam=lam, delta=delta, temperature=temperature)


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


def _check_auto(instance, lam, temperature, classes, auto_delta, auto_gamma, momentum):
    """Eager checks of ``delta="auto"`` / ``gamma="auto"`` (plain Python; nothing traced is read)."""
    if auto_delta:
        if instance is None:
            raise ValueError("delta='auto' given but instance=None (uniform weights); pass a divergence")
        if lam is not None or temperature is not None:
            raise ValueError("give at most one of lam, delta, temperature; got delta='auto' and another")
        if not divweights.adaptive._adaptive_ok(instance, "instance"):
            raise ValueError(
                f"delta='auto' needs an f-divergence whose radius can drop examples (KL, Alpha(a) with a > 0, "
                f"ChiSquared, TotalVariation); got {instance!r}"
            )
    if auto_gamma and (classes is None or not divweights.adaptive._adaptive_ok(classes, "class")):
        raise ValueError(f"gamma='auto' needs TotalVariation() or ReverseKL() class weights; got {classes!r}")
    divweights.adaptive._check_momentum(momentum)


def _pick(L, labels):
    """``L[i, labels[i]]``, NaN where a label lies outside ``[0, k)`` (negative
    labels included: ``take_along_axis`` alone would wrap them around)."""
    k = L.shape[-1]
    idx = jax.lax.select(labels < 0, jnp.full_like(labels, k), labels)  # out of range -> NaN fill below
    return jnp.take_along_axis(L, idx[:, None], axis=-1, mode="fill", fill_value=jnp.nan)[:, 0]


def _target_probabilities(targets, n, k, dtype):
    """Integer labels ``(n,)`` or probabilities ``(n, k)`` as probabilities ``(n, k)``."""
    if jnp.issubdtype(targets.dtype, jnp.integer):
        return jax.nn.one_hot(targets, k, dtype=dtype)
    return targets.astype(dtype)


def _check_targets(targets, n, k):
    """Shapes and dtypes always; integer label range only when concrete."""
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if targets.shape != (n,):
            raise ValueError(f"integer targets must have shape ({n},) to match logits; got {targets.shape}")
        if n > 0 and _is_concrete(targets):
            concrete = np.asarray(targets)  # numpy: jnp would trace this under jit
            lo, hi = int(concrete.min()), int(concrete.max())
            if lo < 0 or hi >= k:
                raise ValueError(f"integer targets must lie in [0, {k}) for {k} classes; got values in [{lo}, {hi}]")
        return True
    if jnp.issubdtype(targets.dtype, jnp.floating):
        if targets.shape != (n, k):
            raise ValueError(f"probability targets must have the shape of logits ({n}, {k}); got {targets.shape}")
        return False
    raise TypeError(f"targets must be integer labels or floating probabilities; got dtype {targets.dtype}")


def _eager_nan_to_zero(radius):
    """An adaptive radius, ``0`` where it is NaN when the core would check it: eagerly, in host memory
    (:func:`divweights._array.is_concrete`; one host read, as the core's own check makes; under ``jit`` and
    on an accelerator the radius is used as given).  A NaN estimate (NaN or infinite logits) would fail
    that check ('delta must not be NaN', a radius the caller never gave); the loss is NaN from its losses
    anyway, as under ``jit`` and in the torch adapter."""
    if not is_concrete(radius) or not bool(jnp.isnan(radius)):
        return radius
    return jnp.zeros_like(radius)


def _dot_rows(p, L):
    """``sum_j p_ij L_ij`` with ``0 * inf = 0`` (a class of zero weight contributes nothing, also where
    its loss is infinite); a NaN weight or loss stays NaN (a test ``p > 0`` would drop a NaN weight)."""
    return jnp.sum(jnp.where(p == 0, jnp.zeros_like(L), p * L), axis=-1)


def _run_checks(*, targets, integer, k, valid, strength, gamma, classes, label_smoothing, losses):
    """The value checks of ``checked=True``, as :func:`jax.experimental.checkify.check` calls."""
    check = checkify.check
    if valid is None:
        valid = jnp.ones(losses.shape, dtype=bool)
    if integer:
        bad = valid & ((targets < 0) | (targets >= k))
        lo = jnp.min(jnp.where(valid, targets, 0))
        hi = jnp.max(jnp.where(valid, targets, 0))
        check(
            ~jnp.any(bad),
            f"integer targets must lie in [0, {k}) for {k} classes; got values in [{{lo}}, {{hi}}]",
            lo=lo,
            hi=hi,
        )
    else:
        y = targets.astype(jnp.promote_types(targets.dtype, jnp.float32))
        rows_ok = jnp.all(jnp.isfinite(y) & (y >= 0), axis=-1)
        check(jnp.all(rows_ok | ~valid), "probability targets must be finite and nonnegative")
        tol = 1e-6 if jnp.finfo(targets.dtype).bits >= 64 else float(max(1e-3, 8 * jnp.finfo(targets.dtype).eps))
        err = jnp.max(jnp.where(valid, jnp.abs(jnp.sum(y, axis=-1) - 1), 0))
        check(
            err <= tol,
            f"probability targets must sum to 1 along the last axis (to {tol:g}); a row is off by {{err}}",
            err=err,
        )
    if strength is not None:
        s = jnp.asarray(strength.value)
        if strength.kind == "delta":
            check(s >= 0, "delta must be >= 0; got {s}", s=s)
        else:
            check(s > 0, f"{strength.kind} must be > 0; got {{s}}", s=s)
    if classes is not None:
        g = jnp.asarray(gamma)
        check(g >= 0, "gamma must be >= 0; got {g}", g=g)
    ls = jnp.asarray(label_smoothing)
    check((ls >= 0) & (ls <= 1), "label_smoothing must lie in [0, 1]; got {ls}", ls=ls)
    bad = valid & ~jnp.isfinite(losses)
    first = jnp.argmax(bad)
    check(
        ~jnp.any(bad),
        "the loss of example {i} is not finite ({value}): check the logits for NaN or inf",
        i=first,
        value=losses[first],
    )


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
    balance_classes=False,
    label_smoothing=0.0,
    mask=None,
    axis_name=None,
    checked=False,
    noise_rate=None,
    noise_momentum=DEFAULT_NOISE_MOMENTUM,
    noise_sharpness=DEFAULT_NOISE_SHARPNESS,
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
        :func:`divweights.instance_weights`.  May be traced arrays (see
        :func:`~divweights_jax.scaled_strength`).  ``delta="auto"`` (the
        default when none is given and ``instance`` is ``KL()``; also for
        ``Alpha(a)`` with ``a > 0``, ``ChiSquared()`` and
        ``TotalVariation()``) sets the radius from the batch's estimated
        noise rate, :func:`divweights.noise_radius` of
        :func:`divweights.noise_rate` (see ``noise_rate`` below): no noise
        rate to know, as :class:`divweights_torch.ReweightedLoss`.  The
        previous fixed default is ``delta=DEFAULT_DELTA``.  Other
        divergences need an explicit value; ``instance=None`` takes none.
    classes : Divergence, optional
        Divergence of the class problem (``TotalVariation()``,
        ``ReverseKL()``, ``SquaredL2()``, or ``KL()`` for soft targets).
        ``None`` disables class reweighting.
    gamma : float or 0-d array, default 0.0
        Radius of the class constraint (ignored when ``classes`` is None).
    balance_classes : bool, default False
        Shrink the batch's class-weight shift towards the labels by how much
        of it is a net flow of mass into some classes
        (:func:`divweights.mixup.balance_class_shift`; masked rows move
        nothing; with ``axis_name``, per device).  Needs ``classes``.  The
        training program turns it on for CICW-M, where such a shift feeds
        itself through the mixed targets and collapses training to one class.
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
        the same number of rows.  The adaptive radii estimate the noise rate
        of the global batch (the class losses and targets are all-gathered
        too, ``n x k`` values per device), so every device uses one radius.
    noise_rate : float or 0-d array, optional
        State of ``delta="auto"`` and ``gamma="auto"`` (the adaptive radii).
        ``None`` (a pure call, no state): the radius comes from this batch's
        estimate alone, ``divweights.noise_rate(L, targets)`` (as
        ``ReweightedLoss(noise_momentum=0)``).  Given, it is the tracked rate
        so far (``0.0`` at the first step; carry ``aux["noise_rate"]`` to the
        next step, e.g. in the train state) and the radius comes from
        ``divweights.track_noise_rate(noise_rate, L, targets)``, the moving
        average that :class:`divweights_torch.ReweightedLoss` keeps by
        default (a batch with a NaN or infinite logit, or none unmasked, hands
        the rate back unchanged; its loss is NaN).  The two differ by dataset
        (README, "No noise rate needed": ``momentum:0`` is the batch's own
        estimate, ``auto`` the average).
    noise_momentum : float, default ``divweights.adaptive.DEFAULT_NOISE_MOMENTUM``
        Momentum of the tracked rate (used when ``noise_rate`` is given).
    noise_sharpness : float, default ``divweights.adaptive.DEFAULT_NOISE_SHARPNESS``
        Exponent of the per-example noise score (:func:`divweights.noise_rate`).
    checked : bool, default False
        Also validate the *values* of traced inputs with
        :func:`jax.experimental.checkify.check`: integer targets in
        ``[0, k)``, probability targets finite, nonnegative and summing to
        one, ``lam > 0`` / ``temperature > 0`` / ``delta >= 0``,
        ``gamma >= 0``, ``label_smoothing`` in ``[0, 1]``, and finite
        per-example losses (NaN or infinite logits) on unmasked rows.  Wrap
        the function that calls this one with :func:`checkify.checkify
        <jax.experimental.checkify.checkify>` and call ``err.throw()`` on
        its error output (see the example); called eagerly (no ``jit``) a
        failed check raises at once.  Under ``jit`` without ``checkify``
        tracing fails with "Cannot abstractly evaluate a checkify.check which
        was not functionalized".  The checks add a few reductions and one
        device-to-host read of the error per step; leave them off in
        production and turn them on to debug.

    Returns
    -------
    loss : 0-d array
        The weighted loss (float32, or float64 for float64 logits).
    aux : dict
        ``'weights'``: instance weights ``(n,)`` (this device's slice; they
        sum to one over the global batch), ``'class_weights'``: ``v`` of shape
        ``(n, k)`` or ``None``, ``'losses'``: the per-example losses
        :math:`\tilde l` the weights were computed from ``(n,)``, with
        ``+inf`` on masked rows; with an adaptive radius also
        ``'noise_rate'``, the rate it came from (0-d; pass it as
        ``noise_rate`` to the next step to track it).  All held constant (no
        gradient).

    Raises
    ------
    ValueError
        For bad shapes, more than one of ``lam``/``delta``/``temperature``,
        or out-of-range labels and hyperparameters (values only when they
        are known, see Notes).
    TypeError
        For a divergence class passed instead of an instance, or bad dtypes.

    Notes
    -----
    **Which checks run under tracing.**  Shapes, dtypes, divergences and the
    choice of strength are always checked.  Values are checked only when they
    can be read without a device synchronisation: Python numbers, NumPy
    arrays and JAX arrays in host memory outside ``jit``.  Under ``jit`` (or
    for arrays on an accelerator) these checks are skipped: label range,
    sign of ``lam``/``delta``/``temperature``/``gamma``, range of
    ``label_smoothing``, and the probability targets.  Skipped does not
    mean silent for labels: an integer label outside ``[0, k)`` gives a
    NaN per-example loss, hence NaN weights and a NaN loss.  A negative
    traced strength, however, silently puts the weight on the highest
    losses.  Pass ``checked=True`` to turn every one of these into an
    error under ``jit``.

    The default call (integer labels, no class reweighting, no mask) costs
    one ``log_softmax``, one gather, the batch's noise-rate estimate and the
    core's weights; with
    ``lam``/``temperature`` given as traced arrays and the annealing of
    :func:`~divweights_jax.scaled_strength`, a training step compiles once.

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
    The default radius adapts to the batch; carry its noise rate from step to
    step to smooth it (``ReweightedLoss()``'s default):

    >>> loss, aux = reweighted_loss(logits, labels)  # delta="auto", this batch's estimate alone
    >>> round(float(aux["noise_rate"]), 3), round(float(aux["weights"][2]), 3)
    (0.345, 0.002)
    >>> state = 0.0  # before the first step
    >>> loss, aux = reweighted_loss(logits, labels, noise_rate=state)
    >>> state = aux["noise_rate"]  # 0.05 x this batch's rate: the radius grows as the model learns

    Class reweighting (CICW) with total variation and gradients under ``jit``:

    >>> f = lambda z: reweighted_loss(z, labels, temperature=1.0,
    ...                               classes=TotalVariation(), gamma=0.2)[0]
    >>> jax.jit(jax.grad(f))(logits).shape
    (3, 3)

    Checked mode turns bad traced values into errors under ``jit``:

    >>> from jax.experimental import checkify
    >>> g = checkify.checkify(jax.jit(lambda z, y, lam: reweighted_loss(z, y, lam=lam, checked=True)[0]))
    >>> err, value = g(logits, jnp.array([0, 1, 5]), 1.0)
    >>> err.get().split(" (")[0]
    'integer targets must lie in [0, 3) for 3 classes; got values in [0, 5]'
    >>> err, value = g(logits, labels, -1.0)
    >>> err.get().split(" (")[0]
    'lam must be > 0; got -1.0'
    """
    _check_divergence("instance", instance)
    _check_divergence("classes", classes)
    auto_delta = divweights.adaptive._default_is_auto(instance, lam, delta, temperature)
    auto_gamma = _is_auto(gamma)
    if auto_delta or auto_gamma:
        _check_auto(instance, lam, temperature, classes, auto_delta, auto_gamma, noise_momentum)
    strength = None if auto_delta else _instance_strength(instance, lam, delta, temperature)
    _check_label_smoothing(label_smoothing)
    if not isinstance(balance_classes, bool):
        raise TypeError(f"balance_classes must be a bool; got {type(balance_classes).__name__}")
    if balance_classes and classes is None:
        raise ValueError("balance_classes=True needs class reweighting: classes=... and gamma > 0 (or 'auto')")
    if not auto_gamma:
        _check_real_or_0d("gamma", gamma)

    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (n, k); got {logits.shape} (use jax.vmap for extra batch axes)")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"logits must be floating; got dtype {logits.dtype}")
    n, k = logits.shape
    if n == 0:
        raise ValueError("empty batch: logits has no rows")
    if k == 0:
        raise ValueError("logits must have at least one class")
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    logits = logits.astype(dtype)
    targets = jnp.asarray(targets)
    integer = _check_targets(targets, n, k)

    valid = None  # no mask: no masking work at all on the hot path
    if mask is not None:
        valid = jnp.asarray(mask)
        if valid.dtype != jnp.bool_:
            raise TypeError(f"mask must be a boolean array; got dtype {valid.dtype}")
        if valid.shape != (n,):
            raise ValueError(f"mask must have shape ({n},); got {valid.shape}")
        # Masked rows may hold garbage (padding): replace it so that neither
        # the loss nor its gradient can see a NaN or an infinity there.
        logits = jnp.where(valid[:, None], logits, jnp.zeros_like(logits))

    log_p = jax.nn.log_softmax(logits, axis=-1)
    rate = None
    if auto_delta or auto_gamma:  # the noise rate after this batch: tracked (divweights.track_noise_rate) or its own
        est_targets = targets if integer else jnp.asarray(targets, dtype)
        if integer and valid is not None:
            est_targets = jnp.where(valid, targets, 0)
        est_losses, est_valid = jax.lax.stop_gradient(-log_p), valid
        if axis_name is not None:  # the global batch's rate: one radius on every device (n x k per device)
            est_losses, est_targets = (jax.lax.all_gather(a, axis_name, tiled=True) for a in (est_losses, est_targets))
            if valid is not None:
                est_valid = jax.lax.all_gather(valid, axis_name, tiled=True)
        est = {"valid": est_valid, "sharpness": noise_sharpness}
        if noise_rate is None:  # no state carried: this batch's estimate alone
            rate = divweights.noise_rate(est_losses, est_targets, **est)
        else:
            rate = divweights.track_noise_rate(
                jnp.asarray(noise_rate, dtype), est_losses, est_targets, momentum=noise_momentum, **est
            )
        if auto_gamma:
            gamma = _eager_nan_to_zero(divweights.noise_radius(classes, rate, problem="class"))
    smoothed = not _is_zero(label_smoothing)
    v = None
    if integer and not smoothed and classes is None:
        per_example = -_pick(log_p, targets)  # plain cross-entropy: one gather
    else:
        L = -log_p
        y = _target_probabilities(targets, n, k, dtype)
        if smoothed:
            s = jnp.asarray(label_smoothing, dtype=dtype)
            y = (1 - s) * y + s / k
        if classes is None:
            per_example = _dot_rows(y, L)
        else:
            class_targets = y if smoothed else targets
            v = jax.lax.stop_gradient(
                divweights.class_weights(jax.lax.stop_gradient(L), class_targets, classes, gamma=gamma)
            ).astype(dtype)
            if balance_classes:  # masked rows move nothing
                v = divweights.mixup.balance_class_shift(v if valid is None else jnp.where(valid[:, None], v, y), y)
            per_example = _dot_rows(v, L)
        if integer:  # an out-of-range label is a zero row of y: make it loud (NaN), as on the gather path
            per_example = jnp.where((targets < 0) | (targets >= k), jnp.nan, per_example)

    detached = jax.lax.stop_gradient(per_example)
    if valid is None:
        for_weights = detached
    else:
        for_weights = jnp.where(valid, detached, jnp.inf)
        per_example = jnp.where(valid, per_example, 0.0)  # garbage labels of padded rows stay out
    if checked:
        _run_checks(
            targets=targets,
            integer=integer,
            k=k,
            valid=valid,
            strength=strength,
            gamma=gamma,
            classes=classes,
            label_smoothing=label_smoothing,
            losses=for_weights,
        )

    gathered = for_weights if axis_name is None else jax.lax.all_gather(for_weights, axis_name, tiled=True)
    if instance is None:
        if valid is None and axis_name is None:
            w_all = jnp.full((n,), 1.0 / n, dtype=dtype)
        else:
            keep = gathered != jnp.inf  # masked rows out; NaN rows stay in and propagate
            w_all = jnp.where(keep, 1.0 / jnp.maximum(jnp.sum(keep), 1), 0.0).astype(dtype)
    elif auto_delta:
        radius = _eager_nan_to_zero(divweights.noise_radius(instance, rate))
        w_all = divweights.instance_weights(gathered, instance, delta=radius)
    else:
        w_all = divweights.instance_weights(gathered, instance, **strength.as_kwargs())

    if axis_name is None:
        w = w_all
    else:
        start = jax.lax.axis_index(axis_name) * n
        w = jax.lax.dynamic_slice_in_dim(w_all, start, n)
    if valid is not None:  # a fully masked batch gets uniform weights from the core: zero them
        w = jnp.where(valid, w, 0.0)
    w = jax.lax.stop_gradient(w.astype(dtype))

    # one dot_general (sum(w * l) is a multiply, a reduction and, backward, a broadcast); HIGHEST keeps
    # float32 accumulation on TPUs, whose default matmul precision is bfloat16
    loss = jnp.dot(w, per_example, precision=jax.lax.Precision.HIGHEST)
    aux = {"weights": w, "class_weights": v, "losses": for_weights}
    if rate is not None:
        aux["noise_rate"] = jax.lax.stop_gradient(rate)
    return loss, aux
