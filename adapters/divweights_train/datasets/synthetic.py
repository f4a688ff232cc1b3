"""Small offline datasets: two-moons points and scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np

from .base import ArrayDataset, DatasetNotFoundError, _as_rng

__all__ = ["load_digits_dataset", "make_two_moons"]


def make_two_moons(n: int, noise_rate: float = 0.3, *, rng) -> ArrayDataset:
    """Sample the two-moons toy problem with clean labels.

    Class 0 lies on the upper half circle of radius 1 centred at ``(0, 0)``;
    class 1 on the lower half circle centred at ``(1, 0.5)``. Points are
    shifted so the data is roughly centred at the origin.

    Parameters
    ----------
    n : int
        Number of points; the classes get ``ceil(n/2)`` and ``floor(n/2)``.
    noise_rate : float, default 0.3
        Standard deviation of the isotropic Gaussian jitter added to the
        coordinates (geometric noise). Labels are never corrupted here; apply
        label noise separately, e.g. with ``divweights.noise``.
    rng : numpy.random.Generator or int
        Source of randomness.

    Returns
    -------
    ArrayDataset
        ``x`` of shape ``(n, 2)``, ``y`` in ``{0, 1}``, shuffled.

    Examples
    --------
    >>> import numpy as np
    >>> ds = make_two_moons(100, 0.1, rng=np.random.default_rng(0))
    >>> ds.x.shape, np.bincount(ds.y).tolist()
    ((100, 2), [50, 50])
    """
    rng = _as_rng(rng)
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    noise_rate = float(noise_rate)
    if not np.isfinite(noise_rate) or noise_rate < 0:
        raise ValueError(f"noise_rate must be a non-negative number, got {noise_rate}")
    n0 = (n + 1) // 2
    n1 = n - n0
    t0 = rng.uniform(0.0, np.pi, size=n0)
    t1 = rng.uniform(0.0, np.pi, size=n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) - np.array([0.5, 0.25])
    x = x + noise_rate * rng.standard_normal(x.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    order = rng.permutation(n)
    return ArrayDataset(
        x=x[order].astype(np.float32),
        y=y[order],
        num_classes=2,
        name="two-moons",
        mean=(0.0, 0.0),
        std=(1.0, 1.0),
    )


def load_digits_dataset(*, flatten: bool = False) -> ArrayDataset:
    """Load scikit-learn's bundled 8x8 handwritten digits (1797 images).

    Parameters
    ----------
    flatten : bool, default False
        Return ``x`` as ``(N, 64)`` instead of ``(N, 1, 8, 8)``.

    Returns
    -------
    ArrayDataset
        Pixel values scaled from ``0..16`` to ``[0, 1]``, 10 classes, with
        the mean and standard deviation computed over all pixels.

    Examples
    --------
    >>> ds = load_digits_dataset()
    >>> ds.x.shape, ds.num_classes
    ((1797, 1, 8, 8), 10)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - sklearn is a train extra
        raise DatasetNotFoundError(
            "the digits dataset ships with scikit-learn; install it with "
            "`pip install scikit-learn` (or the 'train' extra of divweights)"
        ) from exc
    bunch = load_digits()
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    mean, std = float(x.mean()), float(x.std())
    if flatten:
        x = x.reshape(x.shape[0], -1)
        mean_t, std_t = (mean,) * 64, (std,) * 64
    else:
        mean_t, std_t = (mean,), (std,)
    return ArrayDataset(
        x=x,
        y=np.asarray(bunch.target, dtype=np.int64),
        num_classes=10,
        name="digits",
        mean=mean_t,
        std=std_t,
    )
