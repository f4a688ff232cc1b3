"""Recommended default strengths, shared by every adapter.

``DEFAULT_DELTA`` is the fixed KL radius that :class:`divweights_torch.ReweightedLoss`
and :func:`divweights_jax.reweighted_loss` used when no strength was given, before
the adaptive radius (``delta="auto"``, :mod:`divweights.adaptive`) became their
default; it stays available by name (``delta=DEFAULT_DELTA``) and remains the
default of :meth:`divweights.Strength.parse <divweights.strength.Strength.parse>`
(``KL()`` only) for the core's own callers.  An exact
KL radius is scale-free: the weights have a perplexity (effective sample size)
of ``n * exp(-delta)`` whatever the scale of the losses, so the same value
works from the first step to the last.

How it was chosen (Fashion-MNIST, 10k subset, small CNN; full log in
``benchmarks/demo_tuning.md``): the best radius tracks ``-log(1 - r)`` for a
flip rate ``r`` -- the KL distance from uniform of uniform weights on the
clean fraction (0.22 at 20% noise, 0.51 at 40%, 0.92 at 60%).  At 60% noise
``delta = 1.0`` gave 0.833-0.846 clean test accuracy and 0.5 gave 0.834 over
20 epochs; at 20% noise ``delta = 0.3`` beat plain cross-entropy (0.867 vs
0.857) while ``1.0`` fell to 0.79.  No single constant is right for every
noise rate; 0.5 matches about 40% noise and stays safe at 20%.  When the noise
rate is roughly known, pass ``delta=-log(1 - rate)``.
"""

DEFAULT_DELTA = 0.5

__all__ = ["DEFAULT_DELTA"]
