"""Tests of the baseline losses ``divweights_torch.baselines`` against direct computations."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from divweights_torch import BiTemperedLoss, GCELoss, NCERCELoss, SCELoss
from divweights_torch.baselines import (
    bi_tempered_logistic_loss,
    generalized_cross_entropy,
    nce_rce_loss,
    symmetric_cross_entropy,
    tempered_softmax,
)


def _batch(n=6, k=4, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    labels = torch.randint(0, k, (n,), generator=g)
    soft = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), -1)
    return z, labels, soft


# -- a direct, slow reference for the bi-tempered loss (Amid et al. 2019) ------------------------


def log_t(x, t):
    return math.log(x) if t == 1 else (x ** (1 - t) - 1) / (1 - t)


def exp_t(x, t):
    if t == 1:
        return math.exp(x)
    base = 1 + (1 - t) * x
    return max(base, 0.0) ** (1 / (1 - t))


def normaliser_reference(a, t, num_iters):
    """The published algorithm, one row, plain Python: fixed point (t > 1), bisection (t < 1)."""
    mu = max(a)
    a0 = [x - mu for x in a]
    if t == 1:
        return mu + math.log(sum(math.exp(x) for x in a0))
    if t > 1:
        at = list(a0)
        for _ in range(num_iters):
            z = sum(exp_t(x, t) for x in at)
            at = [x * z ** (1 - t) for x in a0]
        z = sum(exp_t(x, t) for x in at)
        return mu - log_t(1 / z, t)
    dim = sum(1 for x in a0 if x > -1 / (1 - t))
    lo, hi = 0.0, -log_t(1 / dim, t)
    for _ in range(num_iters):
        mid = (lo + hi) / 2
        if sum(exp_t(x - mid, t) for x in a0) < 1:
            hi = mid
        else:
            lo = mid
    return mu + (lo + hi) / 2


def normaliser_exact(a, t):
    """Root of sum_j exp_t(a_j - lam) = 1, by bisection to machine precision."""
    lo, hi = max(a) - 50.0, max(a) + 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if sum(exp_t(x - mid, t) for x in a) > 1:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def bi_tempered_reference(a, y, t1, t2, lam):
    """The Bregman-divergence loss of one row for a given normaliser ``lam``."""
    total = 0.0
    for aj, yj in zip(a, y, strict=True):
        pj = exp_t(aj - lam, t2)
        y_log_y = yj * log_t(yj, t1) if yj > 0 else 0.0
        log_p = log_t(pj, t1) if pj > 0 or t1 < 1 else -math.inf
        y_log_p = yj * log_p if yj > 0 else 0.0
        total += y_log_y - y_log_p - (yj ** (2 - t1) - pj ** (2 - t1)) / (2 - t1)
    return total


TEMPERATURES = [(0.5, 1.5), (0.8, 1.2), (0.2, 4.0), (1.0, 1.0), (0.7, 1.0), (1.0, 1.3), (0.5, 0.8), (0.0, 2.0)]


@pytest.mark.parametrize(("t1", "t2"), TEMPERATURES)
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_bi_tempered_equals_the_published_algorithm(t1, t2, soft):
    z, labels, probs = _batch()
    targets = probs if soft else labels
    iters = 20 if t2 < 1 else 5
    got = bi_tempered_logistic_loss(z, targets, t1=t1, t2=t2, num_iters=iters, reduction="none")
    y = probs if soft else F.one_hot(labels, 4).double()
    for i in range(z.shape[0]):
        a, yi = z[i].tolist(), y[i].tolist()
        want = bi_tempered_reference(a, yi, t1, t2, normaliser_reference(a, t2, iters))
        assert float(got[i]) == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("t1", "t2"), [(0.5, 1.5), (0.8, 1.2), (0.5, 0.8), (0.3, 3.0)])
def test_bi_tempered_converges_to_the_exact_normaliser(t1, t2):
    z, labels, _ = _batch()
    got = bi_tempered_logistic_loss(z, labels, t1=t1, t2=t2, num_iters=60, reduction="none")
    for i in range(z.shape[0]):
        a = z[i].tolist()
        y = [1.0 if j == int(labels[i]) else 0.0 for j in range(4)]
        assert float(got[i]) == pytest.approx(bi_tempered_reference(a, y, t1, t2, normaliser_exact(a, t2)), abs=1e-9)


@pytest.mark.parametrize(("t1", "t2"), [(0.5, 1.5), (0.8, 1.2), (0.5, 0.8), (1.0, 1.0)])
def test_bi_tempered_gradient_is_the_derivative_of_the_exact_loss(t1, t2):
    z, _, probs = _batch(n=3)
    a = z.clone().requires_grad_(True)
    bi_tempered_logistic_loss(a, probs, t1=t1, t2=t2, num_iters=60, reduction="sum").backward()

    def exact(rows):
        return sum(
            bi_tempered_reference(r, y, t1, t2, normaliser_exact(r, t2))
            for r, y in zip(rows, probs.tolist(), strict=True)
        )

    h = 1e-6
    rows = z.tolist()
    for i in range(3):
        for j in range(4):
            up = [list(r) for r in rows]
            dn = [list(r) for r in rows]
            up[i][j] += h
            dn[i][j] -= h
            assert float(a.grad[i, j]) == pytest.approx((exact(up) - exact(dn)) / (2 * h), abs=1e-6)


def test_bi_tempered_reproduces_the_published_test_values():
    """Values from the tests of the published code (google/bi-tempered-loss, jax/loss_test.py)."""
    labels = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.2, 0.8, 0.0]])
    z = torch.tensor([[-0.5, 0.1, 2.0], [0.1, 1.5, -5.0], [4.0, -3.0, -6.0]])
    got = bi_tempered_logistic_loss(z, labels, t1=0.5, t2=1.5, reduction="none")
    torch.testing.assert_close(got, torch.tensor([0.02301914, 0.18972909, 0.93874922]), atol=1e-4, rtol=0)
    got = bi_tempered_logistic_loss(z, labels, t1=0.5, t2=0.8, num_iters=20, reduction="none")
    torch.testing.assert_close(got, torch.tensor([0.21646356, 0.41836615, 1.33997854]), atol=1e-4, rtol=0)
    got = bi_tempered_logistic_loss(z, torch.eye(3), t1=0.5, t2=1.5, label_smoothing=0.1, reduction="none")
    torch.testing.assert_close(got, torch.tensor([0.76652711, 0.08627685, 1.35443510]), atol=1e-5, rtol=0)
    soft = torch.tensor([[0.2, 0.5, 0.3]])
    for (t1, t2), want in zip(
        [(1.0, 1.0), (0.9, 1.1), (0.8, 1.2), (0.7, 1.3)], [0.628705, 0.45677936, 0.34298314, 0.26295574], strict=True
    ):
        got = bi_tempered_logistic_loss(z[:1], soft, t1=t1, t2=t2)
        assert float(got) == pytest.approx(want, abs=1e-5)
    want = torch.tensor(
        [[0.3205458, 0.32714278, 0.3523402], [0.3430056, 0.36491093, 0.29220778], [0.41369352, 0.30534995, 0.28299212]]
    )
    torch.testing.assert_close(tempered_softmax(z, 4.0), want, atol=1e-6, rtol=0)


def test_bi_tempered_at_one_one_is_cross_entropy():
    z, labels, probs = _batch()
    torch.testing.assert_close(bi_tempered_logistic_loss(z, labels, t1=1.0, t2=1.0), F.cross_entropy(z, labels))
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    bi_tempered_logistic_loss(a, probs, t1=1.0, t2=1.0, reduction="sum").backward()
    F.cross_entropy(b, probs, reduction="sum").backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_bi_tempered_is_bounded_for_t1_below_one():
    """t1 < 1 caps the loss of a confidently wrong example (robustness to flipped labels)."""
    z = torch.tensor([[1e4, 0.0, 0.0]], dtype=torch.float64)
    wrong = torch.tensor([1])
    assert math.isinf(F.cross_entropy(z, wrong).item()) or F.cross_entropy(z, wrong).item() > 1e3
    bound = 1 / (1 - 0.5) + 1 / (2 - 0.5)  # -y log_t(0) + y^{2-t1}/(2-t1) at p = 0
    assert float(bi_tempered_logistic_loss(z, wrong, t1=0.5, t2=1.0)) <= bound + 1e-9


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_bi_tempered_is_safe_in_half_precision(dtype, scale):
    z, labels, _ = _batch(n=32, k=10, scale=scale)
    half = z.to(dtype).requires_grad_(True)
    loss = bi_tempered_logistic_loss(half, labels, t1=0.8, t2=1.2)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(half.grad).all()
    torch.testing.assert_close(loss, bi_tempered_logistic_loss(half.detach().float(), labels, t1=0.8, t2=1.2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(bi_tempered_logistic_loss(half.detach(), labels, t1=0.8, t2=0.9, num_iters=20))


def test_tempered_softmax_rows_sum_to_one():
    z, _, _ = _batch(n=50, k=10)
    for t, iters in ((1.2, 5), (2.0, 10), (0.5, 40)):
        torch.testing.assert_close(
            tempered_softmax(z, t, num_iters=iters).sum(-1), torch.ones(50, dtype=torch.float64), atol=1e-3, rtol=0
        )


# -- NCE+RCE, GCE, SCE against per-example formulas ------------------------------------------------


def _rows(z, targets):
    k = z.shape[1]
    for i in range(z.shape[0]):
        zi = z[i].tolist()
        m = max(zi)
        s = sum(math.exp(x - m) for x in zi)
        p = [math.exp(x - m) / s for x in zi]
        if targets.is_floating_point():
            y = targets[i].tolist()
        else:
            y = [1.0 if j == int(targets[i]) else 0.0 for j in range(k)]
        yield p, y


def nce_rce_reference(z, targets, alpha, beta, log_floor):
    out = []
    for p, y in _rows(z, targets):
        nce = sum(-yj * math.log(pj) for pj, yj in zip(p, y, strict=True)) / sum(-math.log(pj) for pj in p)
        rce = sum(-pj * math.log(max(yj, math.exp(log_floor))) for pj, yj in zip(p, y, strict=True))
        out.append(alpha * nce + beta * rce)
    return torch.tensor(out, dtype=torch.float64)


def gce_reference(z, targets, q):
    return torch.tensor(
        [sum(yj * (1 - pj**q) / q for pj, yj in zip(p, y, strict=True)) for p, y in _rows(z, targets)],
        dtype=torch.float64,
    )


def sce_reference(z, targets, alpha, beta, log_floor):
    out = []
    for p, y in _rows(z, targets):
        ce = sum(-yj * math.log(pj) for pj, yj in zip(p, y, strict=True))
        rce = sum(-pj * math.log(max(yj, math.exp(log_floor))) for pj, yj in zip(p, y, strict=True))
        out.append(alpha * ce + beta * rce)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize(("alpha", "beta", "floor"), [(1.0, 1.0, math.log(1e-4)), (10.0, 0.1, -4.0)])
def test_nce_rce_equals_the_formula(soft, alpha, beta, floor):
    z, labels, probs = _batch()
    targets = probs if soft else labels
    got = nce_rce_loss(z, targets, alpha=alpha, beta=beta, log_floor=floor, reduction="none")
    torch.testing.assert_close(got, nce_rce_reference(z, targets, alpha, beta, floor))


def test_reverse_cross_entropy_of_a_label_is_minus_a_times_one_minus_p():
    z, labels, _ = _batch()
    p_y = torch.softmax(z, -1).gather(1, labels[:, None])[:, 0]
    got = nce_rce_loss(z, labels, alpha=0.0, beta=1.0, log_floor=-4.0, reduction="none")
    torch.testing.assert_close(got, 4.0 * (1 - p_y))


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("q", [0.1, 0.7, 1.0])
def test_generalized_cross_entropy_equals_the_formula(soft, q):
    z, labels, probs = _batch()
    targets = probs if soft else labels
    torch.testing.assert_close(
        generalized_cross_entropy(z, targets, q=q, reduction="none"), gce_reference(z, targets, q)
    )


def test_generalized_cross_entropy_tends_to_cross_entropy_as_q_vanishes():
    z, labels, _ = _batch()
    torch.testing.assert_close(
        generalized_cross_entropy(z, labels, q=1e-7), F.cross_entropy(z, labels), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_symmetric_cross_entropy_equals_the_formula(soft):
    z, labels, probs = _batch()
    targets = probs if soft else labels
    got = symmetric_cross_entropy(z, targets, alpha=0.1, beta=1.0, reduction="none")
    torch.testing.assert_close(got, sce_reference(z, targets, 0.1, 1.0, math.log(1e-4)))


@pytest.mark.parametrize(
    ("module", "fn", "kwargs"),
    [
        (BiTemperedLoss, bi_tempered_logistic_loss, {"t1": 0.8, "t2": 1.2}),
        (NCERCELoss, nce_rce_loss, {"alpha": 10.0, "beta": 0.1}),
        (GCELoss, generalized_cross_entropy, {"q": 0.5}),
        (SCELoss, symmetric_cross_entropy, {"alpha": 0.1, "beta": 1.0}),
    ],
    ids=["bi-tempered", "nce-rce", "gce", "sce"],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_modules_equal_the_functions_and_their_gradients(module, fn, kwargs, reduction):
    z, labels, _ = _batch()
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    got = module(**kwargs, reduction=reduction)(a, labels)
    want = fn(b, labels, **kwargs, reduction=reduction)
    torch.testing.assert_close(got, want)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)
    if reduction == "mean":
        torch.testing.assert_close(got, fn(z, labels, **kwargs, reduction="none").mean())


@pytest.mark.parametrize("fn", [nce_rce_loss, generalized_cross_entropy, symmetric_cross_entropy])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_other_losses_are_safe_in_half_precision(fn, dtype):
    z, labels, _ = _batch(n=32, k=10, scale=1e4)
    half = z.to(dtype).requires_grad_(True)
    loss = fn(half, labels)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(half.grad).all()


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: BiTemperedLoss(t1=1.5, t2=1.2), "t1"),
        (lambda: BiTemperedLoss(t1=0.5, t2=0.0), "t2"),
        (lambda: BiTemperedLoss(t1=0.5, t2=1.2, num_iters=-1), "num_iters"),
        (lambda: GCELoss(q=0.0), "q"),
        (lambda: NCERCELoss(alpha=-1.0), "alpha"),
        (lambda: SCELoss(log_floor=0.5), "log_floor"),
        (lambda: SCELoss(reduction="avg"), "reduction"),
    ],
)
def test_bad_hyperparameters_are_rejected_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "fn",
    [
        lambda z, y: bi_tempered_logistic_loss(z, y, t1=0.8, t2=1.2),
        nce_rce_loss,
        generalized_cross_entropy,
        symmetric_cross_entropy,
    ],
)
def test_out_of_range_labels_name_the_range(fn):
    z, labels, _ = _batch()
    bad = labels.clone()
    bad[0] = 9
    with pytest.raises(ValueError, match=r"integer targets must lie in \[0, 4\) for 4 classes; got values in \[0, 9\]"):
        fn(z, bad)


def test_label_smoothing_out_of_range_rejected():
    z, labels, _ = _batch()
    with pytest.raises(ValueError, match="label_smoothing"):
        bi_tempered_logistic_loss(z, labels, t1=0.5, t2=1.5, label_smoothing=0.9)


# -- compile ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss_fn",
    [BiTemperedLoss(t1=0.8, t2=1.2), BiTemperedLoss(t1=0.5, t2=0.8, num_iters=20), NCERCELoss(), GCELoss(), SCELoss()],
    ids=["bi-tempered", "bi-tempered-finite-support", "nce-rce", "gce", "sce"],
)
def test_losses_compile_to_one_graph_equal_to_eager(loss_fn):
    import warnings

    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    z, labels, _ = _batch(n=16, k=5)
    z = z.float()
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = torch.compile(loss_fn, fullgraph=True)
        got = compiled(a, labels)
        got.backward()
    want = loss_fn(b, labels)
    want.backward()
    assert counters["stats"]["unique_graphs"] == 1
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(a.grad, b.grad)


# -- masked classes, vanishing probabilities, small q ----------------------------------------------


def test_generalized_cross_entropy_tends_to_cross_entropy_in_float32():
    """1 - exp(q log p) cancels for small q in float32 (q = 1e-8 gave 0); -expm1 does not."""
    z = torch.tensor([[2.0, 0.0, -1.0]])
    ce = F.cross_entropy(z, torch.tensor([1]))
    torch.testing.assert_close(generalized_cross_entropy(z, torch.tensor([1]), q=1e-8), ce, rtol=1e-5, atol=0)


@pytest.mark.parametrize(
    "loss",
    [
        lambda z, y: nce_rce_loss(z, y),
        lambda z, y: symmetric_cross_entropy(z, y),
        lambda z, y: generalized_cross_entropy(z, y),
        lambda z, y: bi_tempered_logistic_loss(z, y, t1=1.0, t2=1.0),
        lambda z, y: bi_tempered_logistic_loss(z, y, t1=1.0, t2=1.5),
        lambda z, y: bi_tempered_logistic_loss(z, y, t1=0.8, t2=1.2),
    ],
    ids=["nce-rce", "sce", "gce", "bt-1-1", "bt-1-1.5", "bt-0.8-1.2"],
)
def test_a_class_masked_with_minus_inf_gives_a_finite_loss_and_gradient(loss):
    """Logits of -inf for a class the label does not hold (0 * -inf was NaN in NCE+RCE, SCE and the
    bi-tempered loss at t1 = 1); the bi-tempered loss at t1 = t2 = 1 is cross-entropy there too."""
    z, labels, _ = _batch()
    labels = labels.clamp_max(2)
    masked = z.clone()
    masked[:, 3] = -math.inf
    masked.requires_grad_(True)
    value = loss(masked, labels)
    (grad,) = torch.autograd.grad(value, masked)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_bi_tempered_at_one_one_is_cross_entropy_with_vanishing_probabilities():
    z = torch.tensor([[0.0, -200.0, 1.0]])
    y = torch.tensor([0])
    torch.testing.assert_close(bi_tempered_logistic_loss(z, y, t1=1.0, t2=1.0), F.cross_entropy(z, y))
    assert torch.isfinite(bi_tempered_logistic_loss(z, y, t1=1.0, t2=0.5, num_iters=30))


def test_nce_rce_refuses_one_class():
    with pytest.raises(ValueError, match="at least two classes"):
        nce_rce_loss(torch.randn(2, 1), torch.tensor([0, 0]))
