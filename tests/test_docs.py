"""The documentation gallery scripts run, quickly, on the current API.

Each ``docs/examples/plot_*.py`` is executed with :func:`runpy.run_path` in a
fresh interpreter under the non-interactive Agg backend, so that a change in
the public API that breaks an example fails here rather than in ``make docs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
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
    env = dict(os.environ, MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path / "mpl"))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "adapters"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
