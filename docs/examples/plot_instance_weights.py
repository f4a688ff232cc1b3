"""
Instance weights versus loss
============================

How each divergence turns a mini-batch of losses into weights.  The batch
holds 200 losses spread over ``[0, 4]``; each panel shows ``n * w`` (so that
uniform weights are 1) against the loss, for three radii ``delta`` of the
constraint form ``D(w || u) <= delta``.

* KL gives a softmin, ``w ∝ exp(-l / lam)``: smooth, never zero.
* Reverse KL (``Alpha(0)``) and Hellinger (``Alpha(0.5)``) give power laws
  with heavy tails: high losses keep some weight.
* Chi-squared (``Alpha(2)`` up to a factor) gives linear weights that hit
  exactly zero.
* Total variation moves ``delta`` of the mass from the highest losses to the
  lowest one: a hard cut-off (the spike at the minimum loss is off the scale).
"""

import matplotlib.pyplot as plt
import numpy as np

from divweights import (
    KL,
    Alpha,
    ChiSquared,
    ReverseKL,
    TotalVariation,
    instance_weights,
)

rng = np.random.default_rng(0)
n = 200
losses = np.sort(rng.uniform(0.0, 4.0, size=n))

divergences = [
    ("KL()", KL(), (0.02, 0.1, 0.3)),
    ("ReverseKL()", ReverseKL(), (0.02, 0.1, 0.3)),
    ("Alpha(0.5)  (Hellinger)", Alpha(0.5), (0.02, 0.1, 0.3)),
    ("ChiSquared()", ChiSquared(), (0.2, 0.8, 2.0)),
    ("TotalVariation()", TotalVariation(), (0.1, 0.25, 0.4)),
]


def panel(ax, name, div, form, strengths, colors, top):
    """Plot ``n * w`` against the loss for several strengths of one form (``delta`` or ``lam``)."""
    for strength, color in zip(strengths, colors):
        w = instance_weights(losses, div, **{form: strength})
        ax.plot(losses, n * w, color=color, lw=2, label=f"{form}={strength}")
    ax.axhline(1.0, color="0.6", lw=1, ls="--")  # uniform weights
    ax.set(title=name, xlabel="loss", ylim=(-0.1, top))
    ax.legend(fontsize=8, loc="upper right")


fig, axes = plt.subplots(1, len(divergences), figsize=(16, 3.4), sharey=True)
for ax, (name, div, deltas) in zip(axes, divergences):
    panel(ax, name, div, "delta", deltas, plt.cm.viridis([0.35, 0.6, 0.9]), top=4.0)
axes[0].set_ylabel("n * weight")
fig.tight_layout()

# %%
# The penalty form
# ----------------
# ``lam`` fixes the trade-off in loss units instead of the distance from
# uniform.  For KL the weights are ``exp(-l / lam)`` normalised; for the
# Alpha family the shape is the same power law as above, with the shift set
# by ``lam`` through the power-mean identity.  Here are KL and ``Alpha(0.1)``
# (the published default ``a``) for several multipliers.

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for ax, (name, div) in zip(axes, [("KL()", KL()), ("Alpha(0.1)", Alpha(0.1))]):
    panel(ax, name, div, "lam", (0.5, 1.0, 2.0, 4.0), plt.cm.magma([0.2, 0.45, 0.7, 0.9]), top=10)
axes[0].set_ylabel("n * weight")
fig.tight_layout()
plt.show()
