"""``make demo`` (``python -m divweights_train.demo``): its runs, its table and a smoke run on real data.

Most tests replace the training by a fake (``_train_one``) and the speed measurement by fixed figures,
so that the demo's own behaviour (folders, threads, estimate, progress, table, verdict) is tested in
seconds; one test runs ``--quick`` for real when Fashion-MNIST is installed.
"""

from __future__ import annotations

import io
import json
import math
import types
from pathlib import Path

import pytest

pytest.importorskip("torch")

from divweights_train import demo
from divweights_train.datasets import DEFAULT_FASHION_MNIST_DIR

FINAL = {
    "CE": 0.7703,
    "CIW": 0.8510,
    "CICW-M": 0.8370,
    "Oracle": 0.8732,
    "CE clean": 0.8918,
}


def _fashion_mnist_available() -> bool:
    return any((DEFAULT_FASHION_MNIST_DIR / f"t10k-labels-idx1-ubyte{ext}").is_file() for ext in ("", ".gz"))


def test_demo_compares_ce_reweighting_oracle_and_clean_on_the_same_data(tmp_path):
    configs = demo.demo_configs(tmp_path)
    assert list(configs) == ["CE", "CIW", "CICW-M", "Oracle", "CE clean"]
    assert [c.method for c in configs.values()] == [
        "ce",
        "ciw",
        "cicw-m",
        "oracle",
        "ce",
    ]
    noisy = [c for label, c in configs.items() if label != "CE clean"]
    assert {c.noise for c in noisy} == {"symmetric:0.6"} and configs["CE clean"].noise == "none"
    # one model, subset and seed for every run: the comparison is like for like
    assert len({(c.subset, c.width, c.seed, c.model, c.weight_decay, c.threads) for c in configs.values()}) == 1
    assert configs["CIW"].weight_decay == demo.DEMO_WEIGHT_DECAY
    assert len({c.out for c in configs.values()}) == len(configs)


def test_references_can_be_skipped(tmp_path):
    assert list(demo.demo_configs(tmp_path, clean=False, oracle=False)) == [
        "CE",
        "CIW",
        "CICW-M",
    ]


def test_table_formats_missing_values_as_na():
    row = {
        "label": "CIW",
        "final_test_acc": 0.84251,
        "test_at_best_val": math.nan,
        "max_test_acc": 0.9,
        "final_auroc": None,
        "final_ess": 0.3871,
        "time": 65.4,
    }
    line = demo.format_table([row]).splitlines()[-1]
    assert line == "| CIW | 0.8425 | n/a | 0.9000 | n/a | 0.387 | 65 |"


# --------------------------------------------------------------------------- #
# Threads and jobs (issue 15 item 1)
# --------------------------------------------------------------------------- #
def test_each_run_uses_one_thread_by_default(tmp_path):
    # under load, 1 thread ran 6 s/epoch against 22-24 s with 2; the old default was 2
    assert {c.threads for c in demo.demo_configs(tmp_path).values()} == {1}
    assert demo.build_parser().parse_args([]).threads == 1


@pytest.mark.parametrize("runs, cores, jobs", [(5, 1, 1), (5, 2, 2), (5, 16, 5), (3, 4, 3)])
def test_default_jobs_is_one_per_core_at_most_one_per_run(runs, cores, jobs):
    assert demo.default_jobs(runs, cores=cores) == jobs


