r"""Verification oracle: the weight problems written from their definitions and solved with cvxpy.

This module is an *oracle*: it states every problem that
:func:`divweights.instance_weights` and :func:`divweights.class_weights` solve
in closed form as a convex program, as the definition reads, and hands it to a
general-purpose conic solver (Clarabel, with SCS as a fallback).  It shares no
code with the closed forms and is meant for tests, for checking a new
divergence, and for readers who want to see each problem written out.  It is
slow (one or two solves per row, about 10 ms each) and accurate to roughly
``1e-7``; use the core functions for training.

cvxpy is an optional dependency, imported only when a solver is called::

    pip install divweights[reference]

Through divweights 0.1.0 this package was ``divweights.reference``; that
path remains as a deprecated alias for one release.

.. rubric:: Problems

With :math:`u = 1/n` the uniform weights and :math:`\Delta_m` the simplex,

* instance, ``lam``: :math:`\min_{w\in\Delta_n}\langle w,\ell\rangle + \lambda D(w\|u)`;
* instance, ``delta``: :math:`\min_{w\in\Delta_n}\langle w,\ell\rangle` s.t. :math:`D(w\|u)\le\delta`;
* instance, ``temperature`` (``KL``, ``Alpha``, ``ChiSquared``): the penalty
  problem at the multiplier implied by the published parameterisation (below);
* class: :math:`\min_{v\in\Delta_k}\langle v,\ell_i\rangle` s.t. :math:`D(v\|y_i)\le\gamma`
  for every row :math:`i`.

The divergences are written with cvxpy atoms, :math:`D(w\|q)` as

==========================  ===========================================================================
``KL()``                    ``sum(rel_entr(w, q))``
``ReverseKL()``             ``sum(rel_entr(q, w))``, i.e. :math:`\mathrm{KL}(q\|w)`
``Alpha(a)``                :math:`\frac{1}{a(a-1)}\sum_i \big(q_i^{1-a} w_i^a - q_i - a(w_i - q_i)\big)`
                            with ``power(w, a)`` (power cones): convex for ``a > 1`` and
                            ``a < 0``, concave for ``0 < a < 1`` where the negative factor
                            :math:`1/(a(a-1))` makes the term convex.  ``|a - 1| < 1e-3``
                            is KL (as in the core), ``a = 0`` reverse KL.
``ChiSquared()``            ``sum(square(w - q) / q)``
``TotalVariation()``        ``0.5 * norm1(w - q)``
``SquaredL2()``             ``sum_squares(w - q)``
==========================  ===========================================================================

Every instance problem has two formulations: the one above in :math:`w`,
and one in the ratio variable :math:`t = w/u = n w` with
:math:`D(w\|u) = \frac1n\sum_i f(t_i)` (``f`` the generator of the
f-divergence: :math:`t\log t`, :math:`-\log t`, ...).  The ratio form keeps
the power cones well scaled near uniform weights and for ``a < 0``, the
direct form near sparse weights (``a > 1``).  For ``Alpha`` both are solved
and the better feasible answer is returned; for the others the ratio form is
tried only when the direct one is not solved to full accuracy.

For the class problem ``ReverseKL`` means :math:`\mathrm{KL}(y\|v)`, summed
over the support of :math:`y`; ``KL`` means :math:`\mathrm{KL}(v\|y)`, which is
finite only when :math:`v` vanishes off the support of :math:`y`, so the
variable is restricted to that support (with an integer label the only
feasible point is the label itself).

.. rubric:: The temperature form

For ``KL`` the published weights :math:`w\propto e^{-\ell/T}` are the penalty
solution at :math:`\lambda = T`.  For ``Alpha(a)``, :math:`a \ne 1`, the
stationarity conditions of the penalty problem read
:math:`(n w_i)^{a-1} = b_i/\lambda` on the support, with
:math:`b_i = [(1-a)\ell_i + c]_+` for a scalar :math:`c`.  Hence the published
weights :math:`w_i \propto b_i^{p}`, :math:`p = 1/(a-1)`, with the shift
:math:`c = T`, solve the penalty problem whose multiplier makes them sum to one:

.. math::

    \lambda = M_p(b) = \Big(\frac1n \sum_{i=1}^n b_i^{\,p}\Big)^{1/p},
    \qquad b_i = \max\big((1-a)\ell_i + T,\ 0\big),

the power mean of order :math:`p` (for ``a > 1`` the mean runs over all
:math:`n` entries, zeros included).  The reference computes this
:math:`\lambda` (:func:`implicit_lam`) and solves the penalty problem in
cvxpy, so agreement with the formula also checks the identity.
``ChiSquared`` is ``2 Alpha(2)``, hence solved at :math:`\lambda/2`.

.. rubric:: Guarantees and numerical conventions

* Returned weights lie exactly on the simplex (clipped at zero and
  renormalised) and satisfy the constraint as evaluated in float64: when the
  solver overshoots the radius, the answer is mixed with the prior
  (uniform, or the target) just enough to be feasible.  Hence the reference
  objective is always an *upper bound* on the true optimum, and a closed
  form that is optimal can only be as good or better.
* Each row's losses are shifted by their minimum and divided by their
  spread before solving (``lam`` is divided alike); neither changes the
  minimisers because the weights sum to one.
* Cases where the definition leaves a single feasible point, or a limit, are
  answered without a solver: ``n = 1``, ``delta = 0`` and ``gamma = 0`` (the
  prior), ``lam = inf`` or ``temperature = inf`` (uniform weights).
  ``delta = inf`` and ``gamma = inf`` drop the constraint.
* Losses must be finite.

.. rubric:: Layout

:mod:`divweights.testing.instance` holds the instance problem and
:func:`implicit_lam`, :mod:`divweights.testing.classes` the class problem,
and a private module the cvxpy atoms and the solver tiers.
"""

from __future__ import annotations

from ._solve import ReferenceSolverError
from .classes import class_weights
from .instance import implicit_lam, instance_weights

__all__ = ["ReferenceSolverError", "class_weights", "implicit_lam", "instance_weights"]
