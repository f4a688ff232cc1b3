"""Command line of the training program: ``divweights-train``.

Examples
--------
Train CICW-M on Fashion-MNIST with 60% symmetric label noise::

    divweights-train --dataset fashion-mnist --subset 10000 --noise symmetric:0.6 \\
        --method cicw-m --epochs 30 --out runs/fmnist-cicwm

Reproduce the published CIFAR-10 recipe (50,000 iterations, evaluation every
1,000; ``docs/guide/protocol.rst``) for CIW-M at 40% asymmetric noise::

    divweights-train --protocol paper --dataset cifar10 --noise asymmetric:0.4 \\
        --method ciw-m --out runs/c10-ciwm

Every option maps onto one field of :class:`divweights_train.config.TrainConfig`
(``--lr-milestones`` onto ``lr_milestones`` and so on); options that are not
given keep the config's default, and "auto" defaults are resolved from the
dataset and method (:meth:`TrainConfig.resolved`). An interrupted run continues
with the same command plus ``--resume``.

Everything is checked before anything runs, and each problem is one line on
stderr naming the option and what to give instead (exit status 2):

* every number must be finite and in its range (``--help`` shows it after
  ``valid:``; :data:`~divweights_train.config.NUMERIC_OPTIONS`);
* an option that would change nothing with the chosen method is refused,
  with the reason (``--method ce --class-divergence tv``;
  :func:`~divweights_train.config.unused_options`);
* ``--device cuda`` needs a GPU that the chosen framework can use.

Exit status: 0 when the run finished (or stopped as asked), 1 when it failed
(missing data files, diverged training, a full disk: one line naming the
file, the folder and that its last checkpoint is intact), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from collections.abc import Sequence

from .config import (
    ALPHA_LIMIT,
    AUGMENTATIONS,
    CLASS_DIVERGENCES,
    DATASETS,
    FRAMEWORKS,
    METHODS,
    MIXUP_MODES,
    MIXUP_RULES,
    MODELS,
    NUMERIC_OPTIONS,
    PROTOCOLS,
    OptionError,
    TrainConfig,
    unused_options,
)
from .errors import DiskFullError

__all__ = [
    "build_parser",
    "check_device",
    "config_from_args",
    "get_trainer",
    "main",
    "option_flag",
]

PROG = "divweights-train"

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _d(name: str) -> str:
    v = _DEFAULTS[name]
    return "auto" if v is None else str(v)


def _number_or(*words: str):
    """An argparse type: a float, or one of ``words``."""

    def parse(text: str):
        if text.strip().lower() in words:
            return text.strip().lower()
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a number or one of {', '.join(words)}; got {text!r}"
            ) from None

    parse.__name__ = "number_or_" + "_".join(words)
    parse.words = words  # a numeric option that also takes these words
    return parse


def _v(name: str) -> str:
    """`` valid: <range>`` of a numeric option, for its help text."""
    return f"; valid: {NUMERIC_OPTIONS[name].short()}"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and exit with status 2."""

    def error(self, message: str):
        self.exit(
            2,
            f"{self.prog}: error: {message} ({self.prog} --help lists every option and its range)\n",
        )


def option_flag(field: str, parser: argparse.ArgumentParser | None = None) -> str:
    """The command-line spelling of a :class:`TrainConfig` field, as argparse names it in errors.

    Examples
    --------
    >>> option_flag("class_gamma"), option_flag("weight_decay"), option_flag("plots")
    ('--gamma/--class-gamma', '--weight-decay', '--no-plots')
    """
    parser = parser or build_parser()
    for action in parser._actions:
        if action.dest == field and action.option_strings:
            return "/".join(action.option_strings)
    return "--" + field.replace("_", "-")