# --------------------------------------------------------------------------- #
# The time estimate
# --------------------------------------------------------------------------- #
def test_estimate_counts_steps_evaluation_and_loading_per_run(tmp_path):
    configs = demo.demo_configs(tmp_path, epochs=2, subset=1000, clean=False, oracle=False)
    # 1000 examples: 100 noisy validation, 900 training = 7 full batches of 128; 10,100 evaluated per epoch
    costs = demo.run_costs(configs, step_s=0.01, eval_example_s=1e-5, per_run_s=3.0)
    for label, method in (("CE", "ce"), ("CIW", "ciw"), ("CICW-M", "cicw-m")):
        fixed, per_epoch = costs[label]
        assert fixed == 3.0
        assert per_epoch == pytest.approx(7 * 0.01 * demo.STEP_COST[method] + 10100 * 1e-5)
    serial = demo.estimate_seconds(configs, step_s=0.01, eval_example_s=1e-5, per_run_s=3.0, jobs=1)
    assert serial == pytest.approx(sum(f + 2 * e for f, e in costs.values()))
    # two workers, longest first: CICW-M on one, CIW then CE on the other
    two = demo.estimate_seconds(configs, step_s=0.01, eval_example_s=1e-5, per_run_s=3.0, jobs=2)
    run = {lb: f + 2 * e for lb, (f, e) in costs.items()}
    assert two == pytest.approx(max(run["CICW-M"], run["CIW"] + run["CE"]))


def test_warmup_measures_positive_times_quickly():
    t = demo._warmup(1, 4, 16, 32, seconds=0.05)
    assert set(t) == {"step_s", "eval_example_s"} and t["step_s"] > 0 and t["eval_example_s"] > 0


# --------------------------------------------------------------------------- #
# Progress
# --------------------------------------------------------------------------- #
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _epoch_line(epoch: int, acc: float) -> str:
    return f"epoch {epoch:3d}  loss 1.0000  test {acc:.4f}  val 0.5000  auroc 0.500  ess 1.000  lr 0.02  1.0s"


def test_progress_on_a_terminal_is_a_bar_from_the_start(tmp_path):
    configs = demo.demo_configs(tmp_path, epochs=4, clean=False, oracle=False)
    term = _Terminal()
    progress = demo._Progress(configs, estimate_s=125.0, stream=term)
    assert "demo:" in term.getvalue() and "0/12 epochs" in term.getvalue() and "expected 2 min 05 s" in term.getvalue()
    progress.log_line("CIW", _epoch_line(1, 0.61))
    progress.close()
    out = term.getvalue()
    assert "1/12 epochs" in out and "CIW epoch 1/4, test acc 0.610" in out


def test_progress_without_a_terminal_prints_plain_lines_with_time_left(tmp_path, capsys):
    configs = demo.demo_configs(tmp_path, epochs=4, clean=False, oracle=False)
    progress = demo._Progress(configs, estimate_s=90.0, tty=False, plain_every_s=0.0)
    first = capsys.readouterr().out
    assert "0/12 epochs" in first and "about 1 min 30 s left" in first and "\r" not in first
    progress.log_line("CE", _epoch_line(2, 0.7))
    progress.log_line("CE", "resuming ...")  # lines without an epoch number change nothing
    progress.run_done("CE", 0.75, 12.0)
    out = capsys.readouterr().out
    assert "CE epoch 2/4, test acc 0.700" in out and "done: CE        final test acc 0.7500 (12 s)" in out


def test_plain_progress_lines_are_throttled(tmp_path, capsys):
    configs = demo.demo_configs(tmp_path, epochs=30, clean=False, oracle=False)
    progress = demo._Progress(configs, estimate_s=None, tty=False, plain_every_s=3600.0)
    for epoch in range(1, 31):
        progress.log_line("CIW", _epoch_line(epoch, 0.5))
    assert len(capsys.readouterr().out.splitlines()) == 1  # only the opening line within the hour


def test_fraction_done_weighs_runs_by_their_estimated_cost(tmp_path):
    configs = demo.demo_configs(tmp_path, epochs=2, clean=False, oracle=False)
    costs = {
        "CE": (4.0, 1.0),
        "CIW": (4.0, 1.0),
        "CICW-M": (4.0, 4.0),
    }  # totals 6, 6, 12
    progress = demo._Progress(configs, costs=costs, tty=False, stream=io.StringIO())
    progress.advance("CICW-M", 1, None)
    assert progress.fraction() == pytest.approx(8 / 24)
    progress.advance("CE", 2, None)
    assert progress.fraction() == pytest.approx(14 / 24)


