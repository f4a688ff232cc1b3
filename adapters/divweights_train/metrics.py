"""Framework-neutral training metrics: AUROC, effective sample size, records.

Nothing here imports torch or jax: the per-epoch record
(:class:`EpochRecord`), its JSON-lines writer (:class:`MetricsWriter`) and the
run summary (:func:`summarize`) are shared by every trainer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write, dumps_json, write_json

__all__ = [
    "EpochRecord",
    "MetricsWriter",
    "WeightStats",
    "auroc",
    "average_ranks",
    "effective_sample_size",
    "read_metrics",
    "read_summary",
    "summarize",
]


def average_ranks(values) -> np.ndarray:
    """1-based ranks of ``values`` with ties given their average rank.

    Examples
    --------
    >>> average_ranks([3.0, 1.0, 3.0, 2.0]).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start of each run of equal values in the sorted array.
    boundaries = np.flatnonzero(np.diff(sorted_x) != 0) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [n]])
    mean_rank = (starts + ends + 1) / 2.0  # average of 1-based ranks start+1 .. end
    run_lengths = ends - starts
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, run_lengths)
    return ranks


def auroc(scores, positive) -> float:
    r"""Area under the ROC curve of ``scores`` for the boolean ``positive`` labels.

    Computed from ranks (Mann-Whitney U): the probability that a random
    positive scores higher than a random negative, ties counting 1/2.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Real scores; higher means "more likely positive". Must be finite.
    positive : array_like of bool, shape (n,)
        True for the positive class.

    Returns
    -------
    float
        AUROC in ``[0, 1]``; ``nan`` when one of the classes is empty.

    Examples
    --------
    >>> auroc([0.9, 0.8, 0.1, 0.3], [True, True, False, False])
    1.0
    >>> auroc([1.0, 1.0, 1.0], [True, False, False])
    0.5
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(positive).ravel()
    if pos.dtype != bool:
        if not np.all(np.isin(pos, (0, 1))):
            raise ValueError("positive must be boolean (or 0/1)")
        pos = pos.astype(bool)
    if s.shape != pos.shape:
        raise ValueError(f"scores and positive must have the same length, got {s.shape} and {pos.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos = int(pos.sum())
    n_neg = int(pos.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(s)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def effective_sample_size(weights) -> np.ndarray:
    r"""Normalised effective sample size :math:`1 / (n \sum_i w_i^2)` per row.

    For weights on the simplex over the last axis this is 1 for uniform
    weights and ``1/n`` when all the mass is on one example; weights that
    spread evenly over ``m`` of ``n`` examples give ``m / n``.

    Parameters
    ----------
    weights : array_like, shape (..., n)
        Nonnegative weights; each row is normalised to sum to one first.

    Returns
    -------
    numpy.ndarray, shape (...)

    Examples
    --------
    >>> effective_sample_size([[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]]).tolist()
    [1.0, 0.5]
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] == 0:
        raise ValueError("weights need at least one element along the last axis")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and nonnegative")
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("every row of weights needs a positive sum")
    p = w / total
    return 1.0 / (w.shape[-1] * np.sum(p * p, axis=-1))


