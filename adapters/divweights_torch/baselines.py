r"""Robust classification losses that the published comparison uses as baselines.

The methods the reweighting paper compares against, as modules and functions:

* :class:`BiTemperedLoss` -- bi-tempered logistic loss (Amid et al., 2019);
* :class:`NCERCELoss` -- the Active-Passive normalized loss NCE+RCE (Ma et al., 2020);
* :class:`GCELoss` -- generalized cross-entropy (Zhang and Sabuncu, 2018);
* :class:`SCELoss` -- symmetric cross-entropy (Wang et al., 2019).

Every loss takes integer labels ``(N,)`` or probabilities ``(N, C)``, is
computed in at least float32 with autocast off (float16 and bfloat16 logits
are safe), has no host synchronisation and no data-dependent Python control
flow (it compiles with ``torch.compile(..., fullgraph=True)``), and reduces
with ``'mean'`` (default), ``'sum'`` or ``'none'``.

Notation: :math:`p = \mathrm{softmax}(z)` for logits :math:`z`, :math:`y` the
target distribution (one-hot for a label :math:`c`).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .loss import _autocast_off, _is_compiling, _raise_for_labels

__all__ = [
    "BiTemperedLoss",
    "GCELoss",
    "NCERCELoss",
    "SCELoss",
    "bi_tempered_logistic_loss",
    "generalized_cross_entropy",
    "nce_rce_loss",
    "symmetric_cross_entropy",
    "tempered_softmax",
]

_REDUCTIONS = ("mean", "sum", "none")
#: ``log`` of the floor on the target probabilities in the reverse cross-entropy of the
#: published NCE+RCE and SCE code (``clamp(one_hot, 1e-4, 1)``)
RCE_LOG_FLOOR = math.log(1e-4)


# -- shared plumbing ------------------------------------------------------------------------------


def _number(name: str, value, *, low=None, high=None, open_low=False, open_high=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    value = float(value)
    if low is not None and (value <= low if open_low else value < low):
        raise ValueError(f"{name} must be {'>' if open_low else '>='} {low}; got {value!r}")
    if high is not None and (value >= high if open_high else value > high):
        raise ValueError(f"{name} must be {'<' if open_high else '<='} {high}; got {value!r}")
    return value


#: the valid range of every hyperparameter (plain Python checks, done once)
_RANGES = {
    "t1": {"low": 0.0, "high": 1.0},
    "t2": {"low": 0.0, "open_low": True},
    "label_smoothing": {"low": 0.0, "high": 1.0},
    "alpha": {"low": 0.0},
    "beta": {"low": 0.0},
    "q": {"low": 0.0, "high": 1.0, "open_low": True},
    "log_floor": {"high": 0.0, "open_high": True},
}


def _validate(**kwargs) -> dict:
    """The hyperparameters, checked: ``reduction``, ``num_iters`` and the numbers of ``_RANGES``.

    Also while ``torch.compile`` traces.  A second value of a hyperparameter compiled in one process
    reaches this as a symbolic float, which ``math.isfinite`` cannot read, so ``fullgraph=True`` stops
    there with Dynamo's error; skipping the check let it trace, but a third bi-tempered setting then
    compiled to a wrong loss (0.33 against eager 0.59, torch 2.13): a loud stop is the safer failure."""
    out = {}
    for name, value in kwargs.items():
        if name == "reduction":
            out[name] = _check_reduction(value)
        elif name == "num_iters":
            out[name] = _iterations(value)
        else:
            out[name] = _number(name, value, **_RANGES[name])
    return out


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    return reduction


def _prepare(logits, targets):
    """Validate shapes (metadata only) and return ``(z, dtype)`` with ``z`` in at least float32."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating tensor of shape (N, C); got {getattr(logits, 'shape', logits)}")
    n, k = logits.shape
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor; got {type(targets).__name__}")
    if targets.is_floating_point():
        if tuple(targets.shape) != (n, k):
            raise ValueError(f"probability targets must have the logits' shape {(n, k)}; got {tuple(targets.shape)}")
    elif targets.dtype == torch.bool or targets.is_complex() or tuple(targets.shape) != (n,):
        raise ValueError(
            f"targets must be integer labels of shape (N,) = ({n},) or probabilities of shape {(n, k)}; "
            f"got {targets.dtype} of shape {tuple(targets.shape)}"
        )
    dtype = logits.dtype if logits.dtype in (torch.float32, torch.float64) else torch.float32
    return logits.to(dtype), dtype


