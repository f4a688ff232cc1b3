"""Command line of the training program: ``divweights-train``.

Examples
--------
Train CICW-M on Fashion-MNIST with 60% symmetric label noise::

    divweights-train --dataset fashion-mnist --subset 10000 --noise symmetric:0.6 \\
        --method cicw-m --epochs 30 --out runs/fmnist-cicwm

Every option maps onto one field of :class:`divweights_train.config.TrainConfig`
(``--lr-milestones`` onto ``lr_milestones`` and so on); options that are not
given keep the config's default, and "auto" defaults are resolved from the
dataset and method (:meth:`TrainConfig.resolved`). An interrupted run continues
with the same command plus ``--resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from collections.abc import Sequence

from .config import (
    AUGMENTATIONS,
    DATASETS,
    FRAMEWORKS,
    METHODS,
    MIXUP_MODES,
    MODELS,
    TrainConfig,
)

__all__ = ["build_parser", "config_from_args", "get_trainer", "main"]

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _d(name: str) -> str:
    v = _DEFAULTS[name]
    return "auto" if v is None else str(v)


def _milestones(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "none"):
        return ()
    try:
        return tuple(int(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"milestones must be integers like '30,80,110', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every default is None: unset flags keep the config's default)."""
    p = argparse.ArgumentParser(
        prog="divweights-train",
        description="Train a classifier on noisy labels with divergence-constrained instance and class "
        "reweighting (CIW, CICW, CICW-M) or a baseline, and log clean-test accuracy per epoch.",
        argument_default=None,
    )
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, help=f"dataset (default {_d('dataset')})")
    g.add_argument("--data-dir", help="folder with the dataset files (Fashion-MNIST: the system package's "
                   "folder; CIFAR: a folder holding cifar-10-batches-py/ or cifar-100-python/, default ./data)")
    g.add_argument("--subset", type=int, help="stratified training subset of this many examples (before the "
                   "validation split)")
    g.add_argument("--val-fraction", type=float, help=f"fraction of the noisy training data held out as the "
                   f"noisy validation split (default {_d('val_fraction')})")
    g.add_argument("--noise", help="label noise, e.g. symmetric:0.6, asymmetric:0.4, pairflip:0.45, "
                   f"instance:0.4, none (default {_d('noise')})")
    g.add_argument("--augment", choices=AUGMENTATIONS, help="image augmentation (default: crop-flip for CIFAR, "
                   "none otherwise)")

    g = p.add_argument_group("method")
    g.add_argument("--method", choices=METHODS, help=f"training method (default {_d('method')}); 'oracle' is a "
                   "reference: cross-entropy on the examples whose labels were not flipped (a perfect filter)")
    g.add_argument("--divergence", "--instance-divergence", dest="instance_divergence",
                   help="divergence of the instance weights from uniform: kl, reverse-kl, chi2, alpha:A "
                   f"(default {_d('instance_divergence')})")
    s = g.add_mutually_exclusive_group()
    s.add_argument("--delta", type=float, help="radius of D(w||u) <= delta (default: CIW/CICW/CIW-M "
                   "-log(1 - r) for the expected flip rate r of --noise, clipped to [0.1, 1.6]; CICW-M 0.1)")
    s.add_argument("--temperature", type=float, help="the published code's temperature T (KL: w ~ exp(-l/T))")
    s.add_argument("--lam", type=float, help="penalty multiplier lambda of the penalised problem")
    g.add_argument("--class-divergence", help="divergence of the class weights from the label: reverse-kl, "
                   "tv, l2, kl (default per method)")
    g.add_argument("--gamma", "--class-gamma", dest="class_gamma", type=float,
                   help="radius of the class constraint (default per method)")
    g.add_argument("--mixup-mode", choices=MIXUP_MODES, help="override the method's weighted-mixup mode")
    g.add_argument("--mixup-alpha", type=float, help=f"Beta(alpha, alpha) of mixup ratios (default "
                   f"{_d('mixup_alpha')})")
    g.add_argument("--mixup-power", type=float, help=f"partner sampling P(j) ~ w_j**power (default "
                   f"{_d('mixup_power')})")
    g.add_argument("--mixup-recompute", action=argparse.BooleanOptionalAction,
                   help="recompute the weights on the mixed batch (second forward pass) (default per method)")
    g.add_argument("--burnin-steps", type=int, help="steps of uniform weights before reweighting starts")
    g.add_argument("--anneal-steps", type=int, help="steps over which the strength anneals to its target")
    g.add_argument("--burnin-epochs", type=float, help="burn-in in epochs (used when --burnin-steps is unset)")
    g.add_argument("--anneal-epochs", type=float, help="annealing in epochs (used when --anneal-steps is unset)")
    g.add_argument("--anneal-start-factor", type=float, help=f"strength factor at the end of the burn-in "
                   f"(temperature x f, delta / f) (default {_d('anneal_start_factor')})")

    g = p.add_argument_group("model and optimiser")
    g.add_argument("--model", choices=MODELS, help="network (default: preact-resnet18 for CIFAR, mlp for "
                   "two-moons, cnn otherwise)")
    g.add_argument("--width", type=int, help="cnn: channels of the first block; mlp: hidden units per layer")
    g.add_argument("--epochs", type=int, help=f"epochs (default {_d('epochs')})")
    g.add_argument("--batch-size", type=int, help=f"mini-batch size (default {_d('batch_size')})")
    g.add_argument("--eval-batch-size", type=int, help=f"evaluation batch size (default {_d('eval_batch_size')})")
    g.add_argument("--lr", type=float, help="learning rate (default per model)")
    g.add_argument("--momentum", type=float, help=f"SGD momentum (default {_d('momentum')})")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum (default on)")
    g.add_argument("--weight-decay", type=float, help=f"weight decay (default {_d('weight_decay')})")
    g.add_argument("--lr-milestones", type=_milestones, help="epochs at which the lr is multiplied by "
                   "--lr-decay, e.g. 30,80,110 (default per model)")
    g.add_argument("--lr-decay", type=float, help=f"lr factor at each milestone (default {_d('lr_decay')})")
    g.add_argument("--warmup-epochs", type=float, help=f"linear lr warm-up (default {_d('warmup_epochs')})")

    g = p.add_argument_group("run control")
    g.add_argument("--seed", type=int, help=f"seed of every random choice (default {_d('seed')})")
    g.add_argument("--out", help="output folder (default runs/<dataset>-<method>-s<seed>)")
    g.add_argument("--resume", action="store_true", default=None,
                   help="continue from OUT/checkpoint.pt (same options required)")
    g.add_argument("--framework", choices=FRAMEWORKS, help=f"training framework (default {_d('framework')})")
    g.add_argument("--device", help="cpu or cuda[:N] (default cpu)")
    g.add_argument("--max-steps", type=int, help="stop after this many optimisation steps (smoke tests)")
    g.add_argument("--stop-after-epochs", type=int, help="stop after this many epochs, leaving a resumable "
                   "run (to simulate an interruption)")
    g.add_argument("--threads", type=int, help="torch CPU threads (fixed for reproducibility)")
    g.add_argument("--quiet", action="store_true", default=None, help="no progress bar and no per-epoch lines")
    g.add_argument("--no-plots", dest="plots", action="store_false", default=None, help="do not write PNG plots")
    g.add_argument("--no-save-weights", dest="save_weights", action="store_false", default=None,
                   help="do not write the per-example weights of each epoch")
    g.add_argument("--clean-model-epochs", type=int, help="epochs of the clean model that scores examples for "
                   f"instance-dependent noise (default {_d('clean_model_epochs')})")
    g.add_argument("--cache-dir", help="cache of those scores (default ~/.cache/divweights_train)")
    g.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed arguments (unset flags keep the defaults)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kwargs = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return TrainConfig(**kwargs)


