r"""Divergence objects.

Each divergence is a small immutable callable: ``D(p, q)`` evaluates the
divergence of ``p`` from ``q`` along the last axis, and the object tells
:func:`~divweights.instance_weights` and :func:`~divweights.class_weights`
which closed form or exact solver to use.  Conventions:

==========================  =====================================================================
``KL()``                    :math:`\sum_i p_i \log(p_i/q_i)`
``ReverseKL()``             :math:`\mathrm{KL}(q \,\|\, p)`
``Alpha(a)``                :math:`\sum_i q_i f_a(p_i/q_i)`, :math:`f_a(t) = \frac{t^a - 1 - a(t-1)}{a(a-1)}`
``ChiSquared()``            :math:`\sum_i (p_i-q_i)^2/q_i` (twice ``Alpha(2)``)
``TotalVariation()``        :math:`\tfrac12 \sum_i |p_i - q_i|` (half the L1 norm)
``SquaredL2()``             :math:`\sum_i (p_i-q_i)^2`
==========================  =====================================================================

``Alpha(1)`` is ``KL``, ``Alpha(0)`` is ``ReverseKL``, ``Alpha(2)`` is half
``ChiSquared`` and ``Alpha(1/2)`` is :math:`4(1 - \sum_i\sqrt{p_i q_i})`, twice
the squared Hellinger distance :math:`\sum_i(\sqrt{p_i}-\sqrt{q_i})^2`.
As in the published implementation, ``Alpha(a)`` with ``|a - 1| < 1e-3`` is
treated as ``KL`` (the power formulas lose accuracy there).
"""

from __future__ import annotations

import math

import array_api_compat

from ._array import quiet
from .solvers.alpha import alpha_constrained, alpha_penalty, alpha_temperature
from .solvers.kl import kl_constrained, kl_penalty
from .solvers.reverse_kl import reverse_kl_class, reverse_kl_class_onehot, reverse_kl_label_keep_float
from .solvers.squared_l2 import squared_l2_class
from .solvers.total_variation import tv_class_onehot, tv_constrained, tv_label_keep_float, tv_penalty

__all__ = [
    "KL",
    "Alpha",
    "ChiSquared",
    "Divergence",
    "ReverseKL",
    "SquaredL2",
    "TotalVariation",
]

KL_TOLERANCE = 1e-3


def _xlogy_ratio(xp, p, q):
    """sum p log(p/q) along the last axis with 0 log 0 = 0."""
    pos = p > 0
    safe_p = xp.where(pos, p, xp.ones_like(p))
    term = xp.where(pos, p * (xp.log(safe_p) - xp.log(q)), xp.zeros_like(p))
    return xp.sum(term, axis=-1)


def _pair(p, q):
    xp = array_api_compat.array_namespace(p, q)
    dtype = xp.result_type(p, q)
    if not xp.isdtype(dtype, "real floating"):
        info = xp.__array_namespace_info__()
        dtype = info.default_dtypes(device=array_api_compat.device(p))["real floating"]
    p, q = xp.astype(p, dtype), xp.astype(q, dtype)
    p, q = xp.broadcast_arrays(p, q)
    return xp, p, q


def _check_divergence(divergence, name: str = "divergence") -> None:
    """Raise a specific ``TypeError`` unless ``divergence`` is a divergence instance."""
    if isinstance(divergence, type) and issubclass(divergence, Divergence):
        raise TypeError(f"pass a divergence instance such as {divergence.__name__}(), not the class itself")
    if not isinstance(divergence, Divergence):
        raise TypeError(
            f"{name} must be a divweights divergence (KL(), ReverseKL(), Alpha(a), ChiSquared(), "
            f"TotalVariation(), SquaredL2()); got {divergence!r}"
        )


