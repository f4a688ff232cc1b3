"""Sphinx configuration for the divweights documentation.

The build and the built site are fully offline: no intersphinx inventories are
fetched, MathJax is served from the site itself (``_ext/offline_assets.py``,
with the copy shipped by the ``sphinx-mathjax-offline`` package), a page that
would load a script, style sheet or image from another host fails the build
under ``-W``, and the example gallery runs on CPU with NumPy and Matplotlib
only.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Importable without an editable install too.
for path in (ROOT, ROOT / "adapters", DOCS / "_ext"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib

matplotlib.use("Agg")

import divweights

project = "divweights"
author = "divweights developers"
copyright = "divweights developers"
version = release = divweights.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "offline_assets",  # local MathJax; no page loads anything from another host
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = [
    "_build",
    "_static/*.rst",  # fragments pulled in with ``.. include::``
    "examples/README.rst",
    # sphinx-gallery's timing pages load jQuery/DataTables from CDNs; they are not written
    # (write_computation_times below), and stale copies from older builds are ignored.
    "sg_execution_times.rst",
    "auto_examples/sg_execution_times.rst",
    "**.ipynb_checkpoints",
]

# The training command's page is built only once its module exists: until
# then it is excluded and left out of the API toctree (see _write_optional).
HAVE_CLI = importlib.util.find_spec("divweights_train.cli") is not None
if not HAVE_CLI:
    exclude_patterns.append("api/cli.rst")
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = None
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": False, "show-inheritance": False}
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False

# -- HTML ---------------------------------------------------------------------
html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"divweights {release}"
html_theme_options = {
    "description": "Divergence-constrained instance and class reweighting for noisy labels",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}

# -- sphinx-gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_memory": False,
    "write_computation_times": False,
    "plot_gallery": "True",
}


# -- the training CLI's --help, captured at build time ---------------------------
def _write_cli_help() -> None:
    """Write ``divweights-train --help`` to ``generated/cli_help.txt``.

    The page ``api/cli.rst`` includes it, so the documented flags are always
    those of the installed command.  If the command cannot run, a note says so.
    """
    out = DOCS / "generated" / "cli_help.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    code = "import sys\nfrom divweights_train.cli import main\nsys.argv = ['divweights-train', '--help']\nmain()\n"
    env = dict(
        os.environ,
        COLUMNS="100",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "adapters")]),
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=ROOT,
        )
        text = proc.stdout if proc.returncode == 0 and proc.stdout.strip() else ""
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    if not text:
        text = "(divweights-train --help could not be run when these pages were built)\n"
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def _write_optional() -> None:
    """Write the include fragments that depend on the optional CLI page."""
    gen = DOCS / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    fragments = {
        "api_cli_toctree.inc": ".. toctree::\n   :maxdepth: 2\n\n   cli\n" if HAVE_CLI else "",
        "cli_link.inc": ("The option list of the installed version is in :doc:`../api/cli`.\n" if HAVE_CLI else ""),
    }
    for name, text in fragments.items():
        path = gen / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def _clear_autosummary_stubs() -> None:
    """Delete the autosummary stubs of earlier builds (``generated/*.rst``).

    autosummary writes one stub per documented object and regenerates every stub
    that the API pages list; a stub of an object that moved or was renamed since
    would otherwise stay behind as an orphan page (a warning, so an error under
    ``-W``) in a checkout that built the docs before.
    """
    for stub in (DOCS / "generated").glob("*.rst"):
        stub.unlink()


def _write_architecture_tables() -> None:
    """Write the tables of ``architecture.rst``: ``python scripts/architecture.py lines|imports --rst``.

    Measured from the source at every build, so the page never goes stale.
    """
    for what in ("lines", "imports"):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "architecture.py"), what, "--rst"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        path = DOCS / "generated" / f"architecture_{what}.inc"
        if not path.exists() or path.read_text() != proc.stdout:
            path.write_text(proc.stdout)


_clear_autosummary_stubs()
_write_optional()
_write_architecture_tables()
if HAVE_CLI:
    _write_cli_help()
