"""The options of ``divweights-train``, as one table, and the parser built from it.

Each row of :data:`OPTION_GROUPS` is one option: its flags and the keyword
arguments of :meth:`argparse.ArgumentParser.add_argument`.  A numeric field's
``type`` comes from the config's table of ranges: ``int`` or ``float`` by
:data:`~divweights_train.config.NUMERIC_OPTIONS`, a number or one of the
:data:`~divweights_train.config.STRENGTH_WORDS` for ``--delta`` and ``--gamma``.  In a help text,
``{default}`` stands for the :class:`~divweights_train.config.TrainConfig`
default of the option's field ("auto" when it is resolved per run) and
``{valid}`` for ``; valid: <range>`` of a numeric option
(:data:`~divweights_train.config.NUMERIC_OPTIONS`), so that the help always
shows the values the config really uses.  :func:`build_parser` is re-exported
by :mod:`divweights_train.cli`.
"""

from __future__ import annotations

import argparse
import dataclasses

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
    STRENGTH_WORDS,
    TrainConfig,
)

__all__ = ["OPTION_GROUPS", "PROG", "build_parser"]

PROG = "divweights-train"

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _d(name: str) -> str:
    v = _DEFAULTS[name]
    return "auto" if v is None else str(v)


def _v(name: str) -> str:
    """`` valid: <range>`` of a numeric option, for its help text."""
    return f"; valid: {NUMERIC_OPTIONS[name].short()}"


def _number_or(*words: str):
    """An argparse type: a float, or one of ``words``."""

    def parse(text: str):
        if text.strip().lower() in words:
            return text.strip().lower()
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number or one of {', '.join(words)}; got {text!r}") from None

    parse.__name__ = "number_or_" + "_".join(words)
    parse.words = words  # a numeric option that also takes these words
    return parse


def _int_list(name: str, what: str, example: str):
    """An argparse type: whole numbers separated by commas or spaces; '' or 'none' is the empty tuple."""

    def parse(text: str) -> tuple[int, ...]:
        text = text.strip()
        if text in ("", "none"):
            return ()
        try:
            return tuple(int(t) for t in text.replace(",", " ").split())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be integers like '{example}', got {text!r}") from None

    parse.__name__ = name
    return parse


_milestones = _int_list("_milestones", "milestones", "30,80,110")
_steps = _int_list("_steps", "step milestones", "11718,31250,42968")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and exit with status 2."""

    def error(self, message: str):
        self.exit(
            2,
            f"{self.prog}: error: {message} ({self.prog} --help lists every option and its range)\n",
        )


@dataclasses.dataclass(frozen=True)
class _Option:
    """One row of the table: ``add_argument(*flags, **kwargs)``, in the group's exclusive set when ``exclusive``."""

    flags: tuple[str, ...]
    kwargs: dict
    exclusive: bool = False


def _o(*flags: str, exclusive: bool = False, **kwargs) -> _Option:
    return _Option(flags, kwargs, exclusive)


def _flag(*flags: str, **kwargs) -> _Option:
    """A switch that is None (the config's default) unless given."""
    return _Option(flags, {"action": "store_true", "default": None, **kwargs})


def _on_off(flag: str, help: str) -> _Option:
    return _Option((flag,), {"action": argparse.BooleanOptionalAction, "help": help})


_METHOD_HELP = (
    "training method (default {default}): ce; bootstrap; mixup; the reweighting family ciw, cicw, "
    "ciw-m, cicw-m; the robust-loss baselines bi-tempered (bi-tempered logistic loss, --t1 --t2), "
    "nce-rce (active-passive normalized loss NCE+RCE, --loss-alpha --loss-beta), gce (generalized "
    "cross-entropy, --q), sce (symmetric cross-entropy, --loss-alpha --loss-beta); dynamic-mixup "
    "(Arazo et al. 2019: per-epoch beta mixture on the per-example losses, dynamic hard "
    "bootstrapping with mixup; keeps 5 bytes per training example); 'oracle' is a reference: "
    "cross-entropy on the examples whose labels were not flipped (a perfect filter)"
)