class Divergence:
    """Base class.  Subclasses implement ``value`` and the solver hooks.

    Divergences are immutable values: their parameters are set once in
    ``__init__`` (with ``object.__setattr__``), assigning or deleting an
    attribute afterwards raises :class:`AttributeError`, and equal divergences
    hash alike for their whole life.
    """

    #: forms of the instance problem this divergence supports
    instance_forms: tuple[str, ...] = ("lam", "delta")

    #: largest meaningful class radius ``gamma``: a larger one leaves the whole
    #: simplex feasible and gives the same weights (``inf``: no such bound)
    max_class_radius: float = math.inf

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}; create a new divergence")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __call__(self, p, q):
        """Divergence of ``p`` from ``q`` along the last axis."""
        xp, p, q = _pair(p, q)
        with quiet(xp):
            return self.value(xp, p, q)

    def value(self, xp, p, q):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- instance problem -------------------------------------------------
    def instance(self, l, form: str, strength, work):
        """Solve the instance problem; ``form`` was checked by :meth:`Strength.parse
        <divweights.strength.Strength.parse>`."""
        if form not in self.instance_forms:
            raise ValueError(f"{self!r} does not support {form}= for instance weights")
        return getattr(self, f"_instance_{form}")(l, strength, work)

    def _number_radius(self) -> bool:
        """Whether :meth:`instance` takes ``delta`` as a Python number (a constant: the solver
        then lays out its bracket and grid as constants, fewer operations per call and one
        compiled graph per value); otherwise callers pass a 0-d array."""
        return False

    # -- class problem ----------------------------------------------------
    def _label_keep(self, gamma: float, work) -> float | None:
        """Mass a one-hot label keeps under the class radius ``gamma`` (a Python number) when
        the class weights have a closed form that moves the rest to the lowest-loss classes
        (:func:`~divweights.solvers.total_variation.move_onehot`); ``None`` when they do not.
        NumPy's small-batch path of :func:`~divweights.class_weights` takes it."""
        return None

    def class_problem(self, L, y, onehot: bool, gamma, work):
        raise NotImplementedError(
            f"class weights are not available for {self!r}; supported: TotalVariation(), "
            "ReverseKL(), SquaredL2(), and KL() with probability (soft) targets"
        )

    def _params(self) -> tuple:
        return tuple(sorted(vars(self).items()))

    def __eq__(self, other):
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self):
        return hash((type(self).__name__, self._params()))

    def __repr__(self):
        return f"{type(self).__name__}()"


