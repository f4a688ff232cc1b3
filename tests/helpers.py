"""Shared test data: divergences and the forms each supports."""

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
