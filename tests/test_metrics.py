"""Tests of divweights_train.metrics: AUROC by ranks, effective sample size, records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from divweights_train.metrics import (
    EpochRecord,
    MetricsWriter,
    WeightStats,
    auroc,
    average_ranks,
    effective_sample_size,
    read_metrics,
    summarize,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")
scipy_stats = pytest.importorskip("scipy.stats")


def _record(epoch, test_acc=0.5, val_acc=0.4, **kw):
    base = {
        "epoch": epoch,
        "step": 10 * epoch,
        "lr": 0.1,
        "train_loss": 1.0,
        "train_acc_noisy": 0.5,
        "test_acc": test_acc,
        "val_acc": val_acc,
        "auroc": 0.5,
        "ess": 1.0,
        "flipped_mass": 0.6,
        "reweighting": False,
        "epoch_time": 1.0,
        "time": float(epoch),
    }
    base.update(kw)
    return EpochRecord(**base)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_on_continuous_scores(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.4
    scores = rng.normal(size=300) + labels
    assert auroc(scores, labels) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(100 + seed)
    labels = rng.random(500) < 0.3
    scores = rng.integers(0, 4, size=500).astype(float) + 0.5 * labels  # heavy ties
    assert auroc(scores, labels) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)


def test_auroc_all_tied_is_one_half():
    assert auroc(np.ones(10), np.arange(10) < 3) == 0.5


def test_auroc_perfect_and_reversed():
    labels = np.array([1, 1, 0, 0], dtype=bool)
    assert auroc([4.0, 3.0, 2.0, 1.0], labels) == 1.0
    assert auroc([1.0, 2.0, 3.0, 4.0], labels) == 0.0


def test_auroc_single_class_is_nan():
    assert math.isnan(auroc([0.1, 0.2], [True, True]))


def test_auroc_rejects_bad_input():
    with pytest.raises(ValueError):
        auroc([0.1, np.nan], [True, False])
    with pytest.raises(ValueError):
        auroc([0.1, 0.2, 0.3], [True, False])
    with pytest.raises(ValueError):
        auroc([0.1, 0.2], [2, 0])


def test_average_ranks_match_scipy():
    x = np.random.default_rng(0).integers(0, 5, size=50).astype(float)
    np.testing.assert_allclose(average_ranks(x), scipy_stats.rankdata(x, method="average"))


def test_ess_uniform_is_one_and_point_mass_is_one_over_n():
    assert effective_sample_size(np.full(8, 1 / 8)) == pytest.approx(1.0)
    assert effective_sample_size(np.eye(8)[0]) == pytest.approx(1 / 8)


def test_ess_even_spread_over_m_of_n():
    w = np.r_[np.full(3, 1 / 3), np.zeros(7)]
    assert effective_sample_size(w) == pytest.approx(0.3)


def test_ess_is_rowwise_and_scale_free():
    w = np.random.default_rng(1).random((4, 16))
    ess = effective_sample_size(w)
    expected = [1 / (16 * np.sum((r / r.sum()) ** 2)) for r in w]
    np.testing.assert_allclose(ess, expected)
    np.testing.assert_allclose(effective_sample_size(5 * w), ess)


def test_ess_rejects_negative_or_zero_rows():
    with pytest.raises(ValueError):
        effective_sample_size([0.5, -0.1, 0.6])
    with pytest.raises(ValueError):
        effective_sample_size([0.0, 0.0])


def test_weight_stats_scales_by_batch_size_and_scores_clean_as_positive():
    st = WeightStats(6)
    st.add([0.5, 0.3, 0.2], [0, 1, 2], [False, False, True])
    st.add([0.1, 0.9], [3, 4], [True, False])
    arrays = st.arrays()
    np.testing.assert_allclose(arrays["scaled_weights"][:5], [1.5, 0.9, 0.6, 0.2, 1.8])
    assert np.isnan(arrays["scaled_weights"][5])  # never seen
    s = st.summary()
    assert s["auroc"] == pytest.approx(sklearn_metrics.roc_auc_score([1, 1, 0, 0, 1], [1.5, 0.9, 0.6, 0.2, 1.8]))
    assert s["ess"] == pytest.approx(np.mean([1 / (3 * 0.38), 1 / (2 * 0.82)]))
    assert s["flipped_mass"] == pytest.approx(np.mean([0.2, 0.1]))


def test_summarize_reports_test_accuracy_at_best_noisy_validation():
    recs = [
        _record(1, 0.6, 0.30),
        _record(2, 0.8, 0.50),
        _record(3, 0.7, 0.50),
        _record(4, 0.75, 0.45),
    ]
    s = summarize(recs)
    assert s["best_val_epoch"] == 2  # first of the tied best
    assert s["test_at_best_val"] == 0.8
    assert s["final_test_acc"] == 0.75
    assert s["max_test_acc"] == 0.8


def test_summarize_without_validation_uses_last_epoch():
    recs = [_record(1, 0.6, math.nan), _record(2, 0.7, math.nan)]
    assert summarize(recs)["test_at_best_val"] == 0.7


def test_record_json_round_trip_with_nan(tmp_path):
    rec = _record(1, auroc=math.nan)
    line = rec.to_json()
    assert json.loads(line)["auroc"] is None
    w = MetricsWriter(tmp_path / "m.jsonl")
    w.rewrite([rec])
    w.append(_record(2))
    back = read_metrics(tmp_path / "m.jsonl")
    assert [r.epoch for r in back] == [1, 2]
    assert math.isnan(back[0].auroc)
    assert back[1].without_timing() == _record(2).without_timing()
