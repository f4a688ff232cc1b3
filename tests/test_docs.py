"""The documentation: gallery scripts run, and the built site works offline.

Each ``docs/examples/plot_*.py`` is executed with :func:`runpy.run_path` in a
fresh interpreter under the non-interactive Agg backend, so that a change in
the public API that breaks an example fails here rather than in ``make docs``.

The site loads nothing from another host (math is rendered by a MathJax copy
served from the site): the check of ``docs/_ext/offline_assets.py`` is tested
on small pages here, and a slow test builds the whole site as ``make docs``
does and runs it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import child_env, run_python

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import offline_assets

EXAMPLES = sorted((ROOT / "docs" / "examples").glob("plot_*.py"))
TIMEOUT_S = 120  # each script takes a few seconds; generous for a shared CPU

RUNNER = (
    "import sys, runpy, matplotlib\n"
    "matplotlib.use('Agg')\n"
    "import matplotlib.pyplot as plt\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
    "assert plt.get_fignums(), 'the example made no figure'\n"
)


def test_gallery_is_not_empty():
    assert EXAMPLES, "no docs/examples/plot_*.py found"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_gallery_example_runs(script, tmp_path):
    env = child_env(MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path / "mpl"))
    proc = run_python(["-c", RUNNER, str(script)], cwd=tmp_path, timeout=TIMEOUT_S, env=env)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"


PAGE = """<html><head>
<script src="_static/doctools.js?v=1"></script>
<script defer="defer" src="../_static/mathjax/tex-chtml.js?v=2"></script>
<link rel="stylesheet" href="_static/basic.css" />
{extra}
</head><body><a href="https://example.org/paper">a link loads nothing</a>
<img src="data:image/png;base64,AAAA" /></body></html>
"""


def _site(tmp_path, extra=""):
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "doctools.js").write_text("")
    (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text(
        PAGE.format(extra=extra).replace('"_static/doctools', '"../_static/doctools')
    )
    return tmp_path


def test_offline_check_accepts_local_assets_and_plain_links(tmp_path):
    assert offline_assets.offline_problems(_site(tmp_path)) == []


@pytest.mark.parametrize(
    "extra",
    [
        '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"></script>',
        '<link href="https://cdn.datatables.net/1.13.6/css/dataTables.min.css" rel="stylesheet" />',
        '<script src="//code.jquery.com/jquery-3.7.0.js"></script>',
        '<img src="http://example.org/badge.svg">',
    ],
    ids=["cdn-script", "cdn-stylesheet", "protocol-relative", "remote-image"],
)
def test_offline_check_reports_loads_from_another_host(tmp_path, extra):
    problems = offline_assets.offline_problems(_site(tmp_path, extra))
    assert len(problems) == 1 and "from another host" in problems[0] and problems[0].startswith("sub/page.html")


def test_offline_check_reports_a_missing_local_script(tmp_path):
    problems = offline_assets.offline_problems(_site(tmp_path, '<script src="../_static/missing.js"></script>'))
    assert problems == ["sub/page.html: <script> loads ../_static/missing.js, which is not in the build"]


def test_docs_conf_serves_mathjax_from_the_site():
    """conf.py uses the offline extension, whose MathJax copy is installed (docs extra)."""
    pytest.importorskip("sphinx")
    assert "offline_assets" in (ROOT / "docs" / "conf.py").read_text()
    static = offline_assets.mathjax_static_dir()
    assert (static / offline_assets.MATHJAX_ENTRY).is_file()
    assert not offline_assets.is_remote(offline_assets.MATHJAX_ENTRY)


@pytest.mark.slow
def test_docs_build_is_warning_free_and_offline(tmp_path):
    """The whole site builds as ``make docs`` does (``-W``) and loads nothing from another host."""
    pytest.importorskip("sphinx")
    if importlib.util.find_spec(offline_assets.MATHJAX_PACKAGE) is None:
        pytest.fail("sphinx-mathjax-offline is not installed (pip install -e '.[docs]')")
    out = tmp_path / "html"
    env = child_env(MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path / "mpl"))
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
    ]
    proc = subprocess.run(
        [*cmd, str(ROOT / "docs"), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"docs build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert offline_assets.offline_problems(out) == []
    assert (out / "_static" / offline_assets.MATHJAX_ENTRY).is_file()
    math_pages = [p for p in out.rglob("*.html") if "mathjax/tex-chtml.js" in p.read_text(encoding="utf-8")]
    assert any(p.relative_to(out).parts[0] == "derivations" for p in math_pages), "no derivation page loads MathJax"
