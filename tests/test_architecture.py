"""The layering of the packages (docs/architecture.rst), checked on the source and on a fresh interpreter.

``scripts/architecture.py`` reads every module's imports with :mod:`ast`; its
rules are that a package imports nothing of a higher layer (core <- adapters
<- training program <- benchmarks and examples), that the core imports no
framework, cvxpy or its own checker, that each adapter imports one framework,
and that no modules import each other in a circle.  ``import divweights``
itself is checked in ``test_oracle_class.py``.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import ROOT, python_output, run_python

_spec = importlib.util.spec_from_file_location("architecture", ROOT / "scripts" / "architecture.py")
architecture = importlib.util.module_from_spec(_spec)
sys.modules["architecture"] = architecture  # dataclasses look their module up
_spec.loader.exec_module(architecture)


def test_the_tree_keeps_its_layers_and_has_no_import_cycle():
    assert architecture.breaches(architecture.read_modules()) == []


@pytest.mark.parametrize("what", ["lines", "imports", "check"])
def test_the_script_runs(what):
    proc = run_python(
        [str(ROOT / "scripts" / "architecture.py"), what, "--rst"],
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip()


def test_line_table_counts_every_file_of_each_package():
    modules = architecture.read_modules()
    table = architecture.line_table(modules)
    core = [m for m in modules.values() if m.package == "divweights"]
    expected = sum(len((ROOT / m.path).read_text().splitlines()) for m in core)
    row = next(line.split() for line in table.splitlines() if line.startswith("divweights "))
    assert row[1:3] == [str(len(core)), str(expected)]
    assert any(m.path.as_posix() == "divweights/solvers/kl.py" for m in core)  # subfolders count too


def _tree(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return architecture.read_modules(tmp_path)


def test_the_checker_finds_an_import_cycle(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "divweights/__init__.py": "",
            "divweights/a.py": "from .b import g\n",
            "divweights/b.py": "from divweights import c\n",
            "divweights/c.py": "from . import a\n",
        },
    )
    assert architecture.breaches(modules) == ["import cycle: divweights.a -> divweights.b -> divweights.c"]


def test_a_lazy_import_is_no_cycle(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "divweights/__init__.py": "",
            "divweights/a.py": "from .b import g\n",
            "divweights/b.py": "def g():\n    from .a import f\n",
        },
    )
    assert architecture.breaches(modules) == []


@pytest.mark.parametrize(
    "rel, code, breach",
    [
        (
            "divweights/x.py",
            "import torch\n",
            "the core is written against the array API",
        ),
        (
            "divweights/x.py",
            "def f():\n    import jax.numpy\n",
            "the core is written against the array API",
        ),
        (
            "divweights/x.py",
            "from .testing import check\n",
            "do not depend on their checker",
        ),
        ("divweights/testing/x.py", "import cvxpy\n", "must not need cvxpy"),
        ("adapters/divweights_torch/x.py", "import jax\n", "one framework per adapter"),
        (
            "adapters/divweights_jax/x.py",
            "from divweights_train import cli\n",
            "may not import divweights_train",
        ),
        (
            "divweights/x.py",
            "def f():\n    import divweights_torch\n",
            "may not import divweights_torch",
        ),
        ("adapters/divweights_train/noise/x.py", "import divweights\n", "plain NumPy"),
        (
            "adapters/divweights_train/x.py",
            "import benchmarks\n",
            "may not import benchmarks",
        ),
    ],
)
def test_the_checker_finds_a_forbidden_import(tmp_path, rel, code, breach):
    files = {
        "divweights/__init__.py": "",
        "divweights/testing/__init__.py": "",
        "adapters/divweights_torch/__init__.py": "",
        "adapters/divweights_jax/__init__.py": "",
        "adapters/divweights_train/__init__.py": "",
        "adapters/divweights_train/noise/__init__.py": "",
        "benchmarks/__init__.py": "",
        rel: code,
    }
    found = architecture.breaches(_tree(tmp_path, files))
    assert len(found) == 1 and found[0].startswith(rel) and breach in found[0], found


def test_the_oracle_may_import_cvxpy_inside_a_function(tmp_path):
    modules = _tree(tmp_path, {"divweights/testing/x.py": "def solve():\n    import cvxpy\n"})
    assert architecture.breaches(modules) == []


@pytest.mark.parametrize(
    "adapter, framework, other",
    [("divweights_torch", "torch", "jax"), ("divweights_jax", "jax", "torch")],
)
def test_importing_an_adapter_loads_neither_the_other_framework_nor_the_training_program(adapter, framework, other):
    pytest.importorskip(framework)
    code = f"import sys, {adapter}; print(sorted({{'{other}', 'divweights_train'}} & set(sys.modules)))"
    assert python_output(code) == "[]"