def _milestones(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "none"):
        return ()
    try:
        return tuple(int(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"milestones must be integers like '30,80,110', got {text!r}"
        ) from None


def _steps(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "none"):
        return ()
    try:
        return tuple(int(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"step milestones must be integers like '11718,31250,42968', got {text!r}"
        ) from None


_METHOD_HELP = (
    "training method (default {default}): ce; bootstrap; mixup; the reweighting family ciw, cicw, "
    "ciw-m, cicw-m; the robust-loss baselines bi-tempered (bi-tempered logistic loss, --t1 --t2), "
    "nce-rce (active-passive normalized loss NCE+RCE, --loss-alpha --loss-beta), gce (generalized "
    "cross-entropy, --q), sce (symmetric cross-entropy, --loss-alpha --loss-beta); dynamic-mixup "
    "(Arazo et al. 2019: per-epoch beta mixture on the per-example losses, dynamic hard "
    "bootstrapping with mixup; keeps 5 bytes per training example); 'oracle' is a reference: "
    "cross-entropy on the examples whose labels were not flipped (a perfect filter)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every default is None: unset flags keep the config's default)."""
    p = _Parser(
        prog=PROG,
        description="Train a classifier on noisy labels with divergence-constrained instance and class "
        "reweighting (CIW, CICW, CICW-M) or a baseline, and log clean-test accuracy per epoch.",
        epilog="Numbers must be finite and in the range shown after 'valid:' ('[' and ']' include the bound, "
        "'(' and ')' exclude it). Options that would have no effect with the chosen method (for example "
        "--class-divergence with --method ce) are refused with the reason. Exit status: 0 done, 1 the run "
        "failed (missing data, diverged training), 2 usage error.",
        argument_default=None,
    )
    g = p.add_argument_group("protocol")
    g.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="default: divweights' recipe per dataset; paper: the published CIFAR-10/100 recipe "
        "(50,000 iterations at batch 128, lr 0.1 /10 after iterations 11718/31250/42968, SGD "
        "Nesterov 0.9, no weight decay, the published PreAct ResNet-18, burn-in 4000 and "
        "annealing 3000 steps, evaluation every 1000 iterations, the published mixup rules and "
        "per-method settings; every option given explicitly still wins; see "
        "docs/guide/protocol.rst) (default default)",
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"dataset: {', '.join(DATASETS)} (default {_d('dataset')})",
    )
    g.add_argument(
        "--data-dir",
        help="folder with the dataset files (Fashion-MNIST: the system package's "
        "folder; CIFAR: a folder holding cifar-10-batches-py/ or cifar-100-python/, default ./data); "
        "not for two-moons and digits",
    )
    g.add_argument(
        "--subset",
        type=int,
        help="stratified training subset of this many examples (before the "
        "validation split)" + _v("subset"),
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        help=f"fraction of the noisy training data held out as the "
        f"noisy validation split (default {_d('val_fraction')}{_v('val_fraction')})",
    )
    g.add_argument(
        "--noise",
        help="label noise KIND:RATE with RATE in [0, 1], e.g. symmetric:0.6, asymmetric:0.4, "
        f"pairflip:0.45, instance:0.4, or none (default {_d('noise')})",
    )
    g.add_argument(
        "--exact-noise",
        action=argparse.BooleanOptionalAction,
        help="flip exactly round(rate x n) labels (on), or each label independently with "
        "probability rate (off; the published code's symmetric noise) (default on; off with "
        "--protocol paper except asymmetric and instance noise, which stay exact)",
    )
    g.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        help="image augmentation (default: crop-flip for CIFAR, "
        "none otherwise; images only)",
    )
    g.add_argument(
        "--crop-pad",
        type=int,
        help="padding of the random crop in pixels per side (default 4 for images of at "
        "least 32 pixels, 2 otherwise and with --protocol paper" + _v("crop_pad") + ")",
    )

    g = p.add_argument_group("method")
    g.add_argument(
        "--method",
        choices=METHODS,
        help=_METHOD_HELP.format(default=_d("method")),
    )
    g.add_argument(
        "--divergence",
        "--instance-divergence",
        dest="instance_divergence",
        metavar="NAME",
        help="divergence of the instance weights from uniform: kl, reverse-kl, chi2, tv, l2, alpha:A "
        f"with -{ALPHA_LIMIT:g} <= A <= {ALPHA_LIMIT:g} (default kl; alpha:0.1 with --protocol "
        "paper; instance-weighting methods only)",
    )
    s = g.add_mutually_exclusive_group()
    s.add_argument(
        "--delta",
        type=_number_or("auto", "noise"),
        help="radius of D(w||u) <= delta: a number, 'auto' (the default of every instance-weighting method: "
        "adapts to each batch, no noise rate needed, no burn-in) or 'noise' (the previous default: "
        "-log(1 - r) for the expected flip rate r of --noise, clipped to [0.1, 1.6]" + _v("delta") + ")",
    )
    s.add_argument(
        "--temperature",
        type=float,
        help="the published code's temperature T (KL: w ~ exp(-l/T); "
        "KL, chi2 and alpha only" + _v("temperature") + ")",
    )
    s.add_argument(
        "--lam",
        type=float,
        help="penalty multiplier lambda of the penalised problem" + _v("lam"),
    )
    g.add_argument(
        "--class-divergence",
        metavar="NAME",
        help=f"divergence of the class weights from the label: "
        f"{', '.join(CLASS_DIVERGENCES)} (default per method; bootstrap, cicw and cicw-m only)",
    )
    g.add_argument(
        "--gamma",
        "--class-gamma",
        dest="class_gamma",
        type=_number_or("auto"),
        metavar="GAMMA",
        help="radius of the class constraint: a number or 'auto' (default for cicw and cicw-m: the radius "
        "that lets each label give up the batch's estimated noisy fraction; bootstrap 0.2; at most 1 for tv, 2 for l2"
        + _v("class_gamma")
        + ")",
    )
    g.add_argument(
        "--mixup-mode",
        choices=MIXUP_MODES,
        help="override the method's weighted-mixup mode (mixup methods only)",
    )
    g.add_argument(
        "--mixup-alpha",
        type=float,
        help=f"Beta(alpha, alpha) of mixup ratios (default "
        f"{_d('mixup_alpha')}, dynamic-mixup 32; modes plain, sample, label_smoothing, and the "
        f"published rule's burn-in{_v('mixup_alpha')})",
    )
    g.add_argument(
        "--mixup-power",
        type=float,
        help=f"partner sampling P(j) ~ w_j**power (default "
        f"{_d('mixup_power')}; modes sample, sample_weight; with --mixup-rule published also the "
        f"mixing ratio and the CIW-M smoothing use w**power{_v('mixup_power')})",
    )
    g.add_argument(
        "--mixup-rule",
        choices=MIXUP_RULES,
        help="weighted-mixup rules: divweights (the adapters' weighted_mixup: partners by w**power, "
        "ratio w_i/(w_i+w_j), CIW-M smoothing w/max w, the method's mixup during the burn-in) or "
        "published (partners and ratio from w**power, CIW-M smoothing (w-w_min)/(w_max-w_min) "
        "with margins 0.01, plain Beta(alpha, alpha) mixup during the burn-in and none for CIW-M) "
        "(default divweights; published with --protocol paper; ciw-m and cicw-m only)",
    )
    g.add_argument(
        "--mixup-recompute",
        action=argparse.BooleanOptionalAction,
        help="recompute the weights on the mixed batch (second forward pass) (default per method)",
    )
    g.add_argument(
        "--burnin-steps",
        type=int,
        help="steps of uniform weights before reweighting starts" + _v("burnin_steps"),
    )
    g.add_argument(
        "--anneal-steps",
        type=int,
        help="steps over which the strength anneals to its target" + _v("anneal_steps"),
    )
    g.add_argument(
        "--burnin-epochs",
        type=float,
        help="burn-in in epochs (when --burnin-steps is not given"
        + _v("burnin_epochs")
        + ")",
    )
    g.add_argument(
        "--anneal-epochs",
        type=float,
        help="annealing in epochs (when --anneal-steps is not given"
        + _v("anneal_epochs")
        + ")",
    )
    g.add_argument(
        "--anneal-start-factor",
        type=float,
        help=f"strength factor at the end of the burn-in "
        f"(temperature x f, delta / f) (default {_d('anneal_start_factor')}"
        f"{_v('anneal_start_factor')})",
    )

    g.add_argument(
        "--t1",
        type=float,
        help="bi-tempered: temperature of the logarithm (default 0.8" + _v("t1") + ")",
    )
    g.add_argument(
        "--t2",
        type=float,
        help="bi-tempered: temperature of the exponential (default 1.2"
        + _v("t2")
        + ")",
    )
    g.add_argument(
        "--loss-alpha",
        type=float,
        help="nce-rce: weight of NCE (default 1, CIFAR-100 10); sce: weight of CE (default 0.1, "
        "CIFAR-100 6" + _v("loss_alpha") + ")",
    )
    g.add_argument(
        "--loss-beta",
        type=float,
        help="nce-rce and sce: weight of the reverse cross-entropy (default 1, CIFAR-100 0.1"
        + _v("loss_beta")
        + ")",
    )
    g.add_argument(
        "--q",
        type=float,
        help="gce: exponent q of the generalized cross-entropy (default 0.7"
        + _v("q")
        + ")",
    )

    g = p.add_argument_group("model and optimiser")
    g.add_argument(
        "--model",
        choices=MODELS,
        help="network (default: preact-resnet18 for CIFAR, mlp for "
        "two-moons, cnn otherwise)",
    )
    g.add_argument(
        "--width",
        type=int,
        help="cnn: channels of the first block; mlp: hidden units per layer"
        + _v("width"),
    )
    g.add_argument(
        "--epochs",
        type=int,
        help="epochs, or evaluation periods with --eval-every (default 30; 50 periods of 1000 "
        "steps with --protocol paper" + _v("epochs") + ")",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        help="evaluate, record and checkpoint every this many steps instead of every epoch; "
        "an epoch is then such a period and the examples form one continuous stream of "
        "shuffled passes (default: per epoch; 1000 with --protocol paper"
        + _v("eval_every")
        + ")",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        help=f"mini-batch size (default {_d('batch_size')}{_v('batch_size')})",
    )
    g.add_argument(
        "--eval-batch-size",
        type=int,
        help=f"evaluation batch size (default {_d('eval_batch_size')}"
        f"{_v('eval_batch_size')})",
    )
    g.add_argument(
        "--lr", type=float, help="learning rate (default per model" + _v("lr") + ")"
    )
    g.add_argument(
        "--momentum",
        type=float,
        help=f"SGD momentum (default {_d('momentum')}{_v('momentum')})",
    )
    g.add_argument(
        "--nesterov",
        action=argparse.BooleanOptionalAction,
        help="Nesterov momentum (default on)",
    )
    g.add_argument(
        "--weight-decay",
        type=float,
        help="weight decay (default 5e-4; 0 with --protocol paper"
        + _v("weight_decay")
        + ")",
    )
    g.add_argument(
        "--lr-milestones",
        type=_milestones,
        help="epochs at which the lr is multiplied by "
        "--lr-decay, e.g. 30,80,110, or none (default per model; strictly increasing, below --epochs)",
    )
    g.add_argument(
        "--lr-milestone-steps",
        type=_steps,
        help="optimisation steps after which the lr is multiplied by --lr-decay (steps 0..m keep "
        "the higher rate, as tf.keras PiecewiseConstantDecay), e.g. 11718,31250,42968 (default: "
        "none; with --protocol paper (30, 80, 110) x 50000 // --batch-size; not with "
        "--lr-milestones)",
    )
    g.add_argument(
        "--lr-decay",
        type=float,
        help=f"lr factor at each milestone (default {_d('lr_decay')}{_v('lr_decay')})",
    )
    g.add_argument(
        "--warmup-epochs",
        type=float,
        help="linear lr warm-up (default 1 for the cnn, 0 otherwise; "
        "at most --epochs" + _v("warmup_epochs") + ")",
    )

    g = p.add_argument_group("run control")
    g.add_argument(
        "--seed",
        type=int,
        help=f"seed of every random choice (default {_d('seed')}{_v('seed')}: 32 bits)",
    )
    g.add_argument(
        "--out",
        help="output folder (default runs/<dataset>-<method>-s<seed>; not empty)",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue from OUT/checkpoint.pt (same options required)",
    )
    if "overwrite" in _DEFAULTS:
        g.add_argument(
            "--overwrite",
            action="store_true",
            default=None,
            help="clear OUT first when it holds a previous run",
        )
    g.add_argument(
        "--framework",
        choices=FRAMEWORKS,
        help=f"training framework (default {_d('framework')})",
    )
    g.add_argument(
        "--device",
        help="cpu, cuda or cuda:N (default cpu; cuda needs a GPU the framework can use)",
    )
    g.add_argument(
        "--max-steps",
        type=int,
        help="stop after this many optimisation steps (smoke tests"
        + _v("max_steps")
        + ")",
    )
    g.add_argument(
        "--stop-after-epochs",
        type=int,
        help="stop after this many epochs, leaving a resumable "
        "run (to simulate an interruption" + _v("stop_after_epochs") + ")",
    )
    g.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (fixed for reproducibility; torch only"
        + _v("threads")
        + ")",
    )
    g.add_argument(
        "--quiet",
        action="store_true",
        default=None,
        help="no progress bar and no per-epoch lines",
    )
    g.add_argument(
        "--no-plots",
        dest="plots",
        action="store_false",
        default=None,
        help="do not write PNG plots",
    )
    g.add_argument(
        "--no-save-weights",
        dest="save_weights",
        action="store_false",
        default=None,
        help="do not write the per-example weights of each epoch",
    )
    g.add_argument(
        "--clean-model-epochs",
        type=int,
        help="epochs of the clean model that scores examples for "
        f"instance-dependent noise (default {_d('clean_model_epochs')}{_v('clean_model_epochs')})",
    )
    g.add_argument(
        "--cache-dir",
        help="cache of those scores (default ~/.cache/divweights_train; instance "
        "noise only)",
    )
    g.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration and exit",
    )
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
            raise RuntimeError(
                "divweights_train.trainer_jax has no train(config) function"
            )
        return module.train
    raise ValueError(
        f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}"
    )


