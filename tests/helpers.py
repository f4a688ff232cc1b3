"""Shared test data: divergences and the forms each supports; label helpers for the noise tests."""

import math

import numpy as np

import divweights as dw

INSTANCE_CASES = [
    (dw.KL(), "lam"), (dw.KL(), "delta"), (dw.KL(), "temperature"),
    (dw.ReverseKL(), "lam"), (dw.ReverseKL(), "delta"), (dw.ReverseKL(), "temperature"),
    (dw.Alpha(0.1), "temperature"), (dw.Alpha(0.5), "lam"), (dw.Alpha(0.5), "delta"),
    (dw.Alpha(2.0), "lam"), (dw.Alpha(2.0), "delta"), (dw.Alpha(3.0), "temperature"),
    (dw.Alpha(-1.0), "delta"), (dw.ChiSquared(), "lam"), (dw.ChiSquared(), "delta"),
    (dw.TotalVariation(), "lam"), (dw.TotalVariation(), "delta"),
    (dw.SquaredL2(), "lam"), (dw.SquaredL2(), "delta"),
]
CLASS_DIVERGENCES = [dw.TotalVariation(), dw.ReverseKL(), dw.SquaredL2()]


def case_id(case):
    d, form = case
    return f"{d!r}-{form}"


def balanced(n, k, seed=0):
    """n labels, as balanced as possible over k classes, in random order."""
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def within(count, n, p, sigmas=5.0):
    """Is a Binomial(n, p) count within ``sigmas`` standard deviations of n*p?"""
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= sigmas * sd + 1e-9


def random_scores(n, k, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)
