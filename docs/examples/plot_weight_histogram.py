"""
Weights of clean and flipped examples
=====================================

Why reweighting helps: in the middle of training on noisy labels, a network
has fitted most clean examples but not yet memorised the flipped ones, so
flipped examples have larger losses.  This example uses a simple *loss model*
of that stage, 40% of the labels flipped, the probability the model gives
to the (possibly wrong) label drawn from

* ``Beta(6, 2)`` for clean examples (mostly confident and right),
* ``Beta(1, 8)`` for flipped ones (the model disagrees with the label),

and computes the weights of 40 mini-batches of 128 examples for several
divergences.  The histograms show ``n * w`` (1 is the uniform weight) for
clean and flipped examples, and the titles give the share of the total
weight that lands on flipped examples (40% without reweighting).
"""

import matplotlib.pyplot as plt
import numpy as np

from divweights import KL, Alpha, ChiSquared, TotalVariation, instance_weights

rng = np.random.default_rng(0)
batches, n, noise_rate = 40, 128, 0.4
flipped = rng.random((batches, n)) < noise_rate
p_label = np.where(flipped, rng.beta(1.0, 8.0, (batches, n)), rng.beta(6.0, 2.0, (batches, n)))
losses = -np.log(p_label)

settings = [
    ("KL(), delta=0.5", KL(), dict(delta=0.5)),
    ("Alpha(0.1), temperature=0.1\n(published default)", Alpha(0.1), dict(temperature=0.1)),
    ("ChiSquared(), delta=1.0", ChiSquared(), dict(delta=1.0)),
    ("TotalVariation(), delta=0.4", TotalVariation(), dict(delta=0.4)),
]

fig, axes = plt.subplots(1, len(settings), figsize=(16, 3.4), sharey=True)
bins = np.linspace(0.0, 3.0, 31)
for ax, (title, div, strength) in zip(axes, settings):
    # All 40 mini-batches at once: the weights are computed along the last axis.
    w = n * instance_weights(losses, div, **strength)
    share = w[flipped].sum() / w.sum()
    ax.hist(np.clip(w[~flipped], 0, 3), bins=bins, alpha=0.7, label="clean")
    ax.hist(np.clip(w[flipped], 0, 3), bins=bins, alpha=0.7, label="flipped")
    ax.axvline(1.0, color="0.4", ls="--", lw=1)
    ax.set_title(f"{title}\nweight on flipped: {share:.1%}", fontsize=9)
    ax.set_xlabel("n * weight (clipped at 3)")
    ax.set_yscale("log")
axes[0].set_ylabel("examples")
axes[0].legend()
fig.tight_layout()

# %%
# Total variation is a loss truncation: with ``delta = 0.4`` it removes the
# 40% of the mass sitting on the highest losses and hands it to the single
# lowest-loss example of each batch (the bar at the clip value).  KL and the
# power laws of the Alpha family discount high losses smoothly instead.
plt.show()
