r"""The two-component beta mixture of Dynamic Mixup (Arazo et al., ICML 2019), in NumPy.

``--method dynamic-mixup`` models the per-example training losses of an
epoch as a mixture of two beta distributions, a low-loss ("clean") and a
high-loss ("noisy") component, and bootstraps each label towards the
model's prediction by the posterior probability :math:`B_i` of the noisy
component (dynamic hard bootstrapping with mixup, M-DYR-H):

1. **Normalise** (:func:`fit_loss_mixture`): the losses between their 5th and
   95th percentiles :math:`[p_5, p_{95}]` are mapped to
   :math:`x = (l - l_{\min}) / (l_{\max} - l_{\min} + 10^{-6})` with
   :math:`l_{\min} = p_5 + 10^{-5}`, :math:`l_{\max} = p_{95}`; values at or
   beyond the ends become :math:`10^{-3}` and :math:`1 - 10^{-3}`.
2. **Fit** by EM, 10 iterations from the components Beta(1, 2) and Beta(2, 1)
   with equal weights: the E-step computes responsibilities (floored at
   :math:`10^{-12}`), the M-step refits each component by the weighted
   method of moments, :math:`a = \bar x (\bar x (1 - \bar x)/s^2 - 1)`,
   :math:`b = a (1 - \bar x)/\bar x`.
3. **Tabulate** the posterior of the second (high-loss) component at 100
   points of :math:`(0, 1)`, made non-decreasing after its maximum (a loss
   higher than the most surely noisy one is at least as surely noisy).
4. **Look up** (:func:`noise_posterior`, and the same arithmetic on the
   device in both backends): a batch's losses are normalised with the
   epoch's :math:`l_{\min}, l_{\max}`, the table is read at
   :math:`\lfloor 100 x \rfloor`, and :math:`B` is clipped to
   :math:`[10^{-4}, 1 - 10^{-4}]`.

The procedure and its constants follow the authors' published code; the
implementation is divweights' own (no SciPy). Degenerate inputs (fewer than
two distinct values, a component that loses all its responsibility) keep the
previous parameters of that component instead of producing NaN.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = [
    "LOOKUP_SIZE",
    "BetaMixtureFit",
    "fit_loss_mixture",
    "noise_posterior",
    "uniform_fit",
]

#: Entries of the posterior table.
LOOKUP_SIZE = 100
#: Clip of the normalised losses (the published ``10e-4``).
X_EPS = 1e-3
#: Clip of the posterior.
B_EPS = 1e-4
_R_FLOOR = 1e-12
_FIT_EPS = 1e-4


@dataclasses.dataclass(frozen=True)
class BetaMixtureFit:
    """A fitted two-component beta mixture and its posterior table.

    Attributes
    ----------
    table : numpy.ndarray, shape (100,)
        Posterior of the high-loss component at the normalised losses
        ``linspace(1e-12, 1 - 1e-12, 100)``, float32.
    loss_min, loss_max : float
        The normalisation of the losses.
    alphas, betas, weights : tuple of float
        Parameters of the two components (clean first) and their weights.
    """

    table: np.ndarray
    loss_min: float
    loss_max: float
    alphas: tuple[float, float]
    betas: tuple[float, float]
    weights: tuple[float, float]


def uniform_fit() -> BetaMixtureFit:
    """The state before any fit: a zero table (no bootstrapping)."""
    return BetaMixtureFit(np.zeros(LOOKUP_SIZE, np.float32), 0.0, 1.0, (1.0, 2.0), (2.0, 1.0), (0.5, 0.5))


def _log_beta_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_norm


def _weighted_moments(x: np.ndarray, r: np.ndarray, a: float, b: float) -> tuple[float, float]:
    total = float(r.sum())
    if not total > 0:
        return a, b
    mean = float(np.sum(r * x) / total)
    var = float(np.sum(r * (x - mean) ** 2) / total)
    if not (var > 0 and 0 < mean < 1) or var >= mean * (1 - mean):
        return a, b
    a_new = mean * (mean * (1 - mean) / var - 1)
    b_new = a_new * (1 - mean) / mean
    if not (math.isfinite(a_new) and math.isfinite(b_new) and a_new > 0 and b_new > 0):
        return a, b
    return a_new, b_new


def _posterior(x, alphas, betas, weights) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = [_log_weighted(x, alphas[c], betas[c], weights[c]) for c in range(2)]
        post = np.exp(logs[1] - np.logaddexp(logs[0], logs[1]))
    return np.nan_to_num(post, nan=0.0)


def _log_weighted(x, a: float, b: float, weight: float) -> np.ndarray:
    """``log(weight * Beta(a, b).pdf(x))``; ``-inf`` for a component of weight zero."""
    with np.errstate(divide="ignore"):
        return np.log(weight) + _log_beta_pdf(x, a, b)


def fit_loss_mixture(losses, *, iterations: int = 10) -> BetaMixtureFit:
    """Fit the two-component beta mixture to per-example losses (see the module docstring).

    Parameters
    ----------
    losses : array_like, shape (n,)
        Per-example cross-entropy losses (finite, nonnegative); at least 2.
    iterations : int, default 10
        EM iterations.

    Returns
    -------
    BetaMixtureFit

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> losses = np.concatenate([rng.gamma(2.0, 0.1, 800), rng.gamma(30.0, 0.1, 200)])  # 20% high-loss
    >>> fit = fit_loss_mixture(losses)
    >>> b = noise_posterior(losses, fit)
    >>> bool(b[:800].mean() < 0.1 < 0.9 < b[800:].mean())
    True
    """
    loss = np.asarray(losses, dtype=np.float64).reshape(-1)
    if loss.size < 2:
        raise ValueError(f"the beta mixture needs at least 2 losses, got {loss.size}")
    if not np.all(np.isfinite(loss)):
        raise ValueError("losses must be finite")
    hi = float(np.percentile(loss, 95))
    lo = float(np.percentile(loss, 5))
    kept = loss[(loss <= hi) & (loss >= lo)]
    lo = lo + 1e-5
    x = (kept - lo) / (hi - lo + 1e-6)
    x = np.where(x >= 1, 1 - X_EPS, np.where(x <= 0, X_EPS, x))
    x = np.clip(x, _FIT_EPS, 1 - _FIT_EPS)
    alphas, betas, weights = [1.0, 2.0], [2.0, 1.0], [0.5, 0.5]
    for _ in range(int(iterations)):
        # weighted likelihoods floored at 1e-12 (and capped: a degenerate component's density
        # can exceed the float range)
        logs = np.stack([_log_weighted(x, alphas[c], betas[c], weights[c]) for c in range(2)])
        r = np.exp(np.minimum(np.nan_to_num(logs, nan=-np.inf), 700.0))
        r = np.where(r <= _R_FLOOR, _R_FLOOR, r)
        r = r / r.sum(axis=0)
        for c in range(2):
            alphas[c], betas[c] = _weighted_moments(x, r[c], alphas[c], betas[c])
        w = r.sum(axis=1)
        weights = [float(w[0] / w.sum()), float(w[1] / w.sum())]
    grid = np.linspace(_R_FLOOR, 1 - _R_FLOOR, LOOKUP_SIZE)
    table = _posterior(grid, alphas, betas, weights)
    table = np.nan_to_num(table, nan=0.0)
    top = int(np.argmax(table))
    table[top:] = table[top]
    return BetaMixtureFit(
        table.astype(np.float32),
        float(lo),
        float(hi),
        (float(alphas[0]), float(alphas[1])),
        (float(betas[0]), float(betas[1])),
        (weights[0], weights[1]),
    )


def noise_posterior(losses, fit: BetaMixtureFit) -> np.ndarray:
    """Posterior probability ``B`` that each loss belongs to the high-loss component (NumPy reference).

    The backends compute the same on the device (``trainer_torch``, ``jax_step``).

    Parameters
    ----------
    losses : array_like, shape (n,)
    fit : BetaMixtureFit

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        In ``[1e-4, 1 - 1e-4]``.
    """
    loss = np.asarray(losses, dtype=np.float32)
    x = (loss - np.float32(fit.loss_min)) / np.float32(fit.loss_max - fit.loss_min + 1e-6)
    x = np.where(x >= 1, np.float32(1 - X_EPS), np.where(x <= 0, np.float32(X_EPS), x))
    idx = np.clip(np.floor(LOOKUP_SIZE * x).astype(np.int64), 0, LOOKUP_SIZE - 1)
    return np.clip(fit.table[idx], B_EPS, 1 - B_EPS).astype(np.float32)
