"""Options that have no effect: :func:`unused_options` and the reason for each.

``divweights-train`` refuses an option that would change nothing with the
chosen method (``--method ce --class-divergence tv``).  The method tables
come from :mod:`divweights_train.config` when a reason is looked up.
Re-exported by :mod:`divweights_train.config`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .config_ranges import _class_divergence_key

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["unused_options"]


def _methods_with(attr: str) -> str:
    from .config import _METHOD_SPECS, METHODS

    return ", ".join(m for m in METHODS if getattr(_METHOD_SPECS[m], attr))


_INSTANCE_OPTIONS = ("instance_divergence", "delta", "temperature", "lam")
_CLASS_OPTIONS = ("class_divergence", "class_gamma", "balance_classes")
_BURNIN_OPTIONS = ("burnin_steps", "burnin_epochs")
_ANNEAL_OPTIONS = ("anneal_steps", "anneal_epochs", "anneal_start_factor")
_MIXUP_OPTIONS = ("mixup_alpha", "mixup_power", "mixup_recompute")
#: Datasets whose inputs are not images (two-moons always; digits when flattened for the MLP).
_GENERATED_DATASETS = {"two-moons": "is generated", "digits": "ships with scikit-learn"}


def _unused_reason(cfg: TrainConfig, name: str, value: Any, opt: Callable[[str], str]) -> str | None:
    """Why option ``name`` (given as ``value``) changes nothing in a run of ``cfg`` (resolved), or None.

    ``opt`` turns a field name into the name shown to the user (a flag for the CLI).
    """
    from .config import _LOSS_OPTIONS, _METHOD_SPECS, METHODS, method_spec

    spec = method_spec(cfg.method)
    mode = cfg.mixup_mode or spec.mixup
    method = f"{opt('method')} {cfg.method}"
    mode_from = f"{cfg.method}'s default or {opt('mixup_mode')}"
    if name in _INSTANCE_OPTIONS and not spec.instance:
        return f"with {method}, which has no instance weights (methods with them: {_methods_with('instance')})"
    if name in _CLASS_OPTIONS and not spec.classes:
        return f"with {method}, which has no class weights (methods with them: {_methods_with('classes')})"
    if name == "class_divergence" and cfg.class_gamma == 0:
        return f"with {opt('class_gamma')} 0, which switches class reweighting off"
    if name == "class_gamma" and _class_divergence_key(cfg.class_divergence) == "none":
        return f"with {opt('class_divergence')} none, which switches class reweighting off"
    class_off = cfg.class_gamma == 0 or _class_divergence_key(cfg.class_divergence) == "none"
    if name == "balance_classes" and value and class_off:
        return "without class reweighting (its radius is 0 or its divergence none): no class weights to balance"
    warms_up = spec.loss == "dynamic-mixup"
    if name in _ANNEAL_OPTIONS and warms_up:
        return f"with {method}: its burn-in is a plain-mixup warm-up; it has no strength to anneal"
    if name in _BURNIN_OPTIONS + _ANNEAL_OPTIONS and not (spec.instance or spec.classes) and not warms_up:
        return f"with {method}, which does not reweight (nothing to burn in or anneal)"
    if name in _ANNEAL_OPTIONS and not spec.instance:
        return (
            f"with {method}: annealing scales the instance strength and {cfg.method} has none (the class "
            "radius is not annealed, only switched on after the burn-in)"
        )
    if name == "burnin_epochs" and cfg.burnin_steps is not None:
        return f"together with {opt('burnin_steps')}, which takes precedence"
    if name == "anneal_epochs" and cfg.anneal_steps is not None:
        return f"together with {opt('anneal_steps')}, which takes precedence"
    if name == "anneal_start_factor" and (
        cfg.anneal_steps == 0 or (cfg.anneal_steps is None and cfg.anneal_epochs == 0)
    ):
        return (
            f"without annealing (its length is 0, the default of {cfg.method} with an adaptive radius; give "
            f"{opt('anneal_epochs')} to anneal): the strength starts at its target"
        )
    if name in _MIXUP_OPTIONS and mode is None:
        mixers = ", ".join(m for m in METHODS if _METHOD_SPECS[m].mixup)
        return f"with {method}, which does no mixup (mixup methods: {mixers})"
    published = cfg.mixup_rule == "published"
    if name == "mixup_rule" and mode in (None, "plain"):
        return f"with {method}, which has no weighted mixup (the rules differ only there)"
    if name == "mixup_power" and (mode == "plain" or (mode in ("weight", "label_smoothing") and not published)):
        return f"with mixup mode {mode} ({mode_from}): partners are a random permutation, not sampled by weight"
    if name == "mixup_recompute" and mode == "plain":
        return (
            f"with mixup mode plain ({mode_from}): it has no clean-pass weights to reuse; the mixed batch "
            "always gets the method's loss"
        )
    if (
        name == "augment"
        and value != "none"
        and (cfg.dataset == "two-moons" or (cfg.dataset == "digits" and cfg.model == "mlp"))
    ):
        return f"with {opt('dataset')} {cfg.dataset} and {opt('model')} {cfg.model}: the inputs are not images"
    if name == "data_dir" and cfg.dataset in _GENERATED_DATASETS:
        return f"with {opt('dataset')} {cfg.dataset}, which {_GENERATED_DATASETS[cfg.dataset]} (no files are read)"
    if name in ("clean_model_epochs", "cache_dir"):
        from .noise import parse_noise_spec

        if parse_noise_spec(cfg.noise).kind != "instance":
            return (
                f"with {opt('noise')} {cfg.noise}: only instance-dependent noise (instance:R) trains a clean "
                "model to score the examples"
            )
    for options in _LOSS_OPTIONS.values():
        if name in options and name not in _LOSS_OPTIONS.get(cfg.method, ()):
            users = ", ".join(m for m, o in _LOSS_OPTIONS.items() if name in o)
            return f"with {method}: it is an option of the robust loss of {users}"
    if name == "exact_noise":
        from .noise import parse_noise_spec

        if parse_noise_spec(cfg.noise).kind == "none":
            return f"with {opt('noise')} none (no label is flipped)"
    if name == "crop_pad" and (
        cfg.augment not in ("crop", "crop-flip")
        or cfg.dataset == "two-moons"
        or (cfg.dataset == "digits" and cfg.model == "mlp")
    ):
        return f"without cropping ({opt('augment')} {cfg.augment}, {opt('dataset')} {cfg.dataset})"
    if name == "lr_decay" and not cfg.lr_milestones and not cfg.lr_milestone_steps:
        return f"without {opt('lr_milestones')} below {opt('epochs')} (the learning rate is never decayed)"
    if name == "nesterov" and value and cfg.momentum == 0:
        return f"with {opt('momentum')} 0 (Nesterov momentum needs momentum)"
    if name == "threads" and cfg.framework == "jax":
        return (
            f"with {opt('framework')} jax: XLA fixes its CPU thread pool when JAX starts (set XLA_FLAGS "
            "before launching instead)"
        )
    if name == "stop_after_epochs" and value >= cfg.epochs:
        return f"with {opt('epochs')} {cfg.epochs}: the run ends before that anyway"
    return None


def unused_options(
    config: TrainConfig,
    given: Mapping[str, Any] | Iterable[str],
    *,
    option_name: Callable[[str], str] | None = None,
) -> list[tuple[str, str]]:
    """The options in ``given`` that would have no effect on a run of ``config``, with the reason.

    ``divweights-train`` refuses such options (``--method ce --class-divergence
    tv`` would otherwise train plain cross-entropy without a word). The config
    alone cannot tell which options a user set on purpose (:meth:`TrainConfig.resolved`
    fills every automatic field), so the caller names them.

    Parameters
    ----------
    config : TrainConfig
        The run's options.
    given : mapping or iterable of str
        The field names the user set explicitly (a mapping also gives their values;
        otherwise the config's values are used).
    option_name : callable, optional
        Turns a field name into the name used in the reasons (default: the
        field name; the CLI passes its flags).

    Returns
    -------
    list of (str, str)
        ``(field, reason)`` pairs, in the order of ``given``; empty when every option counts.

    Examples
    --------
    >>> from divweights_train.config import TrainConfig
    >>> cfg = TrainConfig(dataset="two-moons", method="ce", class_divergence="tv")
    >>> unused_options(cfg, ["method", "class_divergence"])
    [('class_divergence', 'with method ce, which has no class weights (methods with them: bootstrap, cicw, cicw-m)')]
    >>> unused_options(TrainConfig(method="cicw-m", delta=0.2), ["delta"])
    []
    """
    cfg = config.resolved()
    values = dict(given) if isinstance(given, Mapping) else {n: getattr(config, n) for n in given}
    opt = option_name or (lambda field: field)
    out = []
    for name, value in values.items():
        reason = _unused_reason(cfg, name, value, opt)
        if reason is not None:
            out.append((name, reason))
    return out
