"""PNG plots of training runs (matplotlib, Agg backend; no display needed).

* :func:`plot_accuracy_curves` -- clean test accuracy (solid) and noisy
  validation accuracy (dashed) per epoch, one colour per run.
* :func:`plot_weight_histograms` -- histograms of the scaled instance weights
  ``n * w_i`` of clean and of flipped training examples, one panel per run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_accuracy_curves", "plot_weight_histograms"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> Path:
    """Write the figure as a PNG (atomically: a killed run leaves no half image) and close it."""
    from .checkpoint import atomic_write

    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_accuracy_curves(
    runs: Mapping[str, Sequence],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    reference: Mapping[str, float] | None = None,
) -> Path:
    """Accuracy per epoch of several runs.

    Parameters
    ----------
    runs : mapping of str to sequence of EpochRecord
        Run label -> its per-epoch records.
    path : str or path-like
        Output PNG.
    title : str, optional
    reference : mapping of str to float, optional
        Horizontal reference lines (label -> accuracy).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, os
    >>> from divweights_train.metrics import EpochRecord
    >>> recs = [EpochRecord(e, e, 0.1, 1.0, 0.5, 0.5 + e / 10, 0.4, 0.5, 1.0, 0.5, False, 1.0, e)
    ...         for e in (1, 2, 3)]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = plot_accuracy_curves({"ce": recs}, os.path.join(d, "acc.png"))
    ...     print(p.stat().st_size > 0)
    True
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, recs) in enumerate(runs.items()):
        c = colors[i % len(colors)]
        ep = [r.epoch for r in recs]
        ax.plot(ep, [r.test_acc for r in recs], "-", color=c, label=f"{label} (clean test)")
        val = [r.val_acc for r in recs]
        if not all(v is None or (isinstance(v, float) and np.isnan(v)) for v in val):
            ax.plot(ep, val, "--", color=c, alpha=0.6, label=f"{label} (noisy val)")
    for label, acc in (reference or {}).items():
        ax.axhline(acc, color="gray", ls=":", lw=1)
        ax.annotate(
            label,
            (0.01, acc),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=8,
            color="gray",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower right")  # an explicit place: "best" is slow on long runs
    if title:
        ax.set_title(title)
    return _save(plt, fig, path)


def plot_weight_histograms(
    runs: Mapping[str, tuple],
    path: str | os.PathLike,
    *,
    bins: int = 40,
    title: str | None = None,
) -> Path:
    """Histograms of ``n * w_i`` for clean and flipped training examples.

    Parameters
    ----------
    runs : mapping of str to (scaled_weights, flipped)
        Run label -> per-example scaled weights (nan for examples not seen)
        and boolean flipped flags.
    path : str or path-like
        Output PNG.
    bins : int, default 40
    title : str, optional

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> w = np.r_[np.full(6, 1.5), np.full(4, 0.25)]
    >>> flipped = np.r_[np.zeros(6, bool), np.ones(4, bool)]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = plot_weight_histograms({"ciw": (w, flipped)}, os.path.join(d, "w.png"))
    ...     print(p.name)
    w.png
    """
    plt = _pyplot()
    m = max(len(runs), 1)
    fig, axes = plt.subplots(1, m, figsize=(4.2 * m, 3.6), squeeze=False)
    for ax, (label, (w, flipped)) in zip(axes[0], runs.items()):
        w = np.asarray(w, dtype=np.float64)
        flipped = np.asarray(flipped, dtype=bool)
        seen = np.isfinite(w)
        w, flipped = w[seen], flipped[seen]
        hi = float(np.quantile(w, 0.995)) if w.size else 1.0
        edges = np.linspace(0.0, max(hi, 1.05), bins + 1)
        ax.hist(
            np.clip(w[~flipped], 0, edges[-1]),
            bins=edges,
            alpha=0.6,
            label=f"clean ({(~flipped).sum()})",
            color="tab:blue",
        )
        ax.hist(
            np.clip(w[flipped], 0, edges[-1]),
            bins=edges,
            alpha=0.6,
            label=f"flipped ({flipped.sum()})",
            color="tab:red",
        )
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.set_title(label)
        ax.set_xlabel("n * w_i (1 = uniform)")
        ax.set_ylabel("examples")
        ax.legend(fontsize=8, loc="upper right")  # "best" searches every bar: slow, and it warns
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)