class KL(Divergence):
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p\|q) = \sum_i p_i\log(p_i/q_i)`.

    Instance weights are a softmin of the losses, ``w ∝ exp(-l / lam)``; the
    temperature form is the same with ``lam = temperature``.  Class weights
    (soft targets only) are ``v ∝ target * exp(-class_losses / lam)``, a
    loss-adaptive label smoothing, with ``lam`` set by ``gamma``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import KL
    >>> float(KL()(np.array([0.5, 0.5]), np.array([0.25, 0.75])))  # doctest: +ELLIPSIS
    0.1438...
    """

    instance_forms = ("lam", "delta", "temperature")

    def value(self, xp, p, q):
        return _xlogy_ratio(xp, p, q)

    def _instance_lam(self, l, lam, work):
        return kl_penalty(l, lam, work)

    _instance_temperature = _instance_lam

    def _instance_delta(self, l, delta, work):
        return kl_constrained(l, delta, work)

    def _number_radius(self) -> bool:
        return True

    def class_problem(self, L, y, onehot, gamma, work):
        if onehot:
            raise ValueError(
                "KL(v || target) is infinite for every v other than a one-hot target itself, so "
                "KL class weights with integer labels would always return the label. Pass "
                "probability targets (for example label-smoothed or mixed-up ones), or use "
                "ReverseKL() (KL(target || v) <= gamma) or TotalVariation() (bootstrapping)"
            )
        xp = work.xp
        pos = y > 0
        logq = xp.where(pos, xp.log(xp.where(pos, y, xp.ones_like(y))), xp.full_like(y, -math.inf))
        return kl_constrained(L, gamma, work, logq=logq)


class Alpha(Divergence):
    r"""Alpha divergence :math:`\sum_i q_i f_\alpha(p_i/q_i)`,
    :math:`f_\alpha(t) = \dfrac{t^\alpha - 1 - \alpha(t-1)}{\alpha(\alpha-1)}`.

    Instance weights are tempered power weights
    ``w ∝ [(1 - alpha) l + c]_+ ** (1 / (alpha - 1))``: positive with a power-law
    tail for ``alpha < 1``, sparse for ``alpha > 1``.

    Parameters
    ----------
    alpha : float
        Any real number.  ``alpha -> 1`` is KL and ``alpha -> 0`` reverse KL.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import Alpha, instance_weights
    >>> w = instance_weights(np.array([0.1, 0.5, 3.0]), Alpha(0.1), temperature=0.1)
    >>> bool(w[0] > w[1] > w[2])
    True
    """

    instance_forms = ("lam", "delta", "temperature")

    def __init__(self, alpha: float):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"alpha must be a real number; got {type(alpha).__name__}")
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"alpha must be finite; got {alpha}")
        object.__setattr__(self, "alpha", alpha)

    def __repr__(self):
        return f"Alpha({self.alpha!r})"

    @property
    def is_kl(self) -> bool:
        return abs(self.alpha - 1.0) < KL_TOLERANCE

    def value(self, xp, p, q):
        a = self.alpha
        if self.is_kl:
            return _xlogy_ratio(xp, p, q)
        if a == 0.0:
            return _xlogy_ratio(xp, q, p)
        # sum q f(p/q) = sum (p^a q^(1-a) - q - a (p - q)) / (a (a - 1)), with 0^0 = 1 conventions
        zero = xp.zeros_like(p)
        lp = xp.where(p > 0, xp.log(xp.where(p > 0, p, xp.ones_like(p))), xp.full_like(p, -math.inf))
        lq = xp.where(q > 0, xp.log(xp.where(q > 0, q, xp.ones_like(q))), xp.full_like(q, -math.inf))
        mixed = xp.where((p > 0) & (q > 0), xp.exp(a * lp + (1.0 - a) * lq), zero)
        if a > 1:
            mixed = xp.where((p > 0) & (q == 0), xp.full_like(p, math.inf), mixed)
        elif a < 0:
            mixed = xp.where((q > 0) & (p == 0), xp.full_like(p, math.inf), mixed)
        terms = (mixed - q - a * (p - q)) / (a * (a - 1.0))
        return xp.sum(terms, axis=-1)

    def _instance_lam(self, l, lam, work):
        if self.is_kl:
            return kl_penalty(l, lam, work)
        return alpha_penalty(l, self.alpha, lam, work)

    def _instance_delta(self, l, delta, work):
        if self.is_kl:
            return kl_constrained(l, delta, work)
        return alpha_constrained(l, self.alpha, delta, work)

    def _number_radius(self) -> bool:
        return self.is_kl

    def _instance_temperature(self, l, temperature, work):
        if self.is_kl:
            return kl_penalty(l, temperature, work)
        return alpha_temperature(l, self.alpha, temperature, work)

    def class_problem(self, L, y, onehot, gamma, work):
        if self.is_kl:
            return KL().class_problem(L, y, onehot, gamma, work)
        if self.alpha == 0.0:
            return ReverseKL().class_problem(L, y, onehot, gamma, work)
        return super().class_problem(L, y, onehot, gamma, work)

    def _label_keep(self, gamma, work):
        return reverse_kl_label_keep_float(gamma, work) if self.alpha == 0.0 else None


class ReverseKL(Alpha):
    r"""Reverse KL, :math:`\mathrm{ReverseKL}(p\|q) = \mathrm{KL}(q\|p)` (``Alpha(0)``).

    Instance weights are ``w ∝ 1 / (l + c)``.  The class problem
    ``ReverseKL(v || target) = KL(target || v) <= gamma`` is the published
    code's ``'kl'`` option; for a one-hot target it keeps ``exp(-gamma)`` of the
    mass on the label and moves the rest to the best class.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import ReverseKL, class_weights
    >>> v = class_weights(np.array([[2.0, 0.5, 1.0]]), np.array([0]), ReverseKL(), gamma=0.1)
    >>> np.round(v, 4)
    array([[0.9048, 0.0952, 0.    ]])
    """

    def __init__(self):
        super().__init__(0.0)

    def __repr__(self):
        return "ReverseKL()"

    def class_problem(self, L, y, onehot, gamma, work):
        if onehot:
            return reverse_kl_class_onehot(L, y, gamma, work)
        return reverse_kl_class(L, y, gamma, work)


class ChiSquared(Divergence):
    r"""Pearson chi-squared divergence :math:`\sum_i (p_i - q_i)^2 / q_i = 2\,D_2(p\|q)`.

    Instance weights are linear and sparse, ``w ∝ [c - l]_+`` (a Euclidean
    projection onto the simplex).  ``lam`` and ``delta`` refer to the
    chi-squared value itself (``Alpha(2)`` with ``2 lam`` and ``delta / 2``);
    the temperature form is ``Alpha(2)``'s, ``w ∝ max(T - l, 0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import ChiSquared, instance_weights
    >>> w = instance_weights(np.array([0.0, 1.0, 10.0]), ChiSquared(), lam=1.0)
    >>> bool(w[2] == 0.0)
    True
    """

    instance_forms = ("lam", "delta", "temperature")

    def value(self, xp, p, q):
        diff2 = (p - q) ** 2
        safe_q = xp.where(q > 0, q, xp.ones_like(q))
        inf = xp.full_like(p, math.inf)
        terms = xp.where(q > 0, diff2 / safe_q, xp.where(diff2 > 0, inf, xp.zeros_like(p)))
        return xp.sum(terms, axis=-1)

    def _instance_lam(self, l, lam, work):
        return alpha_penalty(l, 2.0, 2.0 * lam, work)

    def _instance_delta(self, l, delta, work):
        return alpha_constrained(l, 2.0, delta / 2.0, work)

    def _instance_temperature(self, l, temperature, work):
        return alpha_temperature(l, 2.0, temperature, work)


class TotalVariation(Divergence):
    r"""Total variation distance :math:`\tfrac12\sum_i |p_i - q_i|` (half the L1 norm).

    Instance weights move ``delta`` mass from the highest-loss examples to the
    lowest-loss one(s).  Class weights with a one-hot target are hard
    bootstrapping, ``<v, l> = (1 - gamma) l_y + gamma min_j l_j``.  If your radius
    is an L1 radius ``r`` (``||v - y||_1 <= r``, as in the published cvxpy
    variant), pass ``gamma = r / 2``.  The distance never exceeds 1, so
    ``gamma >= 1`` lets all mass move and gives exactly the weights of
    ``gamma = 1`` (:attr:`max_class_radius`).

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import TotalVariation, instance_weights
    >>> instance_weights(np.array([1.0, 2.0, 3.0, 4.0]), TotalVariation(), delta=0.25)
    array([0.5 , 0.25, 0.25, 0.  ])
    """

    #: the total variation distance of two distributions is at most 1: a class
    #: radius ``gamma >= 1`` leaves the whole simplex feasible and acts exactly as
    #: ``gamma = 1`` (an L1 radius ``r`` is ``gamma = r / 2``)
    max_class_radius = 1.0

    def value(self, xp, p, q):
        return 0.5 * xp.sum(xp.abs(p - q), axis=-1)

    def _instance_lam(self, l, lam, work):
        return tv_penalty(l, lam, work)

    def _instance_delta(self, l, delta, work):
        return tv_constrained(l, delta, work)

    def _label_keep(self, gamma, work):
        return tv_label_keep_float(gamma)

    def class_problem(self, L, y, onehot, gamma, work):
        if onehot:  # hard bootstrapping in closed form (the general prior path gives the same weights)
            return tv_class_onehot(L, y, gamma, work)
        return tv_constrained(L, gamma, work, prior=y)


class SquaredL2(Divergence):
    r"""Squared Euclidean distance :math:`\sum_i (p_i - q_i)^2`.

    Class weights are ``v = Proj_simplex(target - t * class_losses)`` with ``t``
    set so that the constraint is tight (the published ``'l2'`` option, solved
    exactly).  Instance weights are the chi-squared ones with rescaled strength:
    ``||w - u||^2 = chi^2(w || u) / n``.

    Examples
    --------
    >>> import numpy as np
    >>> from divweights import SquaredL2, class_weights
    >>> v = class_weights(np.array([[1.0, 0.0, 2.0]]), np.array([0]), SquaredL2(), gamma=0.02)
    >>> round(float(np.sum((v - np.array([1.0, 0.0, 0.0])) ** 2)), 6)
    0.02
    """

    def value(self, xp, p, q):
        return xp.sum((p - q) ** 2, axis=-1)

    @staticmethod
    def _count(l, work):
        """Number of examples with finite loss (the others are excluded)."""
        xp = work.xp
        return xp.sum(xp.astype(l < math.inf, l.dtype), axis=-1, keepdims=True)

    def _instance_lam(self, l, lam, work):
        return alpha_penalty(l, 2.0, 2.0 * lam / self._count(l, work), work)

    def _instance_delta(self, l, delta, work):
        return alpha_constrained(l, 2.0, self._count(l, work) * delta / 2.0, work)

    def class_problem(self, L, y, onehot, gamma, work):
        return squared_l2_class(L, y, gamma, work)
