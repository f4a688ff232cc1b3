"""Every code block of the README runs, so that the README cannot drift from the code.

* ``python`` blocks are executed in the order they appear, one namespace per
  ``##`` section (a later block of a section may use names an earlier one
  defined; no section sees another's names).
* ``bash`` blocks are checked command by command without running anything
  expensive: ``make T`` needs a target ``T`` in the Makefile,
  ``divweights-train ARGS`` must parse and resolve (``--print-config``, which
  trains nothing), ``python FILE`` / ``python -m MODULE`` need the file or
  module and ``--help`` must work.  A command of another kind fails the test,
  so a new kind of README command comes with a check here.
* Repository paths named in inline code (e.g. ``benchmarks/bench_core.py``)
  exist.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import child_env

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Imports that come from optional extras: a block that needs a missing one is skipped, not failed.
OPTIONAL = {
    "torch",
    "jax",
    "divweights_torch",
    "divweights_jax",
    "divweights_train",
    "cvxpy",
    "matplotlib",
}
#: Top-level folders whose paths, when the README names them, must exist.
TRACKED_DIRS = ("adapters", "benchmarks", "divweights", "docs", "scripts", "tests")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    section: str  # the enclosing ``##`` heading


def parse_blocks(text: str) -> list[Block]:
    """Fenced code blocks of a Markdown text, with their language and ``##`` section."""
    blocks, section, fence = [], "(top)", None
    for number, line in enumerate(text.splitlines(), 1):
        if fence is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                fence = (line[3:].strip().lower(), number, [])
        elif line.startswith("```"):
            lang, start, body = fence
            blocks.append(Block(lang, "\n".join(body) + "\n", start, section))
            fence = None
        else:
            fence[2].append(line)
    if fence is not None:
        raise ValueError(f"README.md:{fence[1]}: code block is never closed")
    return blocks


BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))
PY_SECTIONS: dict[str, list[Block]] = {}
for _b in BLOCKS:
    if _b.lang in ("python", "py"):
        PY_SECTIONS.setdefault(_b.section, []).append(_b)
SHELL_BLOCKS = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell", "console")]


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    targets = set()
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-/ ]+):(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def check_command(argv: list[str]) -> None:
    """Raise AssertionError if a README shell command refers to something that does not exist."""
    prog, args = argv[0], argv[1:]
    if prog == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a] or ["(default)"]
        missing = sorted(set(targets) - makefile_targets())
        assert not missing, f"`{shlex.join(argv)}`: no Makefile target {missing}"
    elif prog == "divweights-train":
        pytest.importorskip("torch")
        from divweights_train.cli import main

        expanded = [os.path.expanduser(a) for a in args]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main([*expanded, "--print-config"])
            except SystemExit as exc:  # argparse errors exit
                status = exc.code
        assert status == 0, f"`{shlex.join(argv)}` is rejected:\n{err.getvalue()}"
    elif prog in ("python", "python3"):
        if args[:1] == ["-m"]:
            module = args[1]
            assert importlib.util.find_spec(module) is not None, f"`{shlex.join(argv)}`: no module {module}"
            target = ["-m", module]
        else:
            path = ROOT / args[0]
            assert path.is_file(), f"`{shlex.join(argv)}`: no file {args[0]}"
            target = [str(path)]
        proc = subprocess.run(
            [sys.executable, *target, "--help"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env=child_env(),
        )
        assert proc.returncode == 0, f"`{shlex.join(argv)} --help` failed:\n{proc.stderr[-2000:]}"
    else:
        raise AssertionError(f"no check for the README command `{shlex.join(argv)}`; add one to {__file__}")


def test_readme_has_code_blocks():
    assert PY_SECTIONS and SHELL_BLOCKS, "README.md has no python or no shell code blocks"


def test_parse_blocks_keeps_sections_and_lines():
    text = "intro\n## A\n```python\nx = 1\n```\n### sub\n```bash\nmake test # c\n```\n## B\n```\ny\n```\n"
    blocks = parse_blocks(text)
    assert [(b.lang, b.section, b.line, b.code) for b in blocks] == [
        ("python", "A", 3, "x = 1\n"),
        ("bash", "A", 7, "make test # c\n"),
        ("", "B", 11, "y\n"),
    ]
    assert shell_commands("make a \\\n  b  # why\n\n# only a comment\nls -l\n") == [
        ["make", "a", "b"],
        ["ls", "-l"],
    ]


def test_check_command_rejects_what_does_not_exist():
    with pytest.raises(AssertionError, match="no Makefile target"):
        check_command(["make", "no-such-target"])
    with pytest.raises(AssertionError, match="no file"):
        check_command(["python", "benchmarks/no_such_benchmark.py"])
    with pytest.raises(AssertionError, match="no check"):
        check_command(["curl", "example"])


@pytest.mark.parametrize("section", sorted(PY_SECTIONS), ids=lambda s: s.lower().replace(" ", "-"))
def test_readme_python_blocks_run(section, monkeypatch, tmp_path):
    blocks = PY_SECTIONS[section]
    for block in blocks:
        for node in ast.walk(ast.parse(block.code)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in OPTIONAL:
                    pytest.importorskip(name.split(".")[0])
    monkeypatch.chdir(tmp_path)  # anything a block writes lands in a temporary folder
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        code = compile(block.code, f"README.md:{block.line}", "exec")
        try:
            exec(code, namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            raise AssertionError(
                f"README.md line {block.line} ({section!r}) fails: {type(err).__name__}: {err}"
            ) from err


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: f"line{b.line}")
def test_readme_shell_commands_exist(block):
    commands = shell_commands(block.code)
    assert commands, f"README.md:{block.line}: empty shell block"
    for argv in commands:
        check_command(argv)


def _build_outputs() -> tuple[str, ...]:
    """Folders the .gitignore names (build outputs: the README may name them before they exist)."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return tuple(line.strip("/") + "/" for line in lines if line.endswith("/") and "*" not in line)


def test_readme_paths_exist():
    text = README.read_text(encoding="utf-8")
    outputs = _build_outputs()
    missing = []
    for span in re.findall(r"`([^`\n]+)`", text):
        for token in span.split():
            token = token.strip("()[],;:")
            in_repo = token.split("/")[0] in TRACKED_DIRS and "/" in token
            literal = not any(c in token for c in "*<>{}")
            built = (token + "/").startswith(outputs)
            if in_repo and literal and not built and not (ROOT / token).exists():
                missing.append(token)
    # Markdown links to files in the repository.
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if "://" not in target and not (ROOT / target).exists():
            missing.append(target)
    assert not missing, f"README.md names paths that do not exist: {sorted(set(missing))}"
