"""What a training run shows: a bar on a terminal, plain lines with the time left elsewhere, nothing when quiet."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("torch")

from divweights_train.config import TrainConfig
from divweights_train.progress import SYNC_EVERY, RunProgress
from divweights_train.trainer_torch import train

OPTIONS = {
    "dataset": "two-moons",
    "noise": "symmetric:0.3",
    "threads": 1,
    "subset": 200,
    "batch_size": 32,
    "epochs": 3,
    "method": "ciw",
    "plots": False,
    "save_weights": False,
}


def test_plain_lines_with_time_left_when_stdout_is_not_a_terminal(tmp_path, capsys):
    train(TrainConfig(out=str(tmp_path / "r"), **OPTIONS))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(" train " in line and " test " in line for line in lines)
    assert all(" eta " in line for line in lines[:-1]) and " eta " not in lines[-1]
    assert "\r" not in out  # no bar


def test_quiet_shows_nothing(tmp_path, capsys):
    train(TrainConfig(out=str(tmp_path / "r"), quiet=True, **OPTIONS))
    assert capsys.readouterr() == ("", "")


def test_bar_shows_run_epoch_running_accuracy_and_time_left():
    stream = io.StringIO()
    p = RunProgress(label="two-moons/ciw s0", epochs=3, show=True, stream=stream)
    p.begin(start_step=0, total_steps=3 * SYNC_EVERY)
    p.start_epoch(0)
    for _ in range(SYNC_EVERY):
        p.advance(lambda: (0.25, 0.75))
    p.end_epoch("epoch   1/3  loss 0.2500", epoch=1, seconds=2.0)
    p.close()
    text = stream.getvalue()
    assert "two-moons/ciw s0" in text and "epoch 1/3" in text and "acc 0.750" in text
    assert "<" in text  # tqdm's remaining-time estimate, as in "[00:01<00:02, ...]"
    assert "epoch   1/3  loss 0.2500  eta 4s" in text


def test_train_draws_the_bar_when_asked(tmp_path, capsys):
    train(TrainConfig(out=str(tmp_path / "r"), **{**OPTIONS, "epochs": 1}), progress=True)
    out = capsys.readouterr().out
    assert "two-moons/ciw s0" in out and "step" in out


def test_bar_reads_the_device_only_every_sync_every_steps():
    calls = []
    p = RunProgress(label="r", epochs=1, show=True, stream=io.StringIO())
    p.begin(start_step=0, total_steps=2 * SYNC_EVERY + 1)
    p.start_epoch(0)
    for _ in range(2 * SYNC_EVERY + 1):
        p.advance(lambda: calls.append(1) or (0.0, 0.0))
    assert len(calls) == 2
    hidden = RunProgress(label="r", epochs=1, show=False, stream=io.StringIO())
    hidden.begin(start_step=0, total_steps=10)
    hidden.advance(lambda: pytest.fail("read without a bar"))