def _target_probabilities(targets, n, k, dtype, device):
    if targets.is_floating_point():
        return targets.detach().to(dtype)
    return torch.zeros((n, k), dtype=dtype, device=device).scatter(1, targets[:, None], 1.0)


def _reduce(per_example, reduction):
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _guarded(fn, logits, targets):
    """Run ``fn``; in eager mode on the CPU turn torch's index error for a bad label into a clear one."""
    if _is_compiling():
        return fn()
    try:
        return fn()
    except (IndexError, RuntimeError) as exc:
        if isinstance(logits, torch.Tensor) and logits.ndim == 2:
            _raise_for_labels(logits.shape[1], targets, None, exc)
        raise


# -- bi-tempered logistic loss ------------------------------------------------------------------


def _log_t(x: torch.Tensor, t: float) -> torch.Tensor:
    """Tempered logarithm :math:`\\log_t x = (x^{1-t} - 1) / (1 - t)` (``log`` at ``t = 1``)."""
    return torch.log(x) if t == 1.0 else (x.pow(1.0 - t) - 1.0) / (1.0 - t)


def _exp_t(x: torch.Tensor, t: float) -> torch.Tensor:
    """Tempered exponential :math:`\\exp_t x = [1 + (1 - t) x]_+^{1/(1-t)}` (``exp`` at ``t = 1``)."""
    return torch.exp(x) if t == 1.0 else torch.relu(1.0 + (1.0 - t) * x).pow(1.0 / (1.0 - t))


def _tempered_normalizer(a: torch.Tensor, t: float, num_iters: int) -> torch.Tensor:
    """:math:`\\lambda_t(a)` with :math:`\\sum_j \\exp_t(a_j - \\lambda) \\approx 1`, shape ``(N, 1)``."""
    mu = a.amax(dim=-1, keepdim=True)
    a0 = a - mu  # <= 0, the largest is 0
    if t == 1.0:
        return mu + torch.logsumexp(a0, dim=-1, keepdim=True)
    if t > 1.0:
        # fixed point of the published algorithm: a <- a0 * Z(a)^(1 - t)
        at = a0
        for _ in range(num_iters):
            z = _exp_t(at, t).sum(dim=-1, keepdim=True)
            at = a0 * z.pow(1.0 - t)
        z = _exp_t(at, t).sum(dim=-1, keepdim=True)
        return mu - _log_t(1.0 / z, t)
    # t < 1 (finite support): bisection on [0, -log_t(1 / d)] with d the effective dimension
    dim = (a0 > -1.0 / (1.0 - t)).sum(dim=-1, keepdim=True).to(a.dtype)
    lower = torch.zeros_like(mu)
    upper = -_log_t(1.0 / dim, t)
    for _ in range(num_iters):
        mid = (lower + upper) / 2.0
        below = _exp_t(a0 - mid, t).sum(dim=-1, keepdim=True) < 1.0
        lower = torch.where(below, lower, mid)
        upper = torch.where(below, mid, upper)
    return mu + (lower + upper) / 2.0