#: ``(group title, rows)``: every option of ``divweights-train``, in the order of ``--help``.
OPTION_GROUPS: tuple[tuple[str, tuple[_Option, ...]], ...] = (
    ("protocol", (
        _o("--protocol", choices=PROTOCOLS,
           help="default: divweights' recipe per dataset; paper: the published CIFAR-10/100 recipe "
           "(50,000 iterations at batch 128, lr 0.1 /10 after iterations 11718/31250/42968, SGD "
           "Nesterov 0.9, no weight decay, the published PreAct ResNet-18, burn-in 4000 and "
           "annealing 3000 steps, evaluation every 1000 iterations, the published mixup rules and "
           "per-method settings; every option given explicitly still wins; see "
           "docs/guide/protocol.rst) (default default)"),
    )),
    ("data", (
        _o("--dataset", metavar="NAME", help=f"dataset: {', '.join(DATASETS)} (default {{default}})"),
        _o("--data-dir", help="folder with the dataset files (Fashion-MNIST: the system package's "
           "folder; CIFAR: a folder holding cifar-10-batches-py/ or cifar-100-python/, default ./data); "
           "not for two-moons and digits"),
        _o("--subset", help="stratified training subset of this many examples (before the validation split){valid}"),
        _o("--val-fraction", help="fraction of the noisy training data held out as the "
           "noisy validation split (default {default}{valid})"),
        _o("--noise", help="label noise KIND:RATE with RATE in [0, 1], e.g. symmetric:0.6, asymmetric:0.4, "
           "pairflip:0.45, instance:0.4, or none (default {default})"),
        _on_off("--exact-noise",
                "flip exactly round(rate x n) labels (on), or each label independently with "
                "probability rate (off; the published code's symmetric noise) (default on; off with "
                "--protocol paper except asymmetric and instance noise, which stay exact)"),
        _o("--augment", choices=AUGMENTATIONS,
           help="image augmentation (default: crop-flip for CIFAR, none otherwise; images only)"),
        _o("--crop-pad", help="padding of the random crop in pixels per side (default 4 for images of at "
           "least 32 pixels, 2 otherwise and with --protocol paper{valid})"),
    )),
    ("method", (
        _o("--method", choices=METHODS, help=_METHOD_HELP),
        _o("--divergence", "--instance-divergence", dest="instance_divergence", metavar="NAME",
           help="divergence of the instance weights from uniform: kl, reverse-kl, chi2, tv, l2, alpha:A "
           f"with -{ALPHA_LIMIT:g} <= A <= {ALPHA_LIMIT:g} (default kl; alpha:0.1 with --protocol "
           "paper; instance-weighting methods only)"),
        _o("--delta", exclusive=True,
           help="radius of D(w||u) <= delta: a number, 'auto' (the default of ciw: adapts to each batch, no "
           "noise rate needed, no burn-in) or 'noise' (the default of cicw and ciw-m: -log(1 - r) for the "
           "expected flip rate r of --noise, clipped to [0.1, 1.6], so 0.1 without --noise; cicw-m: 0.1{valid})"),
        _o("--temperature", exclusive=True,
           help="the published code's temperature T (KL: w ~ exp(-l/T); KL, chi2 and alpha only{valid})"),
        _o("--lam", exclusive=True, help="penalty multiplier lambda of the penalised problem{valid}"),
        _o("--class-divergence", metavar="NAME", help=f"divergence of the class weights from the label: "
           f"{', '.join(CLASS_DIVERGENCES)} (default per method; bootstrap, cicw and cicw-m only)"),
        _o("--gamma", "--class-gamma", dest="class_gamma", metavar="GAMMA",
           help="radius of the class constraint: a number (default 0.3 for cicw and cicw-m, 0.2 for bootstrap; "
           "at most 1 for tv, 2 for l2) or 'auto' (the radius that lets each label give up the batch's estimated "
           "noisy fraction{valid})"),
        _o("--mixup-mode", choices=MIXUP_MODES, help="override the method's weighted-mixup mode (mixup methods only)"),
        _o("--mixup-alpha",
           help="Beta(alpha, alpha) of mixup ratios (default {default}, dynamic-mixup 32; modes plain, sample, "
           "label_smoothing, and the published rule's burn-in; for weight and sample_weight the concentration of "
           "the weighted ratio Beta(2 alpha rho, 2 alpha (1 - rho)), rho = w_i / (w_i + w_j){valid})"),
        _o("--mixup-power",
           help="partner sampling P(j) ~ w_j**power (default {default}; modes sample, sample_weight; with "
           "--mixup-rule published also the mixing ratio and the CIW-M smoothing use w**power{valid})"),
        _o("--mixup-rule", choices=MIXUP_RULES,
           help="weighted-mixup rules: divweights (the adapters' weighted_mixup: partners by w**power, "
           "ratio w_i/(w_i+w_j), CIW-M smoothing w/max w, the method's mixup during the burn-in) or "
           "published (partners and ratio from w**power, CIW-M smoothing (w-w_min)/(w_max-w_min) "
           "with margins 0.01, plain Beta(alpha, alpha) mixup during the burn-in and none for CIW-M) "
           "(default divweights; published with --protocol paper; ciw-m and cicw-m only)"),
        _on_off("--balance-classes",
                "shrink each batch's class-weight shift towards the labels by its net flow into some classes "
                "(divweights.mixup.balance_class_shift), so that CICW-M cannot collapse to one class "
                "(default on for class reweighting with mixup under the divweights mixup rule)"),
        _on_off("--mixup-recompute",
                "recompute the weights on the mixed batch (second forward pass) (default per method)"),
        _o("--burnin-steps", help="steps of uniform weights before reweighting starts{valid}"),
        _o("--anneal-steps", help="steps over which the strength anneals to its target{valid}"),
        _o("--burnin-epochs", help="burn-in in epochs (when --burnin-steps is not given{valid})"),
        _o("--anneal-epochs", help="annealing in epochs (when --anneal-steps is not given{valid})"),
        _o("--anneal-start-factor", help="strength factor at the end of the burn-in "
           "(temperature x f, delta / f) (default {default}{valid})"),
        _o("--t1", help="bi-tempered: temperature of the logarithm (default 0.8{valid})"),
        _o("--t2", help="bi-tempered: temperature of the exponential (default 1.2{valid})"),
        _o("--loss-alpha", help="nce-rce: weight of NCE (default 1, CIFAR-100 10); sce: weight of CE (default 0.1, "
           "CIFAR-100 6{valid})"),
        _o("--loss-beta",
           help="nce-rce and sce: weight of the reverse cross-entropy (default 1, CIFAR-100 0.1{valid})"),
        _o("--q", help="gce: exponent q of the generalized cross-entropy (default 0.7{valid})"),
    )),
    ("model and optimiser", (
        _o("--model", choices=MODELS,
           help="network (default: preact-resnet18 for CIFAR, mlp for two-moons, cnn otherwise)"),
        _o("--width", help="cnn: channels of the first block; mlp: hidden units per layer{valid}"),
        _o("--epochs", help="epochs, or evaluation periods with --eval-every (default 30; 50 periods of 1000 "
           "steps with --protocol paper{valid})"),
        _o("--eval-every", help="evaluate, record and checkpoint every this many steps instead of every epoch; "
           "an epoch is then such a period and the examples form one continuous stream of "
           "shuffled passes (default: per epoch; 1000 with --protocol paper{valid})"),
        _o("--batch-size", help="mini-batch size (default {default}{valid})"),
        _o("--eval-batch-size", help="evaluation batch size (default {default}{valid})"),
        _o("--lr", help="learning rate (default per model{valid})"),
        _o("--momentum", help="SGD momentum (default {default}{valid})"),
        _on_off("--nesterov", "Nesterov momentum (default on)"),
        _o("--weight-decay", help="weight decay (default 5e-4; 0 with --protocol paper{valid})"),
        _o("--lr-milestones", type=_milestones, help="epochs at which the lr is multiplied by "
           "--lr-decay, e.g. 30,80,110, or none (default per model; strictly increasing, below --epochs)"),
        _o("--lr-milestone-steps", type=_steps,
           help="optimisation steps after which the lr is multiplied by --lr-decay (steps 0..m keep "
           "the higher rate, as tf.keras PiecewiseConstantDecay), e.g. 11718,31250,42968 (default: "
           "none; with --protocol paper (30, 80, 110) x 50000 // --batch-size; not with "
           "--lr-milestones)"),
        _o("--lr-decay", help="lr factor at each milestone (default {default}{valid})"),
        _o("--warmup-epochs", help="linear lr warm-up (default 1 for the cnn, 0 otherwise; at most --epochs{valid})"),
    )),
    ("run control", (
        _o("--seed", help="seed of every random choice (default {default}{valid}: 32 bits)"),
        _o("--out", help="output folder (default runs/<dataset>-<method>-s<seed>; not empty)"),
        _flag("--resume", help="continue from OUT/checkpoint.pt (same options required)"),
        *((_flag("--overwrite", help="clear OUT first when it holds a previous run"),) if "overwrite" in _DEFAULTS
          else ()),
        _o("--framework", choices=FRAMEWORKS, help="training framework (default {default})"),
        _o("--device", help="cpu, cuda or cuda:N (default cpu; cuda needs a GPU the framework can use)"),
        _o("--max-steps", help="stop after this many optimisation steps (smoke tests{valid})"),
        _o("--stop-after-epochs",
           help="stop after this many epochs, leaving a resumable run (to simulate an interruption{valid})"),
        _o("--threads", help="torch CPU threads (fixed for reproducibility; torch only{valid})"),
        _flag("--quiet", help="no progress bar and no per-epoch lines"),
        _flag("--no-plots", dest="plots", action="store_false", help="do not write PNG plots"),
        _flag("--no-save-weights", dest="save_weights", action="store_false",
              help="do not write the per-example weights of each epoch"),
        _o("--clean-model-epochs", help="epochs of the clean model that scores examples for "
           "instance-dependent noise (default {default}{valid})"),
        _o("--cache-dir", help="cache of those scores (default ~/.cache/divweights_train; instance noise only)"),
        _o("--print-config", action="store_true", help="print the resolved configuration and exit"),
    )),
)  # fmt: skip


def _numeric_type(dest: str):
    """The argparse type of a numeric field: int or float by its range, or a number-or-word for the strengths."""
    if dest in STRENGTH_WORDS:
        return _number_or(*STRENGTH_WORDS[dest])
    return int if NUMERIC_OPTIONS[dest].integer else float


def _help(option: _Option, dest: str) -> str:
    """The option's help with ``{default}`` and ``{valid}`` filled in for its field ``dest``."""
    text = option.kwargs["help"]
    fill = {}
    if "{default}" in text:
        fill["default"] = _d(dest)
    if "{valid}" in text:
        fill["valid"] = _v(dest)
    return text.format(**fill) if fill else text


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
    for title, options in OPTION_GROUPS:
        group = p.add_argument_group(title)
        exclusive = None
        for option in options:
            target = group
            if option.exclusive:
                exclusive = exclusive or group.add_mutually_exclusive_group()
                target = exclusive
            dest = option.kwargs.get("dest") or option.flags[0].lstrip("-").replace("-", "_")
            kwargs = dict(option.kwargs, help=_help(option, dest))
            if dest in NUMERIC_OPTIONS and "type" not in kwargs:
                kwargs["type"] = _numeric_type(dest)
            target.add_argument(*option.flags, **kwargs)
    return p
