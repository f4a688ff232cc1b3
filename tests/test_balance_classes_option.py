"""The training program's ``--balance-classes``: its automatic default, its checks, and old records."""

from __future__ import annotations

import pytest
from divweights_train import cli
from divweights_train.config import ADDED_FIELDS, TrainConfig, unused_options


def _resolved(**kwargs) -> TrainConfig:
    return TrainConfig(dataset="two-moons", **kwargs).resolved()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"method": "cicw-m"}, True),
        ({"method": "cicw-m", "mixup_rule": "published"}, False),
        ({"method": "cicw-m", "class_gamma": 0.0}, False),
        ({"method": "cicw-m", "class_divergence": "none"}, False),
        ({"method": "cicw"}, False),
        ({"method": "cicw-m", "mixup_mode": "plain"}, True),
        ({"method": "ciw-m"}, False),
        ({"method": "ce"}, False),
        ({"method": "cicw-m", "balance_classes": False}, False),
        ({"method": "cicw", "balance_classes": True}, True),
    ],
)
def test_on_for_class_reweighting_with_mixup_under_the_divweights_rule(kwargs, expected):
    assert _resolved(**kwargs).balance_classes is expected


def test_a_config_saved_before_the_option_existed_means_no_balance():
    saved = _resolved(method="cicw-m").to_dict()
    del saved["balance_classes"]
    old = TrainConfig.from_dict(saved).resolved()
    assert ADDED_FIELDS["balance_classes"] is False
    assert old.balance_classes is False
    assert old.identity_diff(_resolved(method="cicw-m")) == ["balance_classes"]
    # an explicit null in a saved configuration is the automatic value, not the old behaviour
    explicit = _resolved(method="cicw-m").to_dict() | {"balance_classes": None}
    assert TrainConfig.from_dict(explicit).resolved().balance_classes is True


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "ce", "balance_classes": True}, "no class weights"),
        ({"method": "cicw-m", "class_gamma": 0.0, "balance_classes": True}, "no class weights to balance"),
    ],
)
def test_the_option_without_class_weights_is_refused(kwargs, match):
    cfg = _resolved(**kwargs)
    reasons = dict(unused_options(cfg, ["balance_classes"]))
    assert match in reasons["balance_classes"]


def test_a_non_boolean_value_is_refused():
    with pytest.raises(ValueError, match="balance_classes"):
        TrainConfig(dataset="two-moons", method="cicw-m", balance_classes="yes")


def test_the_cli_refuses_the_flag_where_it_does_nothing(tmp_path, capsys):
    code = cli.main(["--dataset", "two-moons", "--method", "ce", "--balance-classes", "--out", str(tmp_path / "x")])
    assert code != 0
    err = capsys.readouterr().err
    assert "--balance-classes/--no-balance-classes: has no effect with --method ce" in err
