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
with the same command plus ``--resume``. The options themselves are one table,
:data:`divweights_train.cli_options.OPTION_GROUPS`, from which
:func:`build_parser` builds the parser.

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

from .cli_options import PROG, build_parser
from .config import FRAMEWORKS, OptionError, TrainConfig, unused_options
from .errors import DiskFullError

__all__ = [
    "build_parser",
    "check_device",
    "config_from_args",
    "get_trainer",
    "main",
    "option_flag",
]


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
            why = "is built without CUDA" if torch.version.cuda is None else "sees no GPU"
            raise OptionError(
                "device",
                f"{device} was requested but torch {torch.__version__} {why}; use --device cpu",
            )
        count = torch.cuda.device_count()
    if index >= count:
        raise OptionError(
            "device",
            f"{device} was requested but there are only {count} GPU(s) (cuda:0 to cuda:{count - 1})",
        )


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``divweights-train``; returns the exit status (0 done, 1 run failed, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a malformed option (2, already reported on one line)
        return exc.code if isinstance(exc.code, int) else 2
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    try:
        config = config_from_args(args)
        resolved = config.resolved()
        unused = unused_options(config, given, option_name=lambda f: option_flag(f, parser))
        if unused:
            field, reason = unused[0]
            more = f" (also: {', '.join(option_flag(f, parser) for f, _ in unused[1:])})" if len(unused) > 1 else ""
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
