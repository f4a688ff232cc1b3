"""
Class weights for a confusable example
======================================

A Fashion-MNIST-like example labelled *Shirt* that the model thinks is more
likely a *T-shirt/top* (a classic confusion, and a typical flipped label).
:func:`divweights.class_weights` moves part of the target's mass away from
the label, towards the classes of low loss, within a radius ``gamma`` of the
label:

* ``TotalVariation()`` moves exactly ``gamma`` to the predicted class: hard
  bootstrapping, ``(1 - gamma) l_y + gamma min_j l_j``;
* ``ReverseKL()`` (``KL(label || v) <= gamma``, the published ``'kl'``
  option) keeps ``exp(-gamma)`` on the label and moves the rest to the
  predicted class;
* ``SquaredL2()`` projects ``label - t * losses`` onto the simplex, with
  ``t`` set by the radius; the mass can go to several classes whose losses
  are close to the minimum (here only the predicted class qualifies);
* ``KL()`` needs a soft target; with a label-smoothed target it reweights
  the target by ``exp(-loss / lam)``: loss-adaptive label smoothing.
"""

import matplotlib.pyplot as plt
import numpy as np
from divweights_train.noise import FASHION_MNIST_CLASSES

from divweights import KL, ReverseKL, SquaredL2, TotalVariation, class_weights, reweighted_class_losses

classes = list(FASHION_MNIST_CLASSES)
k = len(classes)
probs = np.array([0.46, 0.01, 0.12, 0.03, 0.10, 0.01, 0.22, 0.01, 0.03, 0.01])
probs /= probs.sum()
losses = -np.log(probs)[None, :]  # shape (1, k): one example
label = np.array([classes.index("Shirt")])
onehot = np.eye(k)[label]
smoothed = 0.9 * onehot + 0.1 / k  # label smoothing with epsilon = 0.1

cases = [
    ("TotalVariation(), gamma=0.3", TotalVariation(), label, 0.3),
    ("ReverseKL(), gamma=0.3", ReverseKL(), label, 0.3),
    ("SquaredL2(), gamma=0.15", SquaredL2(), label, 0.15),
    ("KL(), smoothed target, gamma=0.3", KL(), smoothed, 0.3),
]

fig, axes = plt.subplots(1, len(cases) + 1, figsize=(17, 3.6), sharey=True)
x = np.arange(k)
axes[0].bar(x, probs, color="0.55")
axes[0].set_title("model's probabilities")
for ax, (title, div, target, gamma) in zip(axes[1:], cases):
    v = class_weights(losses, target, div, gamma=gamma)[0]
    tilde = reweighted_class_losses(losses, target, div, gamma=gamma)[0]
    base = onehot[0] if target.ndim == 1 else target[0]
    ax.bar(x - 0.2, base, width=0.4, color="0.8", label="target")
    ax.bar(x + 0.2, v, width=0.4, color="tab:green", label="class weights v")
    ax.set_title(f"{title}\nloss {float((base * losses[0]).sum()):.2f} -> {float(tilde):.2f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
for ax in axes:
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=70, fontsize=7)
axes[0].set_ylim(0, 1.05)
fig.tight_layout()

# %%
# A mixed-up (soft) target
# ------------------------
# After mixup the target is a probability vector, here 60% *Shirt* and 40%
# *Coat*.  Every class divergence accepts it: total variation takes mass from
# the highest-loss class in the target first, reverse KL has the two-case
# closed form of the derivations, and KL reweights the two mixed labels by
# ``exp(-loss / lam)``.

mixed = np.zeros((1, k))
mixed[0, classes.index("Shirt")] = 0.6
mixed[0, classes.index("Coat")] = 0.4
soft_cases = [
    ("TotalVariation()", TotalVariation(), 0.3),
    ("ReverseKL()", ReverseKL(), 0.3),
    ("SquaredL2()", SquaredL2(), 0.15),
    ("KL()", KL(), 0.3),
]
fig, axes = plt.subplots(1, len(soft_cases), figsize=(14, 3.4), sharey=True)
for ax, (title, div, gamma) in zip(axes, soft_cases):
    v = class_weights(losses, mixed, div, gamma=gamma)[0]
    ax.bar(x - 0.2, mixed[0], width=0.4, color="0.8", label="mixed target")
    ax.bar(x + 0.2, v, width=0.4, color="tab:purple", label="class weights v")
    ax.set_title(f"{title}, gamma={gamma}", fontsize=9)
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=70, fontsize=7)
    ax.legend(fontsize=7, loc="upper left")
axes[0].set_ylim(0, 1.05)
fig.tight_layout()
plt.show()
