"""Shared test data: divergences and the forms each supports; label helpers for the noise tests;
child Python processes that import this checkout."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import divweights as dw

# fmt: off
INSTANCE_CASES = [
    (dw.KL(), "lam"), (dw.KL(), "delta"), (dw.KL(), "temperature"),
    (dw.ReverseKL(), "lam"), (dw.ReverseKL(), "delta"), (dw.ReverseKL(), "temperature"),
    (dw.Alpha(0.1), "temperature"), (dw.Alpha(0.5), "lam"), (dw.Alpha(0.5), "delta"),
    (dw.Alpha(2.0), "lam"), (dw.Alpha(2.0), "delta"), (dw.Alpha(3.0), "temperature"),
    (dw.Alpha(-1.0), "delta"), (dw.ChiSquared(), "lam"), (dw.ChiSquared(), "delta"),
    (dw.TotalVariation(), "lam"), (dw.TotalVariation(), "delta"),
    (dw.SquaredL2(), "lam"), (dw.SquaredL2(), "delta"),
]
# fmt: on
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


ROOT = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """``os.environ`` for a child Python that imports this checkout (the core and the adapters first)."""
    paths = [str(ROOT), str(ROOT / "adapters"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p), **extra)


def run_python(args, *, cwd, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh interpreter that imports this checkout; output captured as text, not checked."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=child_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def python_output(code: str) -> str:
    """What ``python -c code`` prints in a fresh interpreter (which must exit 0), stripped."""
    proc = run_python(["-c", code], cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def import_deprecated(monkeypatch, old: str, new_home: str, importer: str):
    """Import the deprecated alias ``old`` afresh, as an ``import`` statement in the file ``importer``.

    Asserts that it warns with a ``DeprecationWarning`` naming ``new_home``,
    attributed to ``importer`` (where users see it), and returns the module.
    """
    parent, _, name = old.rpartition(".")
    monkeypatch.delitem(sys.modules, old, raising=False)
    monkeypatch.delattr(sys.modules[parent], name, raising=False)
    with pytest.warns(DeprecationWarning, match=new_home) as record:
        exec(compile(f"import {old}", importer, "exec"), {})
    assert record[0].filename == importer
    return sys.modules[old]


def assert_same_names(old, new) -> None:
    """Module ``old`` offers every public name of ``new``, as the same objects."""
    assert sorted(old.__all__) == sorted(new.__all__)
    assert all(getattr(old, name) is getattr(new, name) for name in new.__all__)
