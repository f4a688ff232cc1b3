"""The benchmark-of-record script reuses a finished cell only when it is the same run."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from divweights_train.config import TrainConfig

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fashion_mnist_table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("fashion_mnist_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(out, subset=10000, width=16, epochs=None):
    return argparse.Namespace(out=str(out), data_dir=None, subset=subset, width=width, epochs=epochs, threads=1)


def _finish(config: TrainConfig, accuracy: float = 0.5) -> None:
    folder = Path(config.out)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config.resolved().to_json())
    (folder / "summary.json").write_text(json.dumps({"completed": True, "final_test_acc": accuracy}))


def test_grid_scales_get_separate_folders(table, tmp_path):
    full = table._config(_args(tmp_path), "symmetric:0.6", "ciw", 0)
    quick = table._config(_args(tmp_path, subset=4000, width=8, epochs=12), "symmetric:0.6", "ciw", 0)
    assert Path(full.out).parent.parent.parent.parent.name == "n10000-w16-e30"
    assert Path(quick.out).parent.parent.parent.parent.name == "n4000-w8-e12"


def test_finished_cell_of_the_same_run_is_reused(table, tmp_path):
    config = table._config(_args(tmp_path), "symmetric:0.6", "ciw", 0)
    _finish(config, accuracy=0.81)
    assert table.finished_summary(config)["final_test_acc"] == 0.81


def test_cell_of_a_different_run_is_refused(table, tmp_path):
    config = table._config(_args(tmp_path), "symmetric:0.6", "ciw", 0)
    _finish(TrainConfig(**{**config.to_dict(), "width": 8}))
    with pytest.raises(ValueError, match="holds a different run.*width"):
        table.finished_summary(config)


def test_unfinished_cell_runs_again(table, tmp_path):
    config = table._config(_args(tmp_path), "symmetric:0.6", "ciw", 0)
    _finish(config)
    (Path(config.out) / "summary.json").write_text(json.dumps({"completed": False}))
    assert table.finished_summary(config) is None


def test_table_has_a_row_per_method_with_mean_and_spread(table):
    results = {
        ("symmetric:0.6", "ciw", 0): {"final_test_acc": 0.84, "test_at_best_val": 0.83},
        ("symmetric:0.6", "ciw", 1): {"final_test_acc": 0.86, "test_at_best_val": 0.85},
        ("symmetric:0.6", "oracle", 0): {"final_test_acc": 0.87, "test_at_best_val": 0.86},
    }
    md = table.markdown(
        results, ["symmetric:0.6"], ["ciw", "oracle"], [0, 1], {"subset": 10000, "width": 16, "epochs": 30}
    )
    assert "| CIW | 85.0 ± 1.4 |" in md
    assert "| Oracle filter | 87.0 |" in md  # one seed: no spread


def test_clean_reference_is_one_run_shared_by_every_noise_column(table, tmp_path):
    a = table._config(_args(tmp_path), "symmetric:0.2", "clean", 1)
    b = table._config(_args(tmp_path), "asymmetric:0.4", "clean", 1)
    assert a.out == b.out
    assert (a.noise, a.method, a.seed) == ("none", "ce", 1)


def test_series_gives_mean_and_spread_per_noise_and_skips_missing_cells(table):
    results = {
        ("symmetric:0.2", "ciw", 0): {"final_test_acc": 0.80},
        ("symmetric:0.2", "ciw", 1): {"final_test_acc": 0.90},
        ("symmetric:0.4", "ciw", 0): {"final_test_acc": 0.70},
    }
    points = table.series(results, ["symmetric:0.2", "symmetric:0.4", "symmetric:0.6"], "ciw", [0, 1], "final_test_acc")
    assert [n for n, _, _ in points] == ["symmetric:0.2", "symmetric:0.4"]
    assert points[0][1] == pytest.approx(85.0) and points[0][2] == pytest.approx(7.0710678)
    assert points[1][1:] == pytest.approx((70.0, 0.0))


def test_figure_is_written_for_a_partial_grid(table, tmp_path):
    pytest.importorskip("matplotlib")
    noises = ["symmetric:0.2", "symmetric:0.4", "asymmetric:0.4"]
    results = {
        (n, m, s): {"final_test_acc": 0.8 + 0.01 * s, "test_at_best_val": 0.79}
        for n in noises
        for m in ("ce", "ciw", "oracle")
        for s in (0, 1)
        if not (m == "ciw" and n == "symmetric:0.4")
    }
    path = tmp_path / "fig" / "figure.png"
    table.figure(results, noises, ["ce", "ciw", "oracle"], [0, 1], {"subset": 100, "width": 8, "epochs": 2}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorded_cell_of_the_same_run_is_reused_and_another_run_is_not(table, tmp_path):
    config = table._config(_args(tmp_path), "symmetric:0.6", "ciw", 0)
    rec = table.make_record(("symmetric:0.6", "ciw", 0), config, {"final_test_acc": 0.81, "test_at_best_val": 0.8})
    assert json.loads(json.dumps(rec))["summary"] == {"final_test_acc": 0.81, "test_at_best_val": 0.8}
    assert table.recorded_summary([rec], config)["final_test_acc"] == 0.81
    other = table._config(_args(tmp_path, width=8), "symmetric:0.6", "ciw", 0)
    assert table.recorded_summary([rec], other) is None


def test_no_train_draws_the_finished_cells_from_folders_and_the_record(table, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    args = _args(tmp_path / "out")
    record = tmp_path / "record.jsonl"
    recorded = table._config(args, "symmetric:0.2", "ce", 0)
    record.write_text(
        json.dumps(
            table.make_record(("symmetric:0.2", "ce", 0), recorded, {"final_test_acc": 0.7, "test_at_best_val": 0.71})
        )
        + "\n"
    )
    in_folder = table._config(args, "symmetric:0.2", "ciw", 0)
    _finish(in_folder, accuracy=0.8)
    (Path(in_folder.out) / "summary.json").write_text(
        json.dumps({"completed": True, "final_test_acc": 0.8, "test_at_best_val": 0.79})
    )
    monkeypatch.setattr(table, "_run_cell", lambda config: pytest.fail("--no-train must not train"))
    rc = table.main(
        [
            "--out",
            str(tmp_path / "out"),
            "--noises",
            "symmetric:0.2",
            "--methods",
            "ce,ciw,cicw",
            "--seeds",
            "0",
            "--no-train",
            "--record",
            str(record),
        ]
    )
    assert rc == 0
    md = (tmp_path / "out" / "n10000-w16-e30" / "table.md").read_text()
    assert "| CE | 70.0 |" in md and "| CIW | 80.0 |" in md and "| CICW | n/a |" in md
    lines = record.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["method"] == "ciw"  # the folder's cell is now recorded
    assert (tmp_path / "out" / "n10000-w16-e30" / "figure.png").is_file()


def test_an_ablation_sets_one_option_in_its_own_folder_and_reuses_its_own_records(table, tmp_path):
    args = _args(tmp_path)
    args.overrides = table.parse_overrides(["balance-classes=false"])
    ablated = table._config(args, "symmetric:0.8", "cicw-m", 0)
    default = table._config(_args(tmp_path), "symmetric:0.8", "cicw-m", 0)
    assert ablated.resolved().balance_classes is False and default.resolved().balance_classes is True
    assert Path(ablated.out).parents[3] != Path(default.out).parents[3]
    assert "balance_classes=false" in table.scale_tag(args)
    # a record written before the option existed ran without the balance: it is the ablation's cell
    old = table.make_record(("symmetric:0.8", "cicw-m", 0), default, {"final_test_acc": 0.73})
    del old["config"]["balance_classes"]
    assert table.recorded_summary([old], ablated) == {"final_test_acc": 0.73}
    assert table.recorded_summary([old], default) is None
    # ... while the old records of every other method (which the option does not change) are still reused
    ce = table._config(_args(tmp_path), "symmetric:0.8", "ce", 0)
    old_ce = table.make_record(("symmetric:0.8", "ce", 0), ce, {"final_test_acc": 0.38})
    del old_ce["config"]["balance_classes"]
    assert table.recorded_summary([old_ce], ce) == {"final_test_acc": 0.38}


@pytest.mark.parametrize(
    ("item", "match"),
    [("balance-classes", "OPTION=VALUE"), ("no-such=1", "no option 'no_such'"), ("method=ce", "defines the grid")],
)
def test_an_ablation_option_is_checked(table, item, match):
    with pytest.raises(ValueError, match=match):
        table.parse_overrides([item])


def test_the_docs_table_is_valid_rst_with_every_cell(table):
    docutils = pytest.importorskip("docutils.core")
    results = {
        ("symmetric:0.2", m, s): {"final_test_acc": 0.8, "test_at_best_val": 0.7} for m in ("ce", "ciw") for s in (0, 1)
    }
    meta = {"subset": 10000, "width": 16, "epochs": 30}
    text = table.rst(results, ["symmetric:0.2", "asymmetric:0.4"], ["ce", "ciw"], [0, 1], meta, "python x.py --rst y")
    html = docutils.publish_string(text, writer="html", settings_overrides={"report_level": 2, "halt_level": 2})
    assert b"80.0 \xc2\xb1 0.0" in html and b"70.0 \xc2\xb1 0.0" in html and b"n/a" in html
    assert text.startswith(".. Written by ``python x.py --rst y``")


@pytest.mark.parametrize("noises", [["asymmetric:0.4"], ["symmetric:0.4"]])
def test_a_figure_of_one_kind_of_noise_is_drawn_with_its_legend(table, tmp_path, noises):
    results = {
        (noises[0], m, s): {"final_test_acc": 0.8, "test_at_best_val": 0.7} for m in ("ce", "cicw-m") for s in (0, 1)
    }
    path = tmp_path / "figure.png"
    table.figure(results, noises, ["ce", "cicw-m"], [0, 1], {"subset": 100, "width": 8, "epochs": 2}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
