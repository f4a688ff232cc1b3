"""Nothing the project reads back can run code: every load in the source tree is explicit and pickle-free.

Issue 16: a checkpoint, noise cache or weight file from someone else must not
execute code when loaded. This walks the syntax tree of every Python file of
the library, the adapters, the benchmarks, the scripts and the docs examples
and checks each call:

* ``np.load`` / ``numpy.load`` passes ``allow_pickle=False``;
* ``torch.load`` passes ``weights_only=True``;
* ``pickle.load`` / ``pickle.loads`` / ``pickle.Unpickler`` appear only in the
  CIFAR reader, whose unpickler rebuilds plain containers and arrays only
  (tested in tests/test_datasets.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["divweights", "adapters", "benchmarks", "scripts", "docs/examples"]
#: The one reader of pickles: CIFAR's own format, with a restricted unpickler.
PICKLE_READERS = {Path("adapters/divweights_train/datasets/cifar.py")}
#: Keyword that makes each loader pickle-free, and the value it must have.
SAFE = {
    ("np", "load"): ("allow_pickle", False),
    ("numpy", "load"): ("allow_pickle", False),
    ("torch", "load"): ("weights_only", True),
}
PICKLE_CALLS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler")}


def _calls(path: Path):
    """``(line, (module, function), call)`` for each ``module.function(...)`` call in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            yield node.lineno, (node.func.value.id, node.func.attr), node


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def unsafe_loads(root: Path = ROOT) -> list[str]:
    """``path:line`` of each load that could unpickle code."""
    found = []
    for folder in SOURCES:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            for line, name, call in _calls(path):
                if name in SAFE:
                    keyword, value = SAFE[name]
                    if _keyword(call, keyword) is not value:
                        found.append(f"{rel}:{line} {'.'.join(name)} without {keyword}={value}")
                elif name in PICKLE_CALLS and rel not in PICKLE_READERS:
                    found.append(f"{rel}:{line} {'.'.join(name)}")
    return found


def test_every_load_in_the_source_tree_is_pickle_free():
    assert unsafe_loads() == []


def test_the_check_finds_implicit_loads(tmp_path):
    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "m.py").write_text(
        "import numpy as np, pickle, torch\n"
        "np.load('a.npz')\n"
        "np.load('b.npz', allow_pickle=False)\n"
        "torch.load('c.pt', weights_only=False)\n"
        "pickle.load(open('d', 'rb'))\n"
    )
    assert unsafe_loads(tmp_path) == [
        "adapters/m.py:2 np.load without allow_pickle=False",
        "adapters/m.py:4 torch.load without weights_only=True",
        "adapters/m.py:5 pickle.load",
    ]
