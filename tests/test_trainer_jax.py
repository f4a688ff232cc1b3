"""Tests of the JAX trainer (``divweights-train --framework jax``), kept small and fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from divweights_train import cli, trainer_jax
from divweights_train.datasets import DEFAULT_FASHION_MNIST_DIR
from divweights_train.metrics import EpochRecord, read_metrics
from divweights_train.models_jax import build_model, count_params

_MOONS = "--framework jax --dataset two-moons --noise symmetric:0.3 --quiet"
MOONS = _MOONS.split()
# cicw-m exercises the most of the step: clean pass, class and instance weights, sampled mixup
# (a temperature compiles faster than the default KL radius, which needs a root search).
_REF = "--subset 400 --batch-size 32 --epochs 3 --method cicw-m --temperature 1.0 --burnin-steps 4 --anneal-steps 6"
MOONS_REF = [*MOONS, *_REF.split()]


def _run(args, out):
    assert cli.main([*args, "--out", str(out)]) == 0
    return [r.without_timing() for r in read_metrics(Path(out) / "metrics.jsonl")]


def _checkpoint(out):
    return trainer_jax.load_checkpoint(Path(out) / trainer_jax.CHECKPOINT_NAME)


def _assert_trees_equal(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)


def _fashion_mnist_available() -> bool:
    return (DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file() or (
        DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte"
    ).is_file()


@pytest.fixture(scope="module")
def moons_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax-moons-ref")
    return out, _run(MOONS_REF, out)


# --------------------------------------------------------------------------- #
# End to end, through the CLI.
# --------------------------------------------------------------------------- #
def test_cli_two_moons_writes_metrics_checkpoint_summary_and_plots(moons_reference):
    out, recs = moons_reference
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    fields = {f for f in EpochRecord.__dataclass_fields__}
    assert all(set(json.loads(line)) == fields for line in lines)
    for name in (
        trainer_jax.CHECKPOINT_NAME,
        "summary.json",
        "config.json",
        "data.json",
        "accuracy.png",
        "weights.png",
        "weights/epoch_003.npz",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["framework"] == "jax"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is True and summary["epochs"] == 3
    assert all(r["reweighting"] for r in recs)  # 11 steps per epoch, burn-in of 4 steps
    assert all(np.isfinite(r["train_loss"]) and 0.0 <= r["test_acc"] <= 1.0 for r in recs)
    assert 0.0 < recs[-1]["ess"] < 1.0
    state = _checkpoint(out)
    assert state["epoch"] == 3 and state["step"] == recs[-1]["step"]
    assert state["best"]["epochs"] == 3


def test_resume_after_stop_matches_uninterrupted(moons_reference, tmp_path):
    ref_out, ref = moons_reference
    out = tmp_path / "resumed"
    first = _run([*MOONS_REF, "--stop-after-epochs", "1", "--no-plots"], out)
    assert len(first) == 1
    assert json.loads((out / "summary.json").read_text())["completed"] is False
    assert _run([*MOONS_REF, "--resume", "--no-plots"], out) == ref
    a, b = _checkpoint(ref_out), _checkpoint(out)
    for key in ("params", "model_state", "momentum"):
        _assert_trees_equal(a[key], b[key])


def test_same_seed_same_metrics_other_seed_differs(moons_reference, tmp_path):
    ref_out, ref = moons_reference
    assert _run([*MOONS_REF, "--no-plots"], tmp_path / "again") == ref
    _assert_trees_equal(_checkpoint(ref_out)["params"], _checkpoint(tmp_path / "again")["params"])
    assert _run([*MOONS_REF, "--no-plots", "--seed", "1"], tmp_path / "other") != ref


def test_resume_refuses_different_options(moons_reference, tmp_path):
    out = tmp_path / "r"
    _run([*MOONS_REF, "--stop-after-epochs", "1", "--no-plots"], out)
    with pytest.raises(ValueError, match="lr"):
        trainer_jax.train(
            cli.config_from_args(
                cli.build_parser().parse_args([*MOONS_REF, "--resume", "--lr", "0.01", "--out", str(out)])
            )
        )


def test_ciw_down_weights_flipped_labels_on_two_moons(tmp_path):
    args = [
        *MOONS,
        "--subset",
        "1000",
        "--epochs",
        "3",
        "--no-plots",
        "--no-save-weights",
    ]
    schedule = ["--burnin-epochs", "1", "--anneal-epochs", "1"]  # ce has none
    ciw = _run([*args, "--method", "ciw", *schedule], tmp_path / "ciw")
    ce = _run([*args, "--method", "ce"], tmp_path / "ce")
    assert ciw[0]["auroc"] == pytest.approx(0.5)  # burn-in: uniform weights
    assert ciw[-1]["auroc"] > 0.75 and ciw[-1]["flipped_mass"] < 0.25
    assert ce[-1]["auroc"] == pytest.approx(0.5) and ce[-1]["ess"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "method",
    [
        "bootstrap",
        "cicw",
        pytest.param("mixup", marks=pytest.mark.slow),
        pytest.param("ciw-m", marks=pytest.mark.slow),
    ],
)
def test_other_methods_train_one_epoch(method, tmp_path):
    # ce and ciw: test_ciw_down_weights_flipped_labels_on_two_moons; cicw-m: moons_reference.
    strength = [] if method in ("bootstrap", "mixup") else ["--temperature", "1.0"]
    # the CLI refuses schedule options a method does not use
    schedule = {"mixup": [], "bootstrap": ["--burnin-steps", "2"]}.get(
        method, ["--burnin-steps", "2", "--anneal-steps", "1"]
    )
    recs = _run(
        [
            *MOONS,
            "--subset",
            "200",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--method",
            method,
            "--no-plots",
            *schedule,
            *strength,
        ],
        tmp_path / method,
    )
    (rec,) = recs
    assert rec["step"] == 5 and np.isfinite(rec["train_loss"]) and 0.0 <= rec["test_acc"] <= 1.0
    with np.load(tmp_path / method / "weights" / "epoch_001.npz", allow_pickle=False) as z:
        w = z["scaled_weights"][~np.isnan(z["scaled_weights"])]
    assert len(w) == 160 and np.all(w >= 0)
    if method in ("mixup", "bootstrap"):
        np.testing.assert_allclose(w, 1.0, rtol=1e-6)
    else:
        assert np.std(w) > 0
    if method == "mixup":
        assert np.isnan(rec["train_acc_noisy"])  # no clean forward pass
    else:
        assert 0.0 <= rec["train_acc_noisy"] <= 1.0


@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST idx files not installed")
def test_fashion_mnist_cnn_with_augmentation_resumes_exactly(tmp_path):
    args = [
        "--framework",
        "jax",
        "--dataset",
        "fashion-mnist",
        "--subset",
        "300",
        "--noise",
        "symmetric:0.6",
        "--method",
        "ciw",
        "--temperature",
        "1.0",
        "--model",
        "cnn",
        "--width",
        "4",
        "--augment",
        "crop-flip",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--eval-batch-size",
        "2000",
        "--burnin-steps",
        "2",
        "--anneal-steps",
        "2",
        "--quiet",
        "--no-plots",
    ]
    ref = _run(args, tmp_path / "ref")
    assert [r["epoch"] for r in ref] == [1, 2] and all(np.isfinite(r["train_loss"]) for r in ref)
    _run([*args, "--stop-after-epochs", "1"], tmp_path / "res")
    assert _run([*args, "--resume"], tmp_path / "res") == ref
    a, b = _checkpoint(tmp_path / "ref"), _checkpoint(tmp_path / "res")
    _assert_trees_equal(a["params"], b["params"])
    _assert_trees_equal(a["model_state"], b["model_state"])  # batch-norm running statistics


@pytest.mark.parametrize("method", ["cicw", "oracle"])
def test_matches_torch_trainer_given_the_same_initial_weights(tmp_path, monkeypatch, method):
    # Without mixup, dropout or augmentation the only randomness is the initialisation and the
    # example order (shared): with torch's initial weights both trainers follow the same path.
    torch = pytest.importorskip("torch")
    from divweights_train import trainer_torch
    from divweights_train.config import TrainConfig
    from divweights_train.models_jax import JaxModel
    from divweights_train.models_torch import build_model as build_torch
    from divweights_train.prepare import derive_seed

    options = {
        "dataset": "two-moons",
        "method": method,
        "temperature": 1.0 if method == "cicw" else None,
        "noise": "symmetric:0.3",
        "subset": 600,
        "epochs": 3,
        "burnin_steps": 3,
        "anneal_steps": 5,
        "quiet": True,
        "plots": False,
        "save_weights": False,
        "threads": 1,
    }
    ref = trainer_torch.train(TrainConfig(framework="torch", out=str(tmp_path / "t"), **options)).records
    torch.manual_seed(derive_seed(0, "init"))  # as trainer_torch does
    layers = [m for m in build_torch("mlp", (2,), 2).modules() if isinstance(m, torch.nn.Linear)]
    params = {
        f"dense{i}": {
            "w": jnp.asarray(m.weight.detach().numpy().T),
            "b": jnp.asarray(m.bias.detach().numpy()),
        }
        for i, m in enumerate(layers)
    }

    class TorchInit(JaxModel):
        def init(self, key):
            return params, {}

    monkeypatch.setattr(
        trainer_jax,
        "build_model",
        lambda *a, **k: TorchInit(**build_model(*a, **k).__dict__),
    )
    got = trainer_jax.train(TrainConfig(framework="jax", out=str(tmp_path / "j"), **options)).records
    assert len(got) == len(ref) == 3
    for a, b in zip(ref, got):
        a, b = a.without_timing(), b.without_timing()
        assert {k: v for k, v in a.items() if not isinstance(v, float)} == {
            k: v for k, v in b.items() if not isinstance(v, float)
        }
        for k, v in a.items():
            if isinstance(v, float):
                assert b[k] == pytest.approx(v, rel=1e-4, abs=1e-5), k


# --------------------------------------------------------------------------- #
# The jitted step.
# --------------------------------------------------------------------------- #
def _toy_step_inputs(spec, n=64, d=2, k=2, seed=0):
    rng = np.random.default_rng(seed)
    params, state = spec.model.init(jax.random.key(0))
    buf = jax.tree.map(jnp.zeros_like, params)
    x = jnp.asarray(rng.normal(size=(n, d)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, k, n).astype(np.int32))
    keys = jax.random.wrap_key_data(np.arange(6, dtype=np.uint32).reshape(3, 2), impl="threefry2x32")
    idx = jnp.arange(n, dtype=jnp.int32)
    return params, state, buf, x, y, idx, keys


def test_train_step_traces_once_for_any_strength_lr_and_burnin_switch():
    # weight_decay is a unique value so that the spec has not been traced by another test
    spec = trainer_jax.StepSpec(
        model=build_model("mlp", (2,), 2, hidden=(8,)),
        instance="kl",
        strength_form="temperature",
        momentum=0.9,
        nesterov=True,
        weight_decay=1.234e-4,
    )
    params, state, buf, x, y, idx, keys = _toy_step_inputs(spec)
    weights = []
    for b, (strength, lr, active) in enumerate([(0.5, 0.1, False), (5.0, 0.05, True), (0.1, 0.01, True)]):
        out = trainer_jax.train_step(
            spec,
            params,
            state,
            buf,
            x,
            y,
            idx,
            keys,
            np.int32(b),
            np.float32(lr),
            np.float32(strength),
            np.bool_(active),
        )
        weights.append(np.asarray(out[4]))
    assert trainer_jax.TRACE_COUNTS[spec] == 1
    np.testing.assert_allclose(weights[0], 1 / 64, rtol=1e-6)  # burn-in: uniform
    ess = [1 / (64 * np.sum(w**2)) for w in weights[1:]]
    assert ess[1] < ess[0] < 1.0  # a temperature of 5 keeps the weights closer to uniform than 0.1


def test_oracle_loss_averages_over_kept_examples_and_matches_torch():
    torch = pytest.importorskip("torch")
    from divweights_train.trainer_torch import oracle_loss as torch_oracle_loss

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    y = rng.integers(0, 4, 6).astype(np.int32)
    kept = np.array([1, 0, 1, 1, 0, 1], np.float32)
    loss, w = trainer_jax.oracle_loss(jnp.asarray(logits), jnp.asarray(y), jnp.asarray(kept))
    ce = -(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))[np.arange(6), y]
    assert float(loss) == pytest.approx(ce[kept == 1].mean(), rel=1e-6)
    np.testing.assert_allclose(np.asarray(w), kept / 4)
    t_loss, t_w = torch_oracle_loss(torch.as_tensor(logits), torch.as_tensor(y).long(), torch.as_tensor(kept))
    assert float(t_loss) == pytest.approx(float(loss), rel=1e-6)
    np.testing.assert_allclose(t_w.numpy(), np.asarray(w))


def test_oracle_loss_of_an_all_flipped_batch_is_zero_with_zero_gradient():
    logits = jnp.ones((3, 2))
    grad = jax.grad(lambda z: trainer_jax.oracle_loss(z, jnp.zeros(3, jnp.int32), jnp.zeros(3))[0])(logits)
    assert float(trainer_jax.oracle_loss(logits, jnp.zeros(3, jnp.int32), jnp.zeros(3))[0]) == 0.0
    assert np.all(np.asarray(grad) == 0.0)


def test_sgd_update_matches_torch_sgd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4)).astype(np.float32)
    grads = [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(3)]
    for nesterov, momentum, wd in (
        (True, 0.9, 5e-4),
        (False, 0.9, 0.0),
        (False, 0.0, 1e-2),
    ):
        tp = torch.nn.Parameter(torch.tensor(p0))
        opt = torch.optim.SGD([tp], lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd)
        jp, jb = {"w": jnp.asarray(p0)}, {"w": jnp.zeros((3, 4), jnp.float32)}
        for g in grads:
            tp.grad = torch.tensor(g)
            opt.step()
            jp, jb = trainer_jax.sgd_update(
                jp,
                {"w": jnp.asarray(g)},
                jb,
                np.float32(0.1),
                momentum=momentum,
                nesterov=nesterov,
                weight_decay=wd,
            )
        np.testing.assert_allclose(np.asarray(jp["w"]), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_random_crop_flip_takes_windows_of_the_padded_image():
    x = jnp.asarray(np.random.default_rng(0).random((16, 2, 6, 5)).astype(np.float32))
    key = jax.random.key(3)
    np.testing.assert_array_equal(trainer_jax.random_crop_flip(key, x, 0, flip=False), x)
    out = np.asarray(trainer_jax.random_crop_flip(key, x, 2))
    padded = np.pad(np.asarray(x), ((0, 0), (0, 0), (2, 2), (2, 2)))
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, r : r + 6, c : c + 5] for r in range(5) for c in range(5)]
        plain = any(np.array_equal(out[i], w) for w in windows)
        flipped = any(np.array_equal(out[i], w[..., ::-1]) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 0 < flips < len(x)


# --------------------------------------------------------------------------- #
# Models mirror the torch ones.
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "name,in_shape,kwargs",
    [
        ("mlp", (2,), {}),
        ("mlp", (1, 8, 8), {"hidden": (16, 16)}),
        ("cnn", (1, 28, 28), {}),
        ("cnn", (3, 32, 32), {"width": 8}),
        ("preact-resnet18", (3, 32, 32), {}),
    ],
)
def test_parameter_counts_and_output_shapes_match_torch(name, in_shape, kwargs):
    pytest.importorskip("torch")
    from divweights_train.models_torch import build_model as build_torch

    model = build_model(name, in_shape, 10, **kwargs)
    params, state = jax.eval_shape(model.init, jax.random.key(0))
    logits = jax.eval_shape(
        lambda p, s: model.apply(p, s, jnp.zeros((2, *in_shape)), train=False)[0],
        params,
        state,
    )
    assert logits.shape == (2, 10)
    tmodel = build_torch(name, in_shape, 10, **kwargs)
    assert count_params(params) == sum(p.numel() for p in tmodel.parameters())
    n_buffers = sum(b.numel() for n, b in tmodel.named_buffers() if not n.endswith("num_batches_tracked"))
    assert count_params(state) == n_buffers


def test_cnn_forward_and_batch_norm_match_torch_with_copied_weights():
    torch = pytest.importorskip("torch")
    from divweights_train.models_torch import SmallCNN

    tm = SmallCNN(1, 5, width=4, input_size=(8, 8), dropout=0.0)
    jm = build_model("cnn", (1, 8, 8), 5, width=4)
    jm = type(jm)(**{**jm.__dict__, "dropout": 0.0})
    conv1, bn1, _, _, conv2, bn2 = list(tm.features)[:6]
    fc = tm.classifier[-1]
    with torch.no_grad():
        for m in (bn1, bn2):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    t = lambda a: jnp.asarray(a.detach().numpy())
    # torch flattens (C, H, W); the JAX model flattens (H, W, C)
    fc_w = fc.weight.detach().numpy().reshape(5, 8, 2, 2).transpose(2, 3, 1, 0).reshape(-1, 5)
    params = {
        "conv1": t(conv1.weight).transpose(2, 3, 1, 0),
        "bn1": {"scale": t(bn1.weight), "bias": t(bn1.bias)},
        "conv2": t(conv2.weight).transpose(2, 3, 1, 0),
        "bn2": {"scale": t(bn2.weight), "bias": t(bn2.bias)},
        "fc": {"w": jnp.asarray(fc_w), "b": t(fc.bias)},
    }
    _, state = jm.init(jax.random.key(0))
    x = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    tm.train()
    with torch.no_grad():
        expected_train = tm(torch.tensor(x)).numpy()
    apply = jax.jit(jm.apply, static_argnames="train")  # one compilation instead of one per operation
    got_train, new_state = apply(params, state, jnp.asarray(x), train=True, key=jax.random.key(1))
    np.testing.assert_allclose(np.asarray(got_train), expected_train, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_state["bn2"]["var"]), bn2.running_var.numpy(), rtol=1e-5)
    tm.eval()
    with torch.no_grad():
        expected_eval = tm(torch.tensor(x)).numpy()
    got_eval, _ = apply(params, new_state, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(got_eval), expected_eval, rtol=1e-4, atol=1e-5)


def test_build_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="image inputs"):
        build_model("cnn", (2,), 2)
    with pytest.raises(ValueError, match="width"):
        build_model("preact-resnet18", (3, 32, 32), 10, width=8)