def get_trainer(framework: str):
    """The ``train(config, ...)`` function of a framework.

    ``jax`` loads :mod:`divweights_train.trainer_jax`; a clear error says so
    when that module is not available.
    """
    if framework == "torch":
        from .trainer_torch import train

        return train
    if framework == "jax":
        try:
            module = importlib.import_module("divweights_train.trainer_jax")
        except ModuleNotFoundError as err:
            if err.name in ("divweights_train.trainer_jax", "jax"):
                raise RuntimeError(
                    "--framework jax needs divweights_train.trainer_jax (and jax), which is not available in "
                    "this installation; use --framework torch"
                ) from err
            raise
        if not hasattr(module, "train"):
            raise RuntimeError("divweights_train.trainer_jax has no train(config) function")
        return module.train
    raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``divweights-train``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        resolved = config.resolved()
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if args.print_config:
        print(resolved.to_json())
        return 0
    try:
        train = get_trainer(config.framework)
    except RuntimeError as err:
        print(f"divweights-train: error: {err}", file=sys.stderr)
        return 2
    try:
        result = train(config)
    except FileNotFoundError as err:
        print(f"divweights-train: error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"divweights-train: error: {err}", file=sys.stderr)
        return 2
    s = result.summary
    if not config.quiet and s:
        print(json.dumps({"out": str(result.out_dir), **s}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
