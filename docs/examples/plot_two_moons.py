"""
Two moons with 30% label noise
==============================

The illustration of the CIW blog post, reproduced with a tiny NumPy network.

Two hundred points from two interleaved half-moons get 30% of their labels
flipped (:func:`divweights_train.noise.symmetric_noise`).  The same two-hidden-layer
ReLU network is trained twice with mini-batch SGD with momentum:

* **plain**: the mean cross-entropy of each mini-batch (uniform weights);
* **reweighted (CIW)**: after a short burn-in, every mini-batch's losses go
  through :func:`divweights.instance_weights` and the network is trained on
  the weighted sum, with the weights held constant in the backward pass.

The reweighting uses the published default, ``Alpha(0.1)`` with
``temperature=0.1``.  Point sizes are proportional to the weight each example
received in its last mini-batch (plus a small floor, so that points with
weight zero stay visible); crosses mark flipped labels.  Plain training
bends its boundary around the flipped points; the reweighted network gives
them small weights and keeps a clean boundary.

Everything (data, network, gradients) is written out below in NumPy, so the
script runs in a few seconds on a CPU.
"""

import matplotlib.pyplot as plt
import numpy as np
from divweights_train.noise import symmetric_noise

from divweights import Alpha, instance_weights


def make_moons(n, noise, rng):
    """Two interleaved half circles with Gaussian jitter; labels 0 and 1."""
    n0 = n // 2
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n - n0)
    upper = np.c_[np.cos(t0), np.sin(t0)]
    lower = np.c_[1.0 - np.cos(t1), 0.5 - np.sin(t1)]
    X = np.r_[upper, lower] + noise * rng.normal(size=(n, 2))
    y = np.r_[np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)]
    return X, y


rng = np.random.default_rng(0)
X, y_clean = make_moons(200, 0.12, rng)
y_noisy, flipped = symmetric_noise(y_clean, 0.3, 2, rng=rng, variant="flip", exact=True)
X_test, y_test = make_moons(2000, 0.12, rng)
print(f"{flipped.sum()} of {len(y_clean)} labels flipped")

# %%
# A two-hidden-layer ReLU network in NumPy
# ----------------------------------------
# ``forward`` returns every layer's activations; ``class_losses`` is
# ``-log_softmax(logits)``, the ``(n, k)`` matrix divweights' class problem
# also takes.  The gradient of ``sum_i w_i * loss_i`` with respect to the
# logits is ``w_i * (softmax_i - onehot_i)``: the weights are constants.


def init_params(rng, sizes):
    return [
        [rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out)), np.zeros(fan_out)]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:])
    ]


def forward(params, X):
    acts = [X]
    for i, (W, b) in enumerate(params):
        z = acts[-1] @ W + b
        acts.append(np.maximum(z, 0.0) if i < len(params) - 1 else z)
    return acts


def class_losses(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1, keepdims=True)) - z


def backward(params, acts, dlogits):
    grads = [None] * len(params)
    g = dlogits
    for i in range(len(params) - 1, -1, -1):
        grads[i] = (acts[i].T @ g, g.sum(axis=0))
        if i > 0:
            g = (g @ params[i][0].T) * (acts[i] > 0)
    return grads


def train(X, y, *, reweight, steps=6000, batch=64, lr=0.05, momentum=0.9, burn_in=300, seed=100):
    """Mini-batch SGD; returns the parameters and each example's last ``n * w``."""
    rng = np.random.default_rng(seed)
    params = init_params(rng, [2, 64, 64, 2])
    velocity = [[np.zeros_like(W), np.zeros_like(b)] for W, b in params]
    n = len(X)
    last_weight = np.ones(n)
    order, pos = rng.permutation(n), 0
    for step in range(steps):
        if pos + batch > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + batch]
        pos += batch
        acts = forward(params, X[idx])
        L = class_losses(acts[-1])
        rows = np.arange(len(idx))
        losses = L[rows, y[idx]]
        if reweight and step >= burn_in:
            w = instance_weights(losses, Alpha(0.1), temperature=0.1)
        else:
            w = np.full(len(idx), 1.0 / len(idx))
        last_weight[idx] = len(idx) * w
        dlogits = np.exp(-L)  # softmax probabilities
        dlogits[rows, y[idx]] -= 1.0
        dlogits *= w[:, None]  # w is a constant: Danskin's theorem
        for (W, b), vel, (gW, gb) in zip(params, velocity, backward(params, acts, dlogits)):
            vel[0] = momentum * vel[0] - lr * gW
            vel[1] = momentum * vel[1] - lr * gb
            W += vel[0]
            b += vel[1]
    return params, last_weight


def accuracy(params, X, y):
    return float(np.mean(forward(params, X)[-1].argmax(axis=1) == y))


plain, w_plain = train(X, y_noisy, reweight=False)
ciw, w_ciw = train(X, y_noisy, reweight=True)
print(
    f"clean test accuracy: plain {accuracy(plain, X_test, y_test):.3f}, reweighted {accuracy(ciw, X_test, y_test):.3f}"
)

# %%
# Decision boundaries
# -------------------

xx, yy = np.meshgrid(np.linspace(-1.6, 2.6, 220), np.linspace(-1.1, 1.6, 160))
grid = np.c_[xx.ravel(), yy.ravel()]


def plot_panel(ax, params, sizes, title):
    colors = np.array(["tab:blue", "tab:orange"])[y_noisy]
    if params is not None:
        logits = forward(params, grid)[-1]
        prob1 = np.exp(-class_losses(logits))[:, 1].reshape(xx.shape)
        ax.contourf(xx, yy, prob1, levels=[0.0, 0.5, 1.0], colors=["#dbe8f5", "#fde5cc"], alpha=0.9)
        ax.contour(xx, yy, prob1, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(X[~flipped, 0], X[~flipped, 1], s=sizes[~flipped], c=colors[~flipped], edgecolors="k", linewidths=0.3)
    ax.scatter(
        X[flipped, 0], X[flipped, 1], s=sizes[flipped], c=colors[flipped], marker="X", edgecolors="k", linewidths=0.3
    )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
plot_panel(axes[0], None, np.full(len(X), 25.0), "noisy training data (X: flipped label)")
plot_panel(axes[1], plain, 2.0 + 25.0 * w_plain, f"plain training, test acc {accuracy(plain, X_test, y_test):.2f}")
plot_panel(axes[2], ciw, 2.0 + 25.0 * w_ciw, f"reweighted (CIW), test acc {accuracy(ciw, X_test, y_test):.2f}")
fig.tight_layout()

# %%
# Weights of clean and flipped examples
# -------------------------------------
# The weight each example received in its last mini-batch of reweighted
# training, as a multiple of the uniform weight ``1/n``.  Flipped examples
# end up with a small fraction of the weight; most clean examples get more
# than the uniform share.

fig, ax = plt.subplots(figsize=(6, 3.4))
bins = np.linspace(0.0, 1.05 * max(2.0, float(w_ciw.max())), 31)
ax.hist(w_ciw[~flipped], bins=bins, alpha=0.7, label="clean label")
ax.hist(w_ciw[flipped], bins=bins, alpha=0.7, label="flipped label")
ax.axvline(1.0, color="0.4", ls="--", lw=1)
ax.set_xlabel("n * weight in the last mini-batch")
ax.set_ylabel("examples")
ax.legend()
fig.tight_layout()
print(
    f"share of the total weight on flipped examples: "
    f"{w_ciw[flipped].sum() / w_ciw.sum():.2f} (uniform: {flipped.mean():.2f})"
)
plt.show()
