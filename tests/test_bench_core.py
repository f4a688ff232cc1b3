"""``benchmarks/bench_core.py`` runs in its tiny mode and prints every target (no timing is judged here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"


def test_tiny_run_prints_every_target_and_does_not_judge_them(capsys):
    spec = importlib.util.spec_from_file_location("bench_core", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--tiny", "--check"]) == 0  # tiny runs are not judged, so --check passes
    out = capsys.readouterr().out
    for target in ("exact-radius KL / softmin", "fixed-lam KL / softmin", "TV delta / full stable sort",
                   "peak extra memory of exact-radius KL", "one-hot ReverseKL class weights / hand formula",
                   "one-hot TotalVariation class weights / hand formula"):  # fmt: skip
        assert target in out
    assert "FAIL" not in out and "not judged" in out


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_core", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peak_memory_of_kl_instance_weights_on_numpy():
    """Memory does not depend on machine noise, so the benchmark's memory target is guarded here
    (tracemalloc, the result included): the penalty form holds the result only, the exact radius
    the result and one buffer of the rows' size, with no copy for the all-infinite / NaN row
    checks when there are none.  Issue #10's target is 3x the input."""
    import numpy as np

    import divweights as dw

    bench = _bench_module()
    for dtype in (np.float32, np.float64):
        # n as in the benchmark (the exact radius's start holds a fixed ~1 MB grid on a sketch)
        l = np.random.default_rng(0).exponential(size=1_000_000).astype(dtype)
        calls = (
            lambda l=l: dw.instance_weights(l, dw.KL(), lam=1.0),
            lambda l=l: dw.instance_weights(l, dw.KL(), delta=0.3),
        )
        for call in calls:
            call()  # first calls import and cache (counted by tracemalloc otherwise)
        lam, exact = (bench.peak_extra_bytes(call) / l.nbytes for call in calls)
        assert lam <= 1.1, (dtype, lam)
        assert exact <= 2.1, (dtype, exact)
