"""Every benchmark script runs (in its smallest mode) and ``make bench`` runs every one of them.

No timing is asserted here: timing goals live in the benchmarks' own tables
(medians of interleaved runs, ratios in the same run). These tests only keep
the scripts from rotting, and ``make bench`` from naming a script that does
not exist (as it once named ``benchmarks/bench_adapters.py``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest
from helpers import child_env, run_python

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
#: Every benchmark script and its smallest invocation; a new script needs an entry (see the test below).
SMALLEST = {
    "bench_torch_step.py": ["--tiny"],
    "bench_jax_step.py": ["--tiny"],
    "gpu_step.py": ["--device", "cpu", "--tiny"],
    "bench_core.py": ["--quick"],
    "adaptive_radius.py": ["--tiny"],  # no smaller mode: n = 1e5 and cvxpy solves (slow)
    "fashion_mnist_table.py": ["--estimate"],  # times a few CNN steps and prints the grid's estimate
}
#: More than ~10 s of CPU: bench_core's quick mode, and the JAX steps' jit compiles (about 20 s today).
SLOW = {"bench_core.py", "bench_jax_step.py"}
NEEDS = {
    "bench_torch_step.py": ["torch"],
    "bench_jax_step.py": ["jax"],
    "gpu_step.py": ["torch"],
    "bench_core.py": ["cvxpy"],
    "fashion_mnist_table.py": ["torch"],
    "adaptive_radius.py": ["torch", "sklearn"],
}


def scripts() -> list[str]:
    return sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        out.append(line.strip())
    return out


def run_script(name: str, args: list[str], tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = child_env(MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return run_python([str(BENCH / name), *args], cwd=tmp_path, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def smallest_run(tmp_path_factory):
    """``name -> CompletedProcess`` of the script's smallest invocation, each run once per module."""
    done = {}

    def get(name: str) -> subprocess.CompletedProcess:
        for module in NEEDS[name]:
            pytest.importorskip(module)
        if name not in done:
            done[name] = run_script(name, SMALLEST[name], tmp_path_factory.mktemp(name.removesuffix(".py")))
        return done[name]

    return get


def test_every_benchmark_has_a_smallest_invocation():
    assert set(scripts()) == set(SMALLEST), "add the new benchmark's smallest invocation to SMALLEST"


def test_make_bench_runs_every_benchmark_and_nothing_missing():
    commands = recipe("bench")
    named = {m.group(1) for c in commands for m in [re.search(r"benchmarks/(\w+\.py)", c)] if m}
    assert named == set(scripts()), f"make bench runs {sorted(named)}, the benchmarks are {scripts()}"
    for target in ("bench", "bench-full", "bench-accuracy"):
        for command in recipe(target):
            for path in re.findall(r"benchmarks/\w+\.py", command):
                assert (ROOT / path).is_file(), f"make {target} runs {path}, which does not exist"


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(SMALLEST)],
)
def test_benchmark_runs_in_its_smallest_mode(name, smallest_run):
    proc = smallest_run(name)
    assert proc.returncode == 0, (
        f"{name} {' '.join(SMALLEST[name])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert proc.stdout.strip(), f"{name} printed nothing"


STEP_BENCHES = ["bench_torch_step.py", "bench_jax_step.py", "gpu_step.py"]


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in STEP_BENCHES],
)
def test_step_benchmark_reports_every_method_against_its_goal(name, smallest_run):
    """The step tables name CE, the A/A control and the three methods, with ratios and PASS/FAIL for the goals."""
    proc = smallest_run(name)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for method in ("CE", "CE again", "CIW", "CICW", "CICW-M"):
            if method in cells:
                rows.setdefault(method, []).append(cells)
    assert set(rows) == {"CE", "CE again", "CIW", "CICW", "CICW-M"}, proc.stdout
    for method, goal in (
        ("CIW", "<= 1.03"),
        ("CICW", "<= 1.03"),
        ("CICW-M", "<= 1.30"),
    ):
        for cells in rows[method]:
            assert goal in cells, cells
            assert {"PASS", "FAIL"} & set(cells) or any("not compilable" in c for c in cells), cells
    for cells in rows["CE"]:
        assert "1.000" in cells, cells  # the baseline's paired ratio to itself


def test_gpu_step_without_a_gpu_says_so_and_exits_cleanly(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = run_script("gpu_step.py", [], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU" in proc.stdout and "Traceback" not in proc.stderr


def test_adaptive_radius_cli_mode_trains_through_the_training_program(tmp_path):
    """``--cli`` runs the same cells through ``divweights-train`` (two-moons at 40%, 3 epochs: CE, fixed, auto)."""
    for module in NEEDS["adaptive_radius.py"]:
        pytest.importorskip(module)
    out = tmp_path / "cli.jsonl"
    proc = run_script("adaptive_radius.py", ["--cli", "--tiny", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["method"] for r in rows} == {"ce", "fixed:0.5", "auto"}
    assert all(r["cli"] and r["spec"] == "symmetric-uniform:0.4" and 0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert "auto - best fixed" in proc.stdout


def test_adaptive_radius_cli_noise_specs():
    spec = importlib.util.spec_from_file_location("adaptive_radius", BENCH / "adaptive_radius.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.cli_noise("digits", "symmetric", 0.0) == "none"
    assert module.cli_noise("two-moons", "symmetric", 0.4) == "symmetric-uniform:0.4"
    assert module.cli_noise("digits", "asymmetric", 0.4) == "pairflip:0.4"
    assert module.cli_noise("fashion-mnist", "asymmetric", 0.4) == "asymmetric:0.4"


def test_adaptive_radius_momentum_method_sets_the_noise_momentum():
    """``momentum:M`` is ``ReweightedLoss(noise_momentum=M)``: at ``M = 0`` the tracked rate after one step is
    the batch's own estimate (the pure JAX default), at the default momentum a twentieth of it."""
    pytest.importorskip("torch")
    import numpy as np
    import torch

    import divweights as dw

    spec = importlib.util.spec_from_file_location("adaptive_radius", BENCH / "adaptive_radius.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "momentum:0" in module.METHODS
    z = torch.randn(64, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    y = torch.arange(64) % 5
    batch = float(dw.noise_rate(-torch.log_softmax(z, dim=1).numpy(), y.numpy()))
    for method, share in (("momentum:0", 1.0), ("auto", 1.0 - dw.adaptive.DEFAULT_NOISE_MOMENTUM)):
        loss = module.make_loss(method, 0.0)
        loss(z, y, None)
        fn = loss.__closure__[0].cell_contents  # the ReweightedLoss the lambda calls
        np.testing.assert_allclose(float(fn.noise_rate), share * batch, rtol=1e-6)
