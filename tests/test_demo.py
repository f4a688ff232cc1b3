"""``make demo`` (``python -m divweights_train.demo``): its runs, its table and a smoke run on real data."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")

from divweights_train import demo  # noqa: E402
from divweights_train.datasets import DEFAULT_FASHION_MNIST_DIR  # noqa: E402


def _fashion_mnist_available() -> bool:
    return any((DEFAULT_FASHION_MNIST_DIR / f"t10k-labels-idx1-ubyte{ext}").is_file() for ext in ("", ".gz"))


def test_demo_compares_ce_reweighting_oracle_and_clean_on_the_same_data(tmp_path):
    configs = demo.demo_configs(tmp_path)
    assert list(configs) == ["CE", "CIW", "CICW-M", "Oracle", "CE clean"]
    assert [c.method for c in configs.values()] == ["ce", "ciw", "cicw-m", "oracle", "ce"]
    noisy = [c for label, c in configs.items() if label != "CE clean"]
    assert {c.noise for c in noisy} == {"symmetric:0.6"} and configs["CE clean"].noise == "none"
    # one model, subset and seed for every run: the comparison is like for like
    assert len({(c.subset, c.width, c.seed, c.model, c.weight_decay) for c in configs.values()}) == 1
    assert configs["CIW"].weight_decay == demo.DEMO_WEIGHT_DECAY
    assert len({c.out for c in configs.values()}) == len(configs)


def test_references_can_be_skipped(tmp_path):
    assert list(demo.demo_configs(tmp_path, clean=False, oracle=False)) == ["CE", "CIW", "CICW-M"]


def test_table_formats_missing_values_as_na():
    row = {"label": "CIW", "final_test_acc": 0.84251, "test_at_best_val": math.nan, "max_test_acc": 0.9,
           "final_auroc": None, "final_ess": 0.3871, "time": 65.4}
    line = demo.format_table([row]).splitlines()[-1]
    assert line == "| CIW | 0.8425 | n/a | 0.9000 | n/a | 0.387 | 65 |"


@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST idx files not installed")
def test_quick_demo_runs_every_method_and_writes_table_plots_and_verdict(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--width", "4", "--threads", "1", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["label"] for r in results["rows"]] == ["CE", "CIW", "CICW-M", "Oracle", "CE clean"]
    assert all(0.0 <= r["final_test_acc"] <= 1.0 for r in results["rows"])
    oracle = next(r for r in results["rows"] if r["label"] == "Oracle")
    assert oracle["final_auroc"] == 1.0  # zero weight on exactly the flipped examples
    assert any("perfect filter" in v for v in results["verdict"])
    assert any("target" in v for v in results["verdict"])
    for name in ("accuracy.png", "weights.png", "results.md"):
        assert (out / name).is_file(), name
    assert "| CE clean |" in capsys.readouterr().out
