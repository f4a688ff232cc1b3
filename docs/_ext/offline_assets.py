"""Sphinx extension: the built site loads nothing from another host.

* MathJax is served from the site itself: the copy shipped by the
  ``sphinx-mathjax-offline`` package (in the ``docs`` extra) is added to the
  static files and ``mathjax_path`` points at it, so math renders with no
  network.
* After an HTML build, every page is scanned; a ``<script src>``,
  ``<link href>`` (style sheets, fonts, icons), ``<img src>``, ``<iframe src>``,
  ``<source src>`` or ``<embed src>`` that names another host, and a local
  ``<script src>`` whose file is missing from the build, is reported as a
  warning (an error under ``sphinx-build -W``, as ``make docs`` runs it).
  Plain ``<a href>`` links to other sites are fine: they load nothing.
"""

from __future__ import annotations

import importlib.util
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

#: Attribute that loads a resource, per tag.
LOADING_ATTRS = {
    "script": "src",
    "link": "href",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "embed": "src",
}
MATHJAX_PACKAGE = "sphinx-mathjax-offline"  # the import name has dashes, as the package ships it
MATHJAX_ENTRY = "mathjax/tex-chtml.js"  # relative to the package's static/ folder and the site's _static/


def mathjax_static_dir() -> Path:
    """The ``static`` folder of the ``sphinx-mathjax-offline`` package (it holds ``mathjax/``)."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the docs serve MathJax from the built site and need the sphinx-mathjax-offline package: "
            "pip install -e '.[docs]' (or make docs, which installs it)"
        )
    static = Path(spec.origin).parent / "static"
    if not (static / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"{static / MATHJAX_ENTRY} is missing: reinstall sphinx-mathjax-offline")
    return static


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        attr = LOADING_ATTRS.get(tag)
        if attr is None:
            return
        value = dict(attrs).get(attr)
        if value:
            self.urls.append((tag, value.strip()))

    handle_startendtag = handle_starttag


def loaded_urls(html: str) -> list[tuple[str, str]]:
    """``(tag, url)`` of every resource a page loads (scripts, style sheets, images, frames)."""
    parser = _Loads()
    parser.feed(html)
    parser.close()
    return parser.urls


def is_remote(url: str) -> bool:
    """True for a URL on another host (``https://…``, ``//host/…``); data: URLs and relative paths are local."""
    parts = urlsplit(url)
    return bool(parts.netloc) or parts.scheme not in ("", "data", "file")


def offline_problems(outdir: str | Path) -> list[str]:
    """Every remote load, and every local script that is missing, in the HTML files under ``outdir``."""
    outdir = Path(outdir)
    problems = []
    for page in sorted(outdir.rglob("*.html")):
        rel = page.relative_to(outdir).as_posix()
        for tag, url in loaded_urls(page.read_text(encoding="utf-8", errors="replace")):
            if is_remote(url):
                problems.append(f"{rel}: <{tag}> loads {url} from another host")
            elif tag == "script":
                path = urlsplit(url).path
                if path and not (page.parent / path).resolve().is_file():
                    problems.append(f"{rel}: <script> loads {url}, which is not in the build")
    return problems


def _check_build(app, exc) -> None:
    if exc is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for problem in offline_problems(app.outdir):
        logger.warning("offline docs: %s", problem)


def _use_local_mathjax(app, config) -> None:
    static = str(mathjax_static_dir())
    if static not in config.html_static_path:
        config.html_static_path.append(static)
    config.mathjax_path = MATHJAX_ENTRY


def setup(app):
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _check_build)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
