"""divweights_train: the noisy-label training program behind ``divweights-train``.

Framework-neutral modules (NumPy only; importing this package loads neither
torch nor jax):

* :mod:`~divweights_train.config` -- :class:`~divweights_train.config.TrainConfig`,
  one frozen dataclass with every command-line option, and the per-method
  defaults;
* :mod:`~divweights_train.prepare` -- subset, label noise, noisy validation split
  and per-epoch seeds;
* :mod:`~divweights_train.metrics` -- AUROC, effective sample size, the per-epoch
  record and its JSON-lines writer;
* :mod:`~divweights_train.checkpoint` -- atomic checkpoint files;
* :mod:`~divweights_train.plots` -- accuracy curves and weight histograms (PNG);
* :mod:`~divweights_train.datasets` -- offline dataset readers.

Framework-specific: :mod:`~divweights_train.trainer_torch` (``--framework torch``),
:mod:`~divweights_train.trainer_jax` (``--framework jax``), the model zoos, and
:mod:`~divweights_train.cli` / :mod:`~divweights_train.demo` on top.
"""