def tempered_softmax(logits: torch.Tensor, t: float, *, num_iters: int = 5) -> torch.Tensor:
    r"""Tempered softmax :math:`p_j = \exp_t(z_j - \lambda_t(z))` over the last axis.

    :math:`\exp_t x = [1 + (1 - t) x]_+^{1/(1-t)}` and the normaliser
    :math:`\lambda_t(z)` makes the row sum to one.  ``t > 1`` gives heavier
    tails than the softmax, ``t < 1`` finite support, ``t = 1`` the softmax.
    :math:`\lambda_t` is found, as in the published algorithm, by
    ``num_iters`` fixed-point iterations (``t > 1``) or bisection steps
    (``t < 1``), so a row sums to one only up to the accuracy of those
    iterations (5 fixed-point iterations, the published default: rows off
    by up to about 1e-2 at ``t = 2`` on 10 classes and 2e-2 at ``t = 1.2`` on
    1,000; raise ``num_iters`` for a tighter normaliser; bisection halves the
    error each step, use 20 or more).

    Parameters
    ----------
    logits : torch.Tensor, shape (..., C)
    t : float
        Temperature, ``> 0``.
    num_iters : int, default 5

    Returns
    -------
    torch.Tensor
        Probabilities, in at least float32.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.baselines import tempered_softmax
    >>> z = torch.tensor([[1.0, 2.0, 3.0]])
    >>> torch.allclose(tempered_softmax(z, 1.0), torch.softmax(z, -1))
    True
    >>> tempered_softmax(torch.tensor([[-0.5, 0.1, 2.0]]), 4.0)
    tensor([[0.3205, 0.3271, 0.3523]])
    """
    t = _number("t", t, low=0.0, open_low=True)
    num_iters = _iterations(num_iters)
    dtype = logits.dtype if logits.dtype in (torch.float32, torch.float64) else torch.float32
    with _autocast_off(logits.device.type):
        a = logits.to(dtype)
        return _exp_t(a - _tempered_normalizer(a, t, num_iters), t)


def _iterations(num_iters) -> int:
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 0:
        raise ValueError(f"num_iters must be an int >= 0; got {num_iters!r}")
    return num_iters


class _BiTempered(torch.autograd.Function):
    """Per-example bi-tempered loss with the published (exact-normaliser) gradient."""

    @staticmethod
    def forward(ctx, a, y, t1, t2, num_iters):
        p = _exp_t(a - _tempered_normalizer(a, t2, num_iters), t2)
        y_log_y = torch.where(y > 0, y * _log_t(torch.where(y > 0, y, 1.0), t1), 0.0)
        # a class the target does not hold adds 0, also where p_j = 0 and log_t1(0) = -inf (t1 = 1; NaN stays NaN)
        y_log_p = torch.where(y == 0, 0.0, y * _log_t(p, t1))
        terms = y_log_y - y_log_p - (y.pow(2.0 - t1) - p.pow(2.0 - t1)) / (2.0 - t1)
        ctx.save_for_backward(p, y)
        ctx.t1, ctx.t2 = t1, t2
        return terms.sum(dim=-1)

    @staticmethod
    def backward(ctx, grad):
        p, y = ctx.saved_tensors
        t1, t2 = ctx.t1, ctx.t2
        # dL/dz_j = (p_j - y_j) p_j^(t2 - t1) - e_j sum_i (p_i - y_i) p_i^(t2 - t1), e = p^t2 / sum p^t2;
        # classes outside the support (p_j = 0) do not move: their term is 0, not 0 * inf
        pos = p > 0
        forget = torch.where(pos, torch.where(pos, p, 1.0).pow(t2 - t1), 0.0)
        delta = (p - y) * forget
        escort = p.pow(t2)
        escort = escort / escort.sum(dim=-1, keepdim=True)
        d = delta - escort * delta.sum(dim=-1, keepdim=True)
        return grad[:, None] * d, None, None, None, None


