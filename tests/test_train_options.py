"""Option checks of the training program's :class:`TrainConfig` (no framework needed).

Every numeric option is checked for type, finiteness and range when the config
is built; options that change nothing for the chosen method are found by
:func:`unused_options` (the CLI refuses them).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from divweights_train.config import (
    ALPHA_LIMIT,
    METHODS,
    NUMERIC_OPTIONS,
    SEED_RANGE,
    OptionError,
    OptionRange,
    TrainConfig,
    schedule_steps,
    unused_options,
)

_FLOAT_OPTIONS = [n for n, r in NUMERIC_OPTIONS.items() if not r.integer]
_INT_OPTIONS = [n for n, r in NUMERIC_OPTIONS.items() if r.integer]


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(dataset="two-moons", noise="symmetric:0.3", **kw)


# --------------------------------------------------------------------------- #
# Numbers: finiteness, type and range.
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", _FLOAT_OPTIONS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_float_option_rejects_non_finite_values(name, value):
    with pytest.raises(OptionError, match="finite") as info:
        _cfg(**{name: value})
    assert info.value.field == name


@pytest.mark.parametrize("name", list(NUMERIC_OPTIONS))
def test_every_numeric_option_rejects_values_just_outside_its_range(name):
    rng = NUMERIC_OPTIONS[name]
    step = 1 if rng.integer else 1e-9 * max(1.0, abs(rng.low))
    below = rng.low if rng.low_open else rng.low - step
    with pytest.raises(OptionError) as info:
        _cfg(**{name: below})
    assert info.value.field == name
    if math.isfinite(rng.high):
        above = rng.high if rng.high_open else rng.high + (1 if rng.integer else 1e-9 * rng.high)
        with pytest.raises(OptionError):
            _cfg(**{name: above})


@pytest.mark.parametrize("name", list(NUMERIC_OPTIONS))
def test_every_numeric_option_accepts_its_closed_bounds(name):
    rng = NUMERIC_OPTIONS[name]
    extra = {
        "method": "ciw",
        "epochs": int(NUMERIC_OPTIONS["epochs"].high),
    }  # warm-up and stop are <= epochs
    extra.pop(name, None)
    for bound, is_open in ((rng.low, rng.low_open), (rng.high, rng.high_open)):
        if not is_open and math.isfinite(bound):
            _cfg(**{name: int(bound) if rng.integer else float(bound)}, **extra)


@pytest.mark.parametrize("name", _INT_OPTIONS)
def test_integer_options_reject_fractions_and_booleans(name):
    low = int(NUMERIC_OPTIONS[name].low)
    with pytest.raises(OptionError, match="integer"):
        _cfg(**{name: low + 0.5})
    with pytest.raises(OptionError, match="integer"):
        _cfg(**{name: True})


def test_weight_decay_nan_is_rejected():
    # issue 14 item 6: `nan < 0` is False, so the old check let NaN through
    with pytest.raises(OptionError, match=r"weight_decay must be a finite number in \[0, 1\]; got nan"):
        _cfg(weight_decay=math.nan)


def test_infinite_warmup_is_rejected_and_warmup_is_bounded_by_the_run():
    # issue 14 item 6: warmup inf made every step's lr 0 while the log showed the target lr
    with pytest.raises(OptionError, match="warmup_epochs"):
        _cfg(warmup_epochs=math.inf)
    with pytest.raises(OptionError, match="never reaches"):
        _cfg(epochs=3, warmup_epochs=4.0)
    _cfg(epochs=3, warmup_epochs=3.0)


def test_a_warmup_shorter_than_one_step_never_raises_the_learning_rate():
    # (step + 1) / warm with warm < 1 multiplied the lr by up to 1/warm on the first step
    cfg = _cfg(lr=0.1, lr_milestones=(), warmup_epochs=0.01)
    assert cfg.lr_at(0, 0, 10) == pytest.approx(0.1)
    assert max(cfg.lr_at(0, s, 10) for s in range(10)) <= 0.1


@pytest.mark.parametrize("seed", [SEED_RANGE[1] + 1, 2**64, -1])
def test_seeds_outside_32_bits_are_rejected(seed):
    # issue 14 item 8: derive_seed keeps 32 bits, so 2**32 ran exactly like 0 and -1 like 2**32 - 1
    with pytest.raises(OptionError, match=r"seed must be an integer in \[0, 4294967295\]"):
        _cfg(seed=seed)


def test_seed_range_is_what_the_seed_derivation_distinguishes():
    prepare = pytest.importorskip("divweights_train.prepare")
    lo, hi = SEED_RANGE
    assert prepare.derive_seed(hi + 1, "order") == prepare.derive_seed(lo, "order")  # why larger seeds alias
    assert len({prepare.derive_seed(s, "order") for s in (lo, lo + 1, hi - 1, hi)}) == 4
    _cfg(seed=hi)


@pytest.mark.parametrize("spec", ["alpha:1e308", f"alpha:{-2 * ALPHA_LIMIT}", "alpha:nan", "alpha:inf"])
def test_alpha_divergences_outside_the_supported_range_are_rejected(spec):
    with pytest.raises(OptionError) as info:
        _cfg(method="ciw", instance_divergence=spec)
    assert info.value.field == "instance_divergence"


def test_alpha_at_the_limit_is_accepted():
    _cfg(method="ciw", instance_divergence=f"alpha:{ALPHA_LIMIT}")
    _cfg(method="ciw", instance_divergence=f"alpha:{-ALPHA_LIMIT}")


@pytest.mark.parametrize("name", ["out", "data_dir", "cache_dir"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_paths_are_rejected(name, value):
    # issue 14 item 17: --out "" silently wrote into the default folder
    with pytest.raises(OptionError, match="must not be empty") as info:
        _cfg(**{name: value})
    assert info.value.field == name


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CUDA", ""])
def test_malformed_devices_are_rejected(device):
    with pytest.raises(OptionError, match="'cpu', 'cuda' or 'cuda:N'"):
        _cfg(device=device)


def test_milestones_must_increase_strictly_and_be_reached():
    with pytest.raises(OptionError, match="strictly increasing"):
        _cfg(epochs=10, lr_milestones=(3, 3))
    with pytest.raises(OptionError, match="never reached"):
        _cfg(epochs=10, lr_milestones=(3, 10))
    _cfg(epochs=10, lr_milestones=(3, 9))


def test_schedule_steps_stay_in_32_bits():
    cfg = _cfg(method="ciw", burnin_epochs=1e6, anneal_epochs=1e6)
    assert schedule_steps(cfg, 10**6) == (2**31 - 1, 2**31 - 1)


# --------------------------------------------------------------------------- #
# Divergences that cannot work with the method, form or radius.
# --------------------------------------------------------------------------- #
def test_instance_methods_need_an_instance_divergence():
    with pytest.raises(OptionError, match="cannot be 'none'"):
        _cfg(method="ciw", instance_divergence="none")


@pytest.mark.parametrize("div", ["tv", "l2"])
def test_temperature_needs_a_divergence_that_has_it(div):
    with pytest.raises(OptionError, match="temperature is not available with instance divergence"):
        _cfg(method="ciw", instance_divergence=div, temperature=1.0)
    _cfg(method="ciw", instance_divergence=div, delta=0.3)


@pytest.mark.parametrize("div", ["kl", "alpha:1"])
def test_kl_class_weights_are_refused_with_integer_labels(div):
    # the core raises for KL class weights on integer labels: before this, after the burn-in
    with pytest.raises(OptionError, match="soft"):
        _cfg(method="cicw", class_divergence=div)


@pytest.mark.parametrize("div", ["chi2", "alpha:0.5"])
def test_class_divergences_without_class_weights_are_refused(div):
    with pytest.raises(OptionError, match="has no class weights"):
        _cfg(method="cicw", class_divergence=div)


def test_alpha_zero_class_divergence_is_reverse_kl():
    _cfg(method="cicw", class_divergence="alpha:0")


@pytest.mark.parametrize("div, hi", [("tv", 1.0), ("l2", 2.0)])
def test_class_radius_beyond_the_largest_distance_is_refused(div, hi):
    # issue 15 item 6: TV gamma 1.5 was accepted and acted like 1
    with pytest.raises(OptionError, match=f"at most {hi:g}"):
        _cfg(method="cicw", class_divergence=div, class_gamma=hi * 1.5)
    _cfg(method="cicw", class_divergence=div, class_gamma=hi)


def test_bootstraps_default_tv_bounds_its_gamma():
    with pytest.raises(OptionError, match="tv"):
        _cfg(method="bootstrap", class_gamma=1.5)


def test_option_error_is_a_value_error_with_the_field():
    err = OptionError("lr", "must be positive")
    assert isinstance(err, ValueError) and err.field == "lr" and str(err) == "lr must be positive"


def test_option_range_describes_itself():
    assert OptionRange(False, 0, 1, high_open=True).describe() == "a finite number in [0, 1)"
    assert OptionRange(True, 0, 10).short() == "integer [0, 10]"
    assert OptionRange(False, 0, low_open=True).short() == "(0, inf)"


def test_every_method_and_dataset_resolves_to_a_valid_config():
    for method in METHODS:
        for dataset in ("two-moons", "fashion-mnist", "cifar10", "cifar100", "digits"):
            cfg = TrainConfig(dataset=dataset, method=method, noise="symmetric:0.4").resolved()
            assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- #
# Options that change nothing (issue 15 item 6): every method/option pair.
# --------------------------------------------------------------------------- #
_INSTANCE = {"ciw", "cicw", "ciw-m", "cicw-m"}
_CLASSES = {"bootstrap", "cicw", "cicw-m"}
#: option (field, value) -> the methods for which it changes the run. Written from the trainers:
#: instance strength and divergence need instance weights; the class radius is switched on after
#: the burn-in but never annealed; mixup ratios are Beta draws in the plain, sample and
#: label_smoothing modes (mixup, ciw-m) and w_i / (w_i + w_j) in sample_weight (cicw-m); partners
#: are sampled by weight only in sample and sample_weight (cicw-m); plain mixup has no weights to
#: recompute.
EFFECTIVE_FOR = {
    ("instance_divergence", "reverse-kl"): _INSTANCE,
    ("delta", 0.5): _INSTANCE,
    ("temperature", 1.0): _INSTANCE,
    ("lam", 1.0): _INSTANCE,
    ("class_divergence", "tv"): _CLASSES,
    ("class_gamma", 0.2): _CLASSES,
    ("burnin_steps", 3): _INSTANCE | _CLASSES | {"dynamic-mixup"},
    ("burnin_epochs", 1.0): _INSTANCE | _CLASSES | {"dynamic-mixup"},
    ("anneal_steps", 3): _INSTANCE,
    ("anneal_epochs", 1.0): _INSTANCE,
    ("anneal_start_factor", 5.0): _INSTANCE - {"ciw"},  # ciw's adaptive default radius is not annealed
    ("mixup_alpha", 0.5): {"mixup", "ciw-m", "cicw-m", "dynamic-mixup"},  # cicw-m: the weighted Beta ratio
    ("mixup_power", 2.0): {"cicw-m"},
    ("mixup_recompute", False): {"ciw-m", "cicw-m"},
    ("mixup_recompute", True): {"ciw-m", "cicw-m"},
    # the published mixup rule: weighted mixup only; it also uses w**power for the ratio and the
    # CIW-M smoothing, and Beta(alpha, alpha) ratios in the burn-in of every weighted mode
    ("mixup_rule", "published"): {"ciw-m", "cicw-m"},
    # the robust losses' own options
    ("t1", 0.5): {"bi-tempered"},
    ("t2", 1.5): {"bi-tempered"},
    ("loss_alpha", 2.0): {"nce-rce", "sce"},
    ("loss_beta", 2.0): {"nce-rce", "sce"},
    ("q", 0.5): {"gce"},
    # options of every method
    ("exact_noise", False): set(METHODS),
    ("eval_every", 5): set(METHODS),
    ("lr_milestone_steps", (3,)): set(METHODS),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("option", list(EFFECTIVE_FOR), ids=lambda o: f"{o[0]}={o[1]}")
def test_method_option_pairs_are_refused_exactly_when_the_option_has_no_effect(method, option):
    name, value = option
    cfg = _cfg(method=method, **{name: value})
    unused = dict(unused_options(cfg, {name: value}))
    if method in EFFECTIVE_FOR[option]:
        assert unused == {}
    else:
        assert list(unused) == [name]
        assert method in unused[name]


#: Options without effect beyond the method's: the options, the one refused (None: none) and words of the reason.
# fmt: off
BEYOND_THE_METHOD = [
    ({"method": "cicw", "class_gamma": 0.0, "class_divergence": "tv"}, "class_divergence", "class_gamma 0"),
    ({"method": "cicw", "class_divergence": "none", "class_gamma": 0.2}, "class_gamma", "'none'|none"),
    ({"method": "ciw", "burnin_steps": 4, "burnin_epochs": 1.0}, "burnin_epochs", "precedence"),
    ({"method": "ciw", "anneal_steps": 4, "anneal_epochs": 1.0}, "anneal_epochs", "precedence"),
    ({"method": "ciw", "anneal_steps": 0, "anneal_start_factor": 5.0}, "anneal_start_factor", "length is 0"),
    ({"method": "ciw", "anneal_epochs": 0.0, "anneal_start_factor": 5.0}, "anneal_start_factor", "length is 0"),
    ({"method": "cicw-m", "mixup_mode": "plain", "mixup_recompute": True}, "mixup_recompute", "plain"),
    ({"method": "cicw-m", "mixup_mode": "sample", "mixup_power": 2.0}, None, None),
    ({"method": "ciw-m", "mixup_mode": "weight", "mixup_alpha": 0.3}, None, None),  # the weighted Beta ratio
    ({"augment": "crop"}, "augment", "not images"),
    ({"augment": "none"}, None, None),
    ({"data_dir": "somewhere"}, "data_dir", "generated"),
    ({"clean_model_epochs": 3}, "clean_model_epochs", "instance"),
    ({"cache_dir": "c"}, "cache_dir", "instance"),
    ({"noise": "instance:0.3", "clean_model_epochs": 3}, None, None),
    ({"epochs": 1, "lr_decay": 0.5}, "lr_decay", "never decayed"),
    ({"lr_milestones": (), "lr_decay": 0.5}, "lr_decay", "never decayed"),
    ({"lr_milestones": (5,), "lr_decay": 0.5}, None, None),
    ({"momentum": 0.0, "nesterov": True}, "nesterov", "momentum 0"),
    ({"momentum": 0.0, "nesterov": False}, None, None),
    ({"framework": "jax", "threads": 2}, "threads", "XLA"),
    ({"threads": 2}, None, None),
    ({"epochs": 3, "stop_after_epochs": 3}, "stop_after_epochs", "ends before"),
    ({"epochs": 3, "stop_after_epochs": 2}, None, None),
]
# fmt: on


@pytest.mark.parametrize("options, unused_name, reason", BEYOND_THE_METHOD)
def test_options_without_effect_beyond_the_method(options, unused_name, reason):
    noise = options.pop("noise", "symmetric:0.3")
    cfg = TrainConfig(dataset="two-moons", noise=noise, **options)
    unused = dict(unused_options(cfg, options))
    if unused_name is None:
        assert unused == {}
    else:
        assert list(unused) == [unused_name]
        assert any(r in unused[unused_name] for r in reason.split("|"))


def test_digits_with_the_cnn_augments_but_not_with_the_mlp():
    assert unused_options(TrainConfig(dataset="digits", augment="crop"), ["augment"]) == []
    assert [n for n, _ in unused_options(TrainConfig(dataset="digits", model="mlp", augment="crop"), ["augment"])] == [
        "augment"
    ]


def test_unused_options_names_options_as_the_caller_spells_them():
    cfg = _cfg(method="ce", class_gamma=0.2)
    ((name, reason),) = unused_options(cfg, ["class_gamma"], option_name=lambda f: "--" + f.replace("_", "-"))
    assert name == "class_gamma" and "--method ce" in reason


# --------------------------------------------------------------------------- #
# Issue 13: the adaptive radius is the default; --noise changes no hyperparameter.
# --------------------------------------------------------------------------- #
def test_ciw_defaults_to_the_adaptive_radius_without_burn_in():
    cfg = TrainConfig(dataset="two-moons", method="ciw").resolved()
    assert cfg.delta == "auto"
    assert cfg.burnin_epochs == 0.0 and cfg.anneal_epochs == 0.0


@pytest.mark.parametrize("method", ["cicw", "cicw-m"])
def test_adaptive_class_radius_is_available_by_name(method):
    cfg = TrainConfig(dataset="two-moons", method=method, delta="auto", class_gamma="auto").resolved()
    assert (cfg.delta, cfg.class_gamma, cfg.burnin_epochs) == ("auto", "auto", 0.0)


@pytest.mark.parametrize("method", ["ciw"])
def test_noise_spec_changes_no_hyperparameter(method):
    a = TrainConfig(dataset="two-moons", method=method, noise="none").resolved()
    b = TrainConfig(dataset="two-moons", method=method, noise="symmetric:0.6").resolved()
    assert dataclasses.replace(a, noise=b.noise) == b


def test_delta_noise_is_the_previous_rule():
    from divweights_train.config import PREVIOUS_DEFAULTS, auto_delta

    cfg = TrainConfig(dataset="two-moons", method="ciw", noise="symmetric:0.4", **PREVIOUS_DEFAULTS["ciw"])
    cfg = cfg.resolved()
    assert cfg.delta == pytest.approx(auto_delta("symmetric:0.4", "two-moons")) == pytest.approx(-math.log(0.6))
    assert cfg.burnin_epochs > 0  # a fixed radius keeps the burn-in and annealing


@pytest.mark.parametrize("flag, value", [("--delta", "sometimes"), ("--gamma", "noise")])
def test_strength_words_outside_their_list_are_usage_errors(flag, value, capsys):
    from divweights_train import cli

    assert cli.main(["--dataset", "two-moons", "--method", "cicw", flag, value, "--print-config"]) == 2
    assert "must be a number or one of" in capsys.readouterr().err