def check_device(config: TrainConfig) -> None:
    """Raise :class:`~divweights_train.config.OptionError` when ``config.device`` cannot be used.

    ``cuda`` and ``cuda:N`` need a GPU that the run's framework sees (torch:
    ``torch.cuda``; JAX: a GPU backend). ``cpu`` always works.
    """
    device = str(config.device)
    if device == "cpu":
        return
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if config.framework == "jax":
        import jax

        try:
            count = len(jax.devices("gpu"))
        except RuntimeError:
            count = 0
        if count == 0:
            raise OptionError(
                "device",
                f"{device} was requested but JAX has no GPU backend here (install a CUDA "
                "build of jax); use --device cpu",
            )
    else:
        import torch

        if not torch.cuda.is_available():
            why = (
                "is built without CUDA" if torch.version.cuda is None else "sees no GPU"
            )
            raise OptionError(
                "device",
                f"{device} was requested but torch {torch.__version__} {why}; use "
                "--device cpu",
            )
        count = torch.cuda.device_count()
    if index >= count:
        raise OptionError(
            "device",
            f"{device} was requested but there are only {count} GPU(s) (cuda:0 to "
            f"cuda:{count - 1})",
        )


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``divweights-train``; returns the exit status (0 done, 1 run failed, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except (
        SystemExit
    ) as exc:  # --help (0) or a malformed option (2, already reported on one line)
        return exc.code if isinstance(exc.code, int) else 2
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    try:
        config = config_from_args(args)
        resolved = config.resolved()
        unused = unused_options(
            config, given, option_name=lambda f: option_flag(f, parser)
        )
        if unused:
            field, reason = unused[0]
            more = (
                f" (also: {', '.join(option_flag(f, parser) for f, _ in unused[1:])})"
                if len(unused) > 1
                else ""
            )
            raise OptionError(field, f"has no effect {reason}; leave it out{more}")
    except OptionError as err:
        return _fail(f"argument {option_flag(err.field, parser)}: {err.problem}", 2)
    except (ValueError, TypeError) as err:
        return _fail(str(err), 2)
    if args.print_config:
        print(resolved.to_json())
        return 0
    try:
        train = get_trainer(config.framework)
        check_device(config)
    except OptionError as err:
        return _fail(f"argument {option_flag(err.field, parser)}: {err.problem}", 2)
    except RuntimeError as err:
        return _fail(str(err), 2)
    try:
        result = train(config)
    except (FileNotFoundError, DiskFullError) as err:
        return _fail(str(err), 1)
    except FloatingPointError as err:
        return _fail(
            f"training diverged: {err}; lower --lr (now {resolved.lr:g}) or lengthen --warmup-epochs",
            1,
        )
    except ValueError as err:
        return _fail(str(err), 2)
    s = result.summary
    if not config.quiet and s:
        print(json.dumps({"out": str(result.out_dir), **s}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
