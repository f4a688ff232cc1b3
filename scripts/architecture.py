"""The layers of divweights, measured from the source: line counts per package and who imports whom.

Usage::

    python scripts/architecture.py lines     # files and lines per package
    python scripts/architecture.py imports   # which package imports which, at import time and lazily
    python scripts/architecture.py check     # the layering rules; exit status 1 and one line per breach

``--rst`` prints the tables as reStructuredText (the documentation's
architecture page includes them, built afresh by ``make docs``).  The script
reads the code with :mod:`ast` and runs none of it; it needs only the standard
library.

The packages, from the bottom layer up: the core ``divweights`` (and its
verification tool ``divweights.testing``), the adapters ``divweights_torch`` and
``divweights_jax``, the training program ``divweights_train`` (with its
framework-free ``noise`` and ``datasets`` packages), and on top the benchmarks
and the documentation's examples.  :data:`RULES` says what may not import what.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The packages, each ``(name, folder, layer)``; a module belongs to the longest name it starts with.
#: ``divweights.reference`` is the deprecated alias of ``divweights.testing`` and goes with it.
PACKAGES = (
    ("divweights", "divweights", 0),
    ("divweights.testing", "divweights/testing", 0),
    ("divweights_torch", "adapters/divweights_torch", 1),
    ("divweights_jax", "adapters/divweights_jax", 1),
    ("divweights_train", "adapters/divweights_train", 2),
    ("divweights_train.noise", "adapters/divweights_train/noise", 2),
    ("divweights_train.datasets", "adapters/divweights_train/datasets", 2),
    ("benchmarks", "benchmarks", 3),
    ("docs/examples", "docs/examples", 3),
    ("tests", "tests", 4),
    ("scripts", "scripts", 4),
)
_ALIASES = {"divweights.reference": "divweights.testing"}
#: Folders of scripts that import their neighbours by bare name (``import _timing``).
_SCRIPT_FOLDERS = {"benchmarks", "docs/examples", "tests", "scripts"}
FRAMEWORKS = ("torch", "jax", "cvxpy")

#: ``(importer, imported, when, why)``: ``importer`` may not import ``imported`` (a package, or a
#: framework's top-level name); ``when`` is ``"ever"`` (not even inside a function) or ``"import time"``.
# fmt: off
RULES = (
    ("divweights", "torch", "ever", "the core is written against the array API, for every framework"),
    ("divweights", "jax", "ever", "the core is written against the array API, for every framework"),
    ("divweights", "cvxpy", "ever", "cvxpy is the verification tool's alone"),
    ("divweights", "divweights.testing", "ever", "the weights do not depend on their checker"),
    ("divweights.testing", "cvxpy", "import time", "importing the oracle must not need cvxpy"),
    ("divweights_torch", "jax", "ever", "one framework per adapter"),
    ("divweights_torch", "divweights_jax", "ever", "one framework per adapter"),
    ("divweights_jax", "torch", "ever", "one framework per adapter"),
    ("divweights_jax", "divweights_torch", "ever", "one framework per adapter"),
    ("divweights_train.noise", "divweights", "ever", "the noise models are plain NumPy, usable without the core"),
    ("divweights_train.noise", "torch", "ever", "the noise models are framework-free"),
    ("divweights_train.noise", "jax", "ever", "the noise models are framework-free"),
    ("divweights_train.datasets", "torch", "ever", "the datasets are framework-free"),
    ("divweights_train.datasets", "jax", "ever", "the datasets are framework-free"),
)
# fmt: on


@dataclass
class Module:
    name: str  # dotted name, or "folder/stem" for a script
    path: Path  # relative to the root of the tree
    package: str
    lines: int
    imports: dict[str, str] = field(default_factory=dict)  # imported module -> "import time" | "lazy"


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "adapters":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(name: str, rel: Path) -> str | None:
    """The package of the file ``rel``: the one with the longest folder that holds it."""
    folder = rel.parent.as_posix()
    holders = [(len(f), pkg) for pkg, f, _ in PACKAGES if folder == f or folder.startswith(f + "/")]
    return _ALIASES.get(name, max(holders)[1]) if holders else None


def read_modules(root: Path = ROOT) -> dict[str, Module]:
    """Every Python file of the packages, keyed by module name, with its imports resolved."""
    modules: dict[str, Module] = {}
    paths = sorted({p for _, folder, _ in PACKAGES for p in (root / folder).rglob("*.py")})
    for path in paths:
        rel = path.relative_to(root)
        script = rel.parent.as_posix() in _SCRIPT_FOLDERS
        name = f"{rel.parent.as_posix()}/{rel.stem}" if script else _module_name(rel)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        modules[name] = Module(name, rel, _package_of(_module_name(rel), rel), lines)
    for module in modules.values():
        module.imports = _imports(module, modules, root)
    return modules


def _imports(module: Module, modules: dict[str, Module], root: Path) -> dict[str, str]:
    tree = ast.parse((root / module.path).read_text(encoding="utf-8"), filename=str(module.path))
    found: dict[str, str] = {}
    is_package = module.path.name == "__init__.py"
    here = module.name.split(".") if is_package else module.name.split(".")[:-1]
    folder = module.path.parent.as_posix()

    def resolve(dotted: str) -> str:
        if folder in _SCRIPT_FOLDERS and f"{folder}/{dotted.split('.')[0]}" in modules:
            return f"{folder}/{dotted.split('.')[0]}"
        return dotted

    def add(target: str, lazy: bool) -> None:
        if not lazy or target not in found:
            found[target] = "lazy" if lazy else "import time"

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(resolve(alias.name), lazy)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = here[: len(here) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                else:
                    base = resolve(base)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if sub in modules else base, lazy)
            visit(child, inner)

    visit(tree, False)
    return found


def package_of_import(target: str, modules: dict[str, Module]) -> str:
    """The package of an imported module, or the top-level name of a library outside the tree."""
    if target in modules:
        return modules[target].package
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:i]) in modules:
            return modules[".".join(parts[:i])].package
    return parts[0]


def package_edges(modules: dict[str, Module]) -> dict[str, dict[str, str]]:
    """``{package: {imported package or library: "import time" | "lazy"}}`` (import time wins)."""
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for module in modules.values():
        for target, when in module.imports.items():
            other = package_of_import(target, modules)
            if other == module.package:
                continue
            if edges[module.package].get(other) != "import time":
                edges[module.package][other] = when
    return edges


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Groups of modules that import each other at import time (strongly connected, more than one)."""
    graph = {
        name: [t for t, when in m.imports.items() if when == "import time" and t in modules and t != name]
        for name, m in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            connect(v)
    return found


def breaches(modules: dict[str, Module]) -> list[str]:
    """One line per import that breaks the layering: :data:`RULES`, a lower layer importing a higher
    one, or a cycle."""
    layer = {name: lay for name, _, lay in PACKAGES}
    out = []
    for module in modules.values():
        for target, when in module.imports.items():
            other = package_of_import(target, modules)
            for importer, imported, rule_when, why in RULES:
                if module.package == importer and other == imported and (rule_when == "ever" or when == rule_when):
                    out.append(f"{module.path}: imports {target} ({when}): {why}")
            if other in layer and layer[other] > layer[module.package]:
                out.append(
                    f"{module.path}: imports {target} ({when}): "
                    f"{module.package} (layer {layer[module.package]}) may not import {other} (layer {layer[other]})"
                )
    out += [f"import cycle: {' -> '.join(group)}" for group in cycles(modules)]
    return out


# --------------------------------------------------------------------------- tables
def _table(header: list[str], rows: list[list[str]], rst: bool) -> str:
    if not rst:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        numeric = [all(str(r[i]).isdigit() for r in rows) for i in range(len(header))]
        fmt = "  ".join(f"{{:{'>' if num else '<'}{w}}}" for num, w in zip(numeric, widths))
        return "\n".join(fmt.format(*r) for r in [header, *rows])
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   * - {row[0]}", *(f"     - {cell}" for cell in row[1:])]
    return "\n".join(lines)


def line_table(modules: dict[str, Module], rst: bool = False) -> str:
    by_package: dict[str, list[Module]] = defaultdict(list)
    for m in modules.values():
        by_package[m.package].append(m)
    rows = []
    for name, _, _ in PACKAGES:
        members = by_package.get(name, [])
        if not members:
            continue
        largest = max(members, key=lambda m: m.lines)
        label = f"``{name}``" if rst else name
        biggest = f"{largest.path.name} ({largest.lines})"
        rows.append([label, str(len(members)), str(sum(m.lines for m in members)), biggest])
    return _table(["package", "files", "lines", "largest file (lines)"], rows, rst)


def import_table(modules: dict[str, Module], rst: bool = False) -> str:
    edges = package_edges(modules)
    order = [name for name, _, _ in PACKAGES]
    rows = []
    for name in order:
        if name in ("tests", "scripts") or name not in edges:
            continue

        def listed(when: str, name: str = name) -> str:
            found = sorted(
                (t for t, w in edges[name].items() if w == when and (t in order or t in FRAMEWORKS)),
                key=lambda t: (t not in order, order.index(t) if t in order else t),
            )
            text = ", ".join(f"``{t}``" if rst else t for t in found)
            return text or "–"

        rows.append([f"``{name}``" if rst else name, listed("import time"), listed("lazy")])
    return _table(["package", "imports when imported", "imports inside functions only"], rows, rst)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=("lines", "imports", "check"))
    parser.add_argument("--rst", action="store_true", help="reStructuredText tables (for the docs)")
    args = parser.parse_args(argv)
    modules = read_modules()
    if args.what == "lines":
        print(line_table(modules, args.rst))
    elif args.what == "imports":
        print(import_table(modules, args.rst))
    else:
        found = breaches(modules)
        print("\n".join(found) if found else f"layering holds: {len(modules)} modules, no cycle")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