def bi_tempered_logistic_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    t1: float,
    t2: float,
    num_iters: int = 5,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Bi-tempered logistic loss (Amid, Warmuth, Anil and Koren, NeurIPS 2019).

    With the tempered logarithm and exponential

    .. math::

        \log_t x = \frac{x^{1-t} - 1}{1 - t}, \qquad
        \exp_t x = [1 + (1 - t) x]_+^{1/(1-t)},

    the tempered softmax :math:`\hat y = \exp_{t_2}(z - \lambda_{t_2}(z))`
    (:func:`tempered_softmax`) and the loss of an example is the Bregman
    divergence

    .. math::

        \ell(y, \hat y) = \sum_j \Big[ y_j \big(\log_{t_1} y_j - \log_{t_1} \hat y_j\big)
        - \frac{y_j^{2 - t_1} - \hat y_j^{2 - t_1}}{2 - t_1} \Big].

    ``t1 < 1`` bounds the loss (robust to mislabelled examples), ``t2 > 1``
    gives the softmax heavy tails (robust to examples far from the boundary);
    ``t1 = t2 = 1`` is the cross-entropy.  The gradient is the one of the
    published code, :math:`\nabla_z \ell = (\hat y - y)\hat y^{t_2 - t_1} - e
    \langle \hat y - y, \hat y^{t_2 - t_1}\rangle` with the escort
    :math:`e = \hat y^{t_2} / \sum_j \hat y_j^{t_2}` (the exact gradient for
    the exact normaliser).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C)
        Any floating dtype; computed in at least float32 with autocast off.
    targets : torch.Tensor
        Integer labels ``(N,)`` or probabilities ``(N, C)``.
    t1 : float
        Temperature of the logarithm, in ``[0, 1]``.
    t2 : float
        Temperature of the exponential, ``> 0``.
    num_iters : int, default 5
        Iterations for the normaliser :math:`\lambda_{t_2}`: fixed-point
        iterations for ``t2 > 1`` (the published default, 5), bisection
        steps for ``t2 < 1`` (use 20 or more); a fixed number, so the loss
        compiles to one graph.
    label_smoothing : float, default 0.0
        The published convention:
        :math:`y \leftarrow (1 - \tfrac{C}{C - 1}\varepsilon)\,y + \tfrac{\varepsilon}{C - 1}`
        (in ``[0, (C - 1) / C]``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Returns
    -------
    torch.Tensor
        The reduced loss (per example for ``'none'``), float32 or float64.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.baselines import bi_tempered_logistic_loss
    >>> z = torch.tensor([[-0.5, 0.1, 2.0], [0.1, 1.5, -5.0]])
    >>> y = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    >>> bi_tempered_logistic_loss(z, y, t1=0.5, t2=1.5, reduction="none")
    tensor([0.0230, 0.1897])
    >>> labels = torch.tensor([2, 1])
    >>> ce = torch.nn.functional.cross_entropy(z, labels)
    >>> torch.allclose(bi_tempered_logistic_loss(z, labels, t1=1.0, t2=1.0), ce)
    True
    """
    t1, t2, num_iters, eps, reduction = _validate(
        t1=t1, t2=t2, num_iters=num_iters, label_smoothing=label_smoothing, reduction=reduction
    ).values()

    def run():
        z, dtype = _prepare(logits, targets)
        n, k = z.shape
        if eps > 0 and (k < 2 or eps > (k - 1) / k):
            raise ValueError(f"label_smoothing must lie in [0, (C - 1) / C] = [0, {(k - 1) / k:.4g}]; got {eps!r}")
        with _autocast_off(z.device.type):
            y = _target_probabilities(targets, n, k, dtype, z.device)
            if eps > 0:
                y = (1.0 - k / (k - 1) * eps) * y + eps / (k - 1)
            return _reduce(_BiTempered.apply(z, y, t1, t2, num_iters), reduction)

    return _guarded(run, logits, targets)


# -- NCE+RCE, GCE, SCE ------------------------------------------------------------------------------


def _softmax_loss(logits, targets, reduction, per_example):
    """``per_example(log p, y)`` reduced, ``y`` the one-hot or soft targets, in at least float32 with autocast off."""

    def run():
        with _autocast_off(logits.device.type):
            z, dtype = _prepare(logits, targets)
            n, k = z.shape
            logp = torch.log_softmax(z, dim=-1)
            return _reduce(per_example(logp, _target_probabilities(targets, n, k, dtype, z.device)), reduction)

    return _guarded(run, logits, targets)


def _y_log_p(y, logp):
    """``sum_j y_j log p_j`` with ``0 * (-inf) = 0`` (a class masked with ``-inf`` logits that the target
    does not hold adds nothing; NaN targets stay NaN)."""
    return torch.where(y == 0, 0.0, y * logp).sum(dim=-1)


def _reverse_ce(logp, y, log_floor):
    """:math:`-\\sum_j p_j \\log \\max(y_j, e^{A})`: :math:`-A (1 - p_c)` for a label :math:`c`."""
    return -(logp.exp() * torch.log(y.clamp(min=math.exp(log_floor)))).sum(dim=-1)


def nce_rce_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    log_floor: float = RCE_LOG_FLOOR,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Active-Passive normalized loss NCE+RCE (Ma, Huang, Wang, Romano, Erfani and Bailey, ICML 2020).

    .. math::

        \ell = \alpha\,\frac{-\sum_j y_j \log p_j}{-\sum_j \log p_j}
        + \beta\,\Big(-\sum_j p_j \log \max(y_j, e^{A})\Big),

    the normalized cross-entropy (active, bounded in :math:`[0, 1]`) plus the
    reverse cross-entropy (passive; for a label :math:`c` it is
    :math:`-A\,(1 - p_c)`).  The floor :math:`e^{A}` replaces
    :math:`\log 0`; the published code clamps the one-hot targets at
    ``1e-4``, :math:`A = \log 10^{-4}` (the default).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C)
    targets : torch.Tensor
        Integer labels ``(N,)`` or probabilities ``(N, C)``.
    alpha, beta : float, default 1.0
        Weights of NCE and RCE (the published CIFAR-10 setting is 1 and 1,
        CIFAR-100 10 and 0.1), ``>= 0``.
    log_floor : float, default ``log(1e-4)``
        :math:`A < 0`.
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.baselines import nce_rce_loss
    >>> z, labels = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    >>> p = torch.softmax(z, -1)[0]
    >>> nce = -p[0].log() / -p.log().sum()
    >>> torch.allclose(nce_rce_loss(z, labels), nce - torch.log(torch.tensor(1e-4)) * (1 - p[0]))
    True
    """
    alpha, beta, log_floor, reduction = _validate(
        alpha=alpha, beta=beta, log_floor=log_floor, reduction=reduction
    ).values()
    if logits.ndim == 2 and logits.shape[-1] < 2:
        raise ValueError("nce_rce_loss needs at least two classes (the normalized cross-entropy is 0/0 with one)")

    def per_example(logp, y):
        nce = _y_log_p(y, logp) / logp.sum(dim=-1)
        return alpha * nce + beta * _reverse_ce(logp, y, log_floor)

    return _softmax_loss(logits, targets, reduction, per_example)


def generalized_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, *, q: float = 0.7, reduction: str = "mean"
) -> torch.Tensor:
    r"""Generalized cross-entropy :math:`L_q` (Zhang and Sabuncu, NeurIPS 2018).

    .. math::

        \ell = \sum_j y_j\,\frac{1 - p_j^{\,q}}{q}
        \qquad\big(= (1 - p_c^{\,q}) / q \text{ for a label } c\big),

    the Box-Cox transform of the likelihood: :math:`q \to 0` is the
    cross-entropy, :math:`q = 1` the mean absolute error (``2 x`` MAE on
    one-hot targets up to a constant).  :math:`p^q` is computed as
    :math:`\exp(q \log p)` from the log-softmax.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C)
    targets : torch.Tensor
        Integer labels ``(N,)`` or probabilities ``(N, C)``.
    q : float, default 0.7
        In ``(0, 1]`` (0.7 is the published default).
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.baselines import generalized_cross_entropy
    >>> z, labels = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    >>> p0 = torch.softmax(z, -1)[0, 0]
    >>> torch.allclose(generalized_cross_entropy(z, labels, q=0.5), (1 - p0**0.5) / 0.5)
    True
    """
    q, reduction = _validate(q=q, reduction=reduction).values()

    # 1 - p^q = -expm1(q log p): no cancellation for small q (1 - exp(q log p) lost the loss below q ~ 1e-6)
    return _softmax_loss(logits, targets, reduction, lambda logp, y: (y * -torch.expm1(q * logp)).sum(dim=-1) / q)


