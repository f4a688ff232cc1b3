"""Closed forms and exact solvers, one module per divergence family.

* :mod:`divweights.solvers.kl` -- KL: softmin weights, exact-radius KL (uniform or any prior).
* :mod:`divweights.solvers.alpha` -- Alpha family (reverse KL, Hellinger, chi-squared, ...): power weights.
* :mod:`divweights.solvers.total_variation` -- total variation: sort-based mass moves (bootstrapping).
* :mod:`divweights.solvers.reverse_kl` -- class problem under ``KL(target || v)``.
* :mod:`divweights.solvers.squared_l2` -- class problem under the squared Euclidean distance.

The functions here take losses already prepared by :mod:`divweights._array`
(working dtype, validated) and return weights in the working dtype.
"""