# --------------------------------------------------------------------------- #
# Output: columns explained, the result stated once
# --------------------------------------------------------------------------- #
def test_every_column_is_explained_in_one_line():
    header = demo.format_table([]).splitlines()[0]
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    legend = demo.format_legend().splitlines()
    assert len(legend) == len(columns)
    for column, line in zip(columns, legend):
        assert line.strip().startswith(f"{column}: ")
    text = demo.format_legend()
    assert "clean from flipped" in text and "effective sample size" in text


def test_result_is_stated_once_with_the_margin():
    a = demo.assess(FINAL)
    results = [line for line in a["lines"] if line.startswith("Result:")]
    assert len(results) == 1 and " ".join(a["lines"]).count("NOT MET") == 1
    assert a["threshold"] == pytest.approx(0.8918 - 0.03)
    assert "CIW, ends at 0.8510: 1.1 points short" in results[0]
    assert any("CIW 78%, CICW-M 65%" in line for line in a["lines"])


def test_a_met_target_says_by_how_much():
    a = demo.assess({**FINAL, "CICW-M": 0.8700})
    assert a["met"] is True and a["best"] == "CICW-M"
    assert "Result: MET. The best reweighted run, CICW-M, ends at 0.8700: 0.8 points above (CIW 0.8510)." in a["lines"]


def test_without_the_clean_run_the_target_is_the_absolute_bar():
    a = demo.assess({"CE": 0.7, "CIW": 0.86, "CICW-M": 0.84})
    assert a["threshold"] == demo.TARGET_ACC and a["met"] is True


def test_quick_results_are_not_judged_against_the_target():
    a = demo.assess(
        {"CE": 0.66, "CIW": 0.66, "CICW-M": 0.41, "Oracle": 0.77, "CE clean": 0.81},
        quick=True,
    )
    assert a["met"] is None and len(a["lines"]) == 1
    assert a["lines"][0].startswith("Result: not judged: --quick is a smoke test")


# --------------------------------------------------------------------------- #
# main() with the training replaced by a fake
# --------------------------------------------------------------------------- #
@pytest.fixture
def fake_demo(monkeypatch, tmp_path):
    """main() in tmp_path with fake runs, fixed speed and no plots; returns the list of trained configs."""
    from divweights_train import datasets, plots

    trained = []

    def fake_train_one(config, label=None, on_log=None):
        trained.append(config)
        r = config.resolved()
        acc = FINAL.get(label, 0.8) if label else 0.8
        for epoch in range(1, r.epochs + 1):
            if on_log is not None:
                on_log(label, _epoch_line(epoch, acc))
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text("{}")
        records = [types.SimpleNamespace(epoch=e, test_acc=acc) for e in range(1, r.epochs + 1)]
        summary = {
            "final_test_acc": acc,
            "test_at_best_val": acc,
            "max_test_acc": acc,
            "final_auroc": 0.9,
            "final_ess": 0.5,
        }
        return records, summary, 1.0

    def touch(_curves, path, **_kw):
        Path(path).write_bytes(b"png")

    monkeypatch.setattr(demo, "_train_one", fake_train_one)
    monkeypatch.setattr(demo, "_measure", lambda configs, jobs: {"step_s": 0.05, "eval_example_s": 1e-5})
    monkeypatch.setattr(datasets, "load_fashion_mnist", lambda *a, **k: None)
    monkeypatch.setattr(plots, "plot_accuracy_curves", touch)
    monkeypatch.setattr(plots, "plot_weight_histograms", touch)
    monkeypatch.chdir(tmp_path)
    return trained


def test_quick_writes_its_own_folder_and_keeps_the_full_results(fake_demo, tmp_path, capsys):
    full = tmp_path / "runs" / "demo"
    full.mkdir(parents=True)
    (full / "results.json").write_text('{"full": true}')
    assert demo.main(["--quick", "--jobs", "1"]) == 0
    assert (full / "results.json").read_text() == '{"full": true}'  # untouched
    quick = json.loads((tmp_path / "runs" / "demo-quick" / "results.json").read_text())
    assert quick["quick"] is True and [r["label"] for r in quick["rows"]] == list(demo.demo_configs(Path(".")))
    assert all(Path(c.out).parent == Path("runs/demo-quick") for c in fake_demo)