def symmetric_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    log_floor: float = RCE_LOG_FLOOR,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Symmetric cross-entropy (Wang, Ma, Chen, Luo, Yi and Bailey, ICCV 2019).

    .. math::

        \ell = \alpha\Big(-\sum_j y_j \log p_j\Big) + \beta\Big(-\sum_j p_j \log \max(y_j, e^{A})\Big),

    cross-entropy plus reverse cross-entropy (see :func:`nce_rce_loss`; the
    paper writes :math:`A = -4`, its code clamps at ``1e-4``, the default
    :math:`A = \log 10^{-4}`).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C)
    targets : torch.Tensor
        Integer labels ``(N,)`` or probabilities ``(N, C)``.
    alpha, beta : float
        Weights of CE and RCE, ``>= 0`` (published CIFAR-10 setting: 0.1 and 1).
    log_floor : float, default ``log(1e-4)``
        :math:`A < 0`.
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Examples
    --------
    >>> import torch
    >>> from divweights_torch.baselines import symmetric_cross_entropy
    >>> z, labels = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    >>> ce = torch.nn.functional.cross_entropy(z, labels)
    >>> torch.allclose(symmetric_cross_entropy(z, labels, alpha=1.0, beta=0.0), ce)
    True
    """
    alpha, beta, log_floor, reduction = _validate(
        alpha=alpha, beta=beta, log_floor=log_floor, reduction=reduction
    ).values()

    def per_example(logp, y):
        ce = -_y_log_p(y, logp)
        return alpha * ce + beta * _reverse_ce(logp, y, log_floor)

    return _softmax_loss(logits, targets, reduction, per_example)


# -- modules ------------------------------------------------------------------------------------------


class _Baseline(nn.Module):
    """A loss function as a module: hyperparameters validated and stored at construction."""

    _fn = None

    def __init__(self, **kwargs):
        super().__init__()
        self._kwargs = _validate(**kwargs)  # once, here, with plain Python

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(logits, targets, **self._kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())


class BiTemperedLoss(_Baseline):
    r"""Bi-tempered logistic loss as a module; see :func:`bi_tempered_logistic_loss`.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch import BiTemperedLoss
    >>> loss_fn = BiTemperedLoss(t1=0.8, t2=1.2)
    >>> loss = loss_fn(torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 0]))
    >>> loss.backward()
    """

    _fn = staticmethod(bi_tempered_logistic_loss)

    def __init__(self, *, t1: float, t2: float, num_iters: int = 5, label_smoothing: float = 0.0, reduction="mean"):
        super().__init__(t1=t1, t2=t2, num_iters=num_iters, label_smoothing=label_smoothing, reduction=reduction)


class NCERCELoss(_Baseline):
    r"""Active-Passive normalized loss NCE+RCE as a module; see :func:`nce_rce_loss`.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch import NCERCELoss
    >>> float(NCERCELoss(alpha=1.0, beta=1.0)(torch.zeros(2, 4), torch.tensor([0, 3])))  # doctest: +ELLIPSIS
    7.157...
    """

    _fn = staticmethod(nce_rce_loss)

    def __init__(self, *, alpha: float = 1.0, beta: float = 1.0, log_floor: float = RCE_LOG_FLOOR, reduction="mean"):
        super().__init__(alpha=alpha, beta=beta, log_floor=log_floor, reduction=reduction)


class GCELoss(_Baseline):
    r"""Generalized cross-entropy as a module; see :func:`generalized_cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch import GCELoss
    >>> float(GCELoss(q=1.0)(torch.zeros(1, 4), torch.tensor([2])))  # 1 - 1/4
    0.75
    """

    _fn = staticmethod(generalized_cross_entropy)

    def __init__(self, *, q: float = 0.7, reduction="mean"):
        super().__init__(q=q, reduction=reduction)


class SCELoss(_Baseline):
    r"""Symmetric cross-entropy as a module; see :func:`symmetric_cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> from divweights_torch import SCELoss
    >>> z, labels = torch.zeros(1, 4), torch.tensor([2])
    >>> torch.allclose(SCELoss(alpha=1.0, beta=0.0)(z, labels), torch.log(torch.tensor(4.0)))
    True
    """

    _fn = staticmethod(symmetric_cross_entropy)

    def __init__(self, *, alpha: float = 0.1, beta: float = 1.0, log_floor: float = RCE_LOG_FLOOR, reduction="mean"):
        super().__init__(alpha=alpha, beta=beta, log_floor=log_floor, reduction=reduction)
