"""The training program's package: its docstring names every module, and the neutral ones stay framework-free."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys

import divweights_train

MODULES = sorted(m.name for m in pkgutil.iter_modules(divweights_train.__path__))


def _named(text: str) -> list[str]:
    return re.findall(r":mod:`~divweights_train\.(\w+)`", text)


def test_docstring_names_every_module():
    assert sorted(set(_named(divweights_train.__doc__))) == MODULES


def test_modules_the_docstring_calls_framework_neutral_load_neither_torch_nor_jax():
    neutral = _named(divweights_train.__doc__.split("Framework-specific")[0])
    assert {"config", "runloop", "checkpoint"} <= set(neutral)
    code = (
        f"import importlib, sys\nfor m in {neutral!r}: importlib.import_module('divweights_train.' + m)\n"
        "print(sorted({'torch', 'jax'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
