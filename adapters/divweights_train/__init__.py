"""divweights_train: the noisy-label training program behind ``divweights-train``.

Framework-neutral modules (importing this package, or any of these, loads
neither torch nor jax):

* :mod:`~divweights_train.config` -- :class:`~divweights_train.config.TrainConfig`,
  one frozen dataclass with every command-line option, the per-method
  defaults and the range of every numeric option; by concern in
  :mod:`~divweights_train.config_ranges` (ranges, divergence names, the option
  error), :mod:`~divweights_train.config_checks` (the checks),
  :mod:`~divweights_train.config_defaults` (the automatic defaults),
  :mod:`~divweights_train.config_schedule` (learning rate, burn-in and
  annealing) and :mod:`~divweights_train.config_unused` (options that change
  nothing), all re-exported by ``config``;
* :mod:`~divweights_train.cli` -- the ``divweights-train`` command line (checks
  every option before anything runs); its options are one table in
  :mod:`~divweights_train.cli_options`;
* :mod:`~divweights_train.runloop` -- :func:`~divweights_train.runloop.run`, one
  training run whatever the framework, and the ``Backend`` interface the
  trainers implement;
* :mod:`~divweights_train.runfolder` -- the output folder: checked, locked,
  never silently reused;
* :mod:`~divweights_train.checkpoint` -- atomic, code-free checkpoints, weight
  files and standard JSON;
* :mod:`~divweights_train.errors` -- the one-line errors (usage errors, full disk);
* :mod:`~divweights_train.prepare` -- subset, label noise (with the cached
  clean-model scores of instance-dependent noise), noisy validation split and
  per-epoch seeds;
* :mod:`~divweights_train.noise` -- synthetic label noise generators and the
  ``--noise`` specification;
* :mod:`~divweights_train.datasets` -- offline dataset readers (two-moons,
  digits, Fashion-MNIST, CIFAR-10/100, the user's ``.npz`` files and image
  folders);
* :mod:`~divweights_train.metrics` -- AUROC, effective sample size, the per-epoch
  record and its JSON-lines writer, the summary;
* :mod:`~divweights_train.progress` -- the progress bar (plain lines off a terminal);
* :mod:`~divweights_train.plots` -- accuracy curves and weight histograms (PNG);
* :mod:`~divweights_train.model_names` -- the model names both model zoos share;
* :mod:`~divweights_train.protocol` -- ``--protocol paper``: the published CIFAR
  recipe and the published mixup rules;
* :mod:`~divweights_train.bmm` -- the two-component beta mixture of
  ``--method dynamic-mixup``;
* :mod:`~divweights_train.demo` -- ``make demo``, the Fashion-MNIST comparison:
  its run plan and time estimate (:mod:`~divweights_train.demo_plan`), progress
  (:mod:`~divweights_train.demo_progress`) and result table and verdict
  (:mod:`~divweights_train.demo_results`), all re-exported by ``demo``.

Framework-specific: :mod:`~divweights_train.trainer_torch` (``--framework torch``)
with :mod:`~divweights_train.models_torch`, :mod:`~divweights_train.augment` and
its losses in :mod:`~divweights_train.torch_loss`;
:mod:`~divweights_train.trainer_jax` (``--framework jax``) with
:mod:`~divweights_train.models_jax` and :mod:`~divweights_train.jax_step` (the
jitted step), whose step description and losses are in
:mod:`~divweights_train.jax_loss`.
"""
