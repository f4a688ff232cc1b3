"""Helpers of the training-program tests that check errors raised before training."""

from __future__ import annotations

import pytest
from divweights_train import cli, runloop

#: A small CLI run: two-moons, 200 examples, 2 epochs of 5 steps, quiet, no plots.
_MOONS = (
    "--dataset two-moons --noise symmetric:0.3 --quiet --subset 200 --batch-size 32 --epochs 2 --method ciw --no-plots"
)
MOONS = [*_MOONS.split(), "--threads", "1"]
#: The same run with JAX (which takes no --threads).
MOONS_JAX = ["--framework", "jax", *_MOONS.split()]


def forbid_training(monkeypatch) -> None:
    """Fail the test if a run gets as far as preparing its data (errors must come before training)."""
    monkeypatch.setattr(runloop, "prepare_data", lambda *a, **k: pytest.fail("training started"))


def refused(args, capsys) -> str:
    """Run the CLI with ``args``; assert exit status 2 and a one-line message, and return it."""
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err