class WeightStats:
    """Accumulates the instance weights seen during one epoch.

    Call :meth:`add` once per mini-batch with the batch's weights (on the
    simplex), the dataset indices of its examples and their flipped flags;
    :meth:`summary` then gives the AUROC of ``n * w_i`` for separating clean
    (positive) from flipped examples, the mean normalised effective sample
    size per batch, and the mean weight mass on flipped examples.

    Examples
    --------
    >>> st = WeightStats(4)
    >>> st.add([0.4, 0.4, 0.1, 0.1], [0, 1, 2, 3], [False, False, True, True])
    >>> st.summary()["auroc"], round(st.summary()["ess"], 3), round(st.summary()["flipped_mass"], 2)
    (1.0, 0.735, 0.2)
    """

    def __init__(self, num_examples: int):
        self.scaled = np.full(int(num_examples), np.nan, dtype=np.float64)
        self.flipped = np.zeros(int(num_examples), dtype=bool)
        self.ess: list[float] = []
        self.flipped_mass: list[float] = []

    def add(self, weights, indices, flipped) -> None:
        """Record one mini-batch (weights summing to one over the batch)."""
        w = np.asarray(weights, dtype=np.float64).ravel()
        idx = np.asarray(indices).ravel()
        fl = np.asarray(flipped, dtype=bool).ravel()
        if not (w.shape == idx.shape == fl.shape):
            raise ValueError("weights, indices and flipped must have the same length")
        if w.size == 0:
            return
        self.scaled[idx] = w * w.size
        self.flipped[idx] = fl
        self.ess.append(float(effective_sample_size(w)))
        self.flipped_mass.append(float(w[fl].sum() / max(w.sum(), 1e-300)))

    def summary(self) -> dict[str, float]:
        """``{'auroc', 'ess', 'flipped_mass'}`` (nan where undefined)."""
        seen = ~np.isnan(self.scaled)
        a = auroc(self.scaled[seen], ~self.flipped[seen]) if seen.any() else math.nan
        return {
            "auroc": a,
            "ess": float(np.mean(self.ess)) if self.ess else math.nan,
            "flipped_mass": float(np.mean(self.flipped_mass)) if self.flipped_mass else math.nan,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Per-example ``n * w_i`` (nan if unseen) and flipped flags."""
        return {"scaled_weights": self.scaled.copy(), "flipped": self.flipped.copy()}


@dataclasses.dataclass
class EpochRecord:
    """Metrics of one epoch, written as one JSON line.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    step : int
        Optimisation steps done so far.
    lr : float
        Learning rate used during the epoch.
    train_loss : float
        Mean over batches of the (weighted) training loss.
    train_acc_noisy : float
        Training accuracy against the noisy labels (on the batches seen).
    test_acc : float
        Accuracy on the clean test set.
    val_acc : float
        Accuracy on the noisy validation split (nan if there is none).
    auroc : float
        AUROC of ``n * w_i`` separating clean from flipped training examples
        (0.5 for uniform weights; nan when no example is flipped).
    ess : float
        Mean over batches of ``1 / (n * sum w^2)``.
    flipped_mass : float
        Mean over batches of the weight on flipped examples.
    reweighting : bool
        Whether the reweighting was active at the end of the epoch.
    epoch_time : float
        Wall-clock seconds of the epoch (training and evaluation).
    time : float
        Wall-clock seconds since the start of the run (cumulative over
        resumptions).
    """

    epoch: int
    step: int
    lr: float
    train_loss: float
    train_acc_noisy: float
    test_acc: float
    val_acc: float
    auroc: float
    ess: float
    flipped_mass: float
    reweighting: bool
    epoch_time: float
    time: float

    TIMING_FIELDS = ("epoch_time", "time")

    @classmethod
    def from_epoch(
        cls,
        *,
        epoch: int,
        step: int,
        lr: float,
        loss_sum: float,
        batches: int,
        correct: int,
        seen: int,
        test_acc: float,
        val_acc: float,
        weights: Mapping[str, float],
        reweighting: bool,
        epoch_time: float,
        elapsed: float,
    ) -> EpochRecord:
        """Build the record from a trainer's running sums and ``WeightStats.summary()``
        (shared by the PyTorch and JAX trainers)."""
        return cls(
            epoch=epoch,
            step=step,
            lr=lr,
            train_loss=loss_sum / max(batches, 1),
            train_acc_noisy=correct / seen if seen else math.nan,
            test_acc=test_acc,
            val_acc=val_acc,
            auroc=weights["auroc"],
            ess=weights["ess"],
            flipped_mass=weights["flipped_mass"],
            reweighting=bool(reweighting),
            epoch_time=epoch_time,
            time=elapsed,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """One JSON line; nan becomes ``null``."""
        return dumps_json(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EpochRecord:
        names = [f.name for f in dataclasses.fields(cls)]
        kwargs = {k: (math.nan if d.get(k) is None else d[k]) for k in names}
        return cls(**kwargs)

    def without_timing(self) -> dict[str, Any]:
        """The record minus wall-clock fields (for comparing runs)."""
        d = self.to_dict()
        for k in self.TIMING_FIELDS:
            d.pop(k)
        return d


class MetricsWriter:
    """Writes :class:`EpochRecord` lines to ``metrics.jsonl``.

    :meth:`rewrite` replaces the file atomically with a list of records (used
    when a run resumes, so the file matches the checkpoint exactly);
    :meth:`append` adds one line and flushes it to disk.

    Examples
    --------
    >>> import tempfile, os
    >>> rec = EpochRecord(1, 10, 0.1, 2.0, 0.3, 0.5, 0.4, 0.5, 1.0, 0.6, False, 1.0, 1.0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     w = MetricsWriter(os.path.join(d, "metrics.jsonl"))
    ...     w.rewrite([rec]); w.append(rec)
    ...     len(read_metrics(w.path))
    2
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def rewrite(self, records: Iterable[EpochRecord]) -> None:
        text = "".join(r.to_json() + "\n" for r in records).encode()
        atomic_write(self.path, lambda fh: fh.write(text))

    def append(self, record: EpochRecord) -> None:
        try:
            with open(self.path, "a") as fh:
                fh.write(record.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            if err.filename is not None:
                raise
            raise OSError(err.errno, err.strerror, str(self.path)) from err


def read_metrics(path: str | os.PathLike) -> list[EpochRecord]:
    """Read a ``metrics.jsonl`` file back into records."""
    out = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(EpochRecord.from_dict(json.loads(line)))
    return out


def read_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``summary.json`` back: the ``null`` written for a nan number becomes nan again.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "summary.json")
    ...     _ = open(p, "w").write('{"best_val_acc": null, "best_val_epoch": 3, "completed": true}')
    ...     read_summary(p)
    {'best_val_acc': nan, 'best_val_epoch': 3, 'completed': True}
    """
    with open(path) as fh:
        summary = json.load(fh)
    return {k: (math.nan if v is None and k in _SUMMARY_FLOATS else v) for k, v in summary.items()}


_SUMMARY_FLOATS = (
    "final_test_acc",
    "best_val_acc",
    "test_at_best_val",
    "max_test_acc",
    "final_auroc",
    "final_ess",
    "time",
)


def summarize(records: Sequence[EpochRecord]) -> dict[str, Any]:
    """Final and best-by-noisy-validation numbers of a run.

    The paper's protocol reports the clean test accuracy of the epoch with
    the best noisy-validation accuracy (the first such epoch on ties). With
    no validation split the last epoch is used.

    Returns
    -------
    dict
        ``final_test_acc``, ``best_val_acc``, ``best_val_epoch``,
        ``test_at_best_val``, ``max_test_acc`` (an oracle upper bound, for
        reference only), ``epochs``, ``final_auroc``, ``final_ess``,
        ``time``.

    Examples
    --------
    >>> recs = [EpochRecord(e, e, 0.1, 1.0, 0.5, t, v, 0.5, 1.0, 0.5, False, 1.0, e)
    ...         for e, t, v in ((1, 0.6, 0.3), (2, 0.8, 0.5), (3, 0.7, 0.4))]
    >>> s = summarize(recs)
    >>> s["final_test_acc"], s["test_at_best_val"], s["best_val_epoch"]
    (0.7, 0.8, 2)
    """
    if not records:
        raise ValueError("no epochs recorded")
    vals = np.array([r.val_acc for r in records], dtype=np.float64)
    if np.all(np.isnan(vals)):
        best = len(records) - 1
    else:
        best = int(np.nanargmax(vals))
    last = records[-1]
    return {
        "epochs": len(records),
        "final_test_acc": float(last.test_acc),
        "best_val_acc": float(records[best].val_acc),
        "best_val_epoch": int(records[best].epoch),
        "test_at_best_val": float(records[best].test_acc),
        "max_test_acc": float(max(r.test_acc for r in records)),
        "final_auroc": float(last.auroc),
        "final_ess": float(last.ess),
        "time": float(last.time),
    }


def epoch_line(rec: EpochRecord, lr: float, epochs: int | None = None) -> str:
    """The one-line log of an epoch (shared by the trainers).

    ``train`` is the running accuracy against the noisy labels over the
    epoch's batches, ``test`` the clean test accuracy, ``val`` the noisy
    validation accuracy.

    Examples
    --------
    >>> rec = EpochRecord(3, 30, 0.05, 0.41, 0.8, 0.9, 0.7, 0.85, 0.6, 0.1, True, 1.25, 4.0)
    >>> epoch_line(rec, 0.05, epochs=30)
    'epoch   3/30  loss 0.4100  train 0.8000  test 0.9000  val 0.7000  auroc 0.850  ess 0.600  lr 0.05  1.2s'
    """
    of = f"/{epochs}" if epochs is not None else ""
    return (
        f"epoch {rec.epoch:3d}{of}  loss {rec.train_loss:.4f}  train {rec.train_acc_noisy:.4f}  "
        f"test {rec.test_acc:.4f}  val {rec.val_acc:.4f}  auroc {rec.auroc:.3f}  ess {rec.ess:.3f}  lr {lr:.3g}  "
        f"{rec.epoch_time:.1f}s"
    )


def finish_run(config, records: Sequence[EpochRecord], completed: bool, out: str | os.PathLike) -> dict[str, Any]:
    """Write ``summary.json`` and, if enabled, the accuracy and weight plots of a
    finished (or stopped) run; return the summary.  Shared by the trainers."""
    out = Path(out)
    summary = summarize(records) if records else {}
    summary["completed"] = bool(completed and records and records[-1].epoch == config.epochs)
    write_json(out / "summary.json", summary, indent=1, sort_keys=True)
    if config.plots and records:
        from . import plots

        plots.plot_accuracy_curves(
            {config.method: records},
            out / "accuracy.png",
            title=f"{config.dataset}, noise {config.noise}",
        )
        last = out / "weights" / f"epoch_{records[-1].epoch:03d}.npz"
        if last.is_file():
            with np.load(last, allow_pickle=False) as z:
                plots.plot_weight_histograms(
                    {config.method: (z["scaled_weights"], z["flipped"])},
                    out / "weights.png",
                    title=f"epoch {records[-1].epoch}",
                )
    return summary