def test_existing_results_are_refused_without_overwrite(fake_demo, tmp_path, capsys):
    out = tmp_path / "mine"
    assert demo.main(["--out", str(out), "--jobs", "1", "--epochs", "2"]) == 0
    before = (out / "results.json").read_text()
    capsys.readouterr()
    fake_demo.clear()
    assert demo.main(["--out", str(out), "--jobs", "1", "--epochs", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds demo results" in err and "--overwrite" in err and "\n" not in err
    assert fake_demo == [] and (out / "results.json").read_text() == before


def test_overwrite_clears_the_previous_results_first(fake_demo, tmp_path, capsys):
    out = tmp_path / "mine"
    assert demo.main(["--out", str(out), "--jobs", "1", "--epochs", "2"]) == 0
    (out / "ciw" / "stale.txt").write_text("from the previous demo")
    assert demo.main(["--out", str(out), "--jobs", "1", "--epochs", "3", "--overwrite"]) == 0
    assert not (out / "ciw" / "stale.txt").exists()
    assert json.loads((out / "results.json").read_text())["configs"]["CIW"]["epochs"] == 3


def test_main_says_how_long_it_expects_before_training(fake_demo, capsys):
    assert demo.main(["--quick", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    expected = out.index("Expected time: about")
    assert expected < out.index("done: ")
    assert "50 ms per training step" in out
    assert "1 run(s) at a time x 1 thread(s) each" in out


def test_main_picks_jobs_from_the_cores(fake_demo, monkeypatch, capsys):
    monkeypatch.setattr(demo, "default_jobs", lambda runs, cores=None: 1)
    assert demo.main(["--quick"]) == 0
    payload = json.loads(Path("runs/demo-quick/results.json").read_text())
    assert payload["jobs"] == 1 and payload["threads"] == 1


def test_main_output_states_the_result_once_and_explains_the_columns(fake_demo, capsys):
    assert demo.main(["--jobs", "1", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("Result:") == 1 and "target NOT met" not in out and "NOT MET" in out
    for column, _ in demo.COLUMNS:
        assert f"  {column}: " in out
    md = Path("runs/demo/results.md").read_text()
    assert "weight AUROC: " in md and "ESS: " in md and md.count("Result:") == 1


def test_bad_demo_options_are_one_line_errors(fake_demo, capsys):
    assert demo.main(["--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m divweights_train.demo: error: argument --epochs") and "\n" not in err
    assert demo.main(["--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST idx files not installed")
def test_quick_demo_runs_every_method_and_writes_table_plots_and_verdict(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--width", "4", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["label"] for r in results["rows"]] == [
        "CE",
        "CIW",
        "CICW-M",
        "Oracle",
        "CE clean",
    ]
    assert all(0.0 <= r["final_test_acc"] <= 1.0 for r in results["rows"])
    oracle = next(r for r in results["rows"] if r["label"] == "Oracle")
    assert oracle["final_auroc"] == 1.0  # zero weight on exactly the flipped examples
    assert results["threads"] == 1 and results["estimated_time_s"] > 0
    assert [v for v in results["verdict"] if v.startswith("Result:")] == results["verdict"][:1]
    for name in ("accuracy.png", "weights.png", "results.md"):
        assert (out / name).is_file(), name
    printed = capsys.readouterr().out
    assert "| CE clean |" in printed and "Expected time: about" in printed


def test_the_configuration_lines_name_cicw_m_s_class_balance(fake_demo, tmp_path, capsys):
    assert demo.main(["--quick", "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cicw_m = next(line for line in lines if "method=cicw-m" in line)
    assert cicw_m.endswith("gamma=0.3, class balance")
    assert not any("class balance" in line for line in lines if "method=ciw " in line)
