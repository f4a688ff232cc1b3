"""
Strength maps: lam, delta and temperature
=========================================

The three ways to set the strength of instance reweighting describe the same
family of weights.  For one mini-batch of 128 losses this example draws

1. the monotone map from the penalty multiplier ``lam`` to the radius
   ``delta = D(w_lam || u)`` it reaches;
2. the published ``temperature`` ``T`` against the multiplier it implies,
   ``lam = M_p((1 - a) l + T)`` with ``p = 1 / (a - 1)`` (for KL, ``T = lam``);
3. the perplexity ``exp(H(w))`` of KL weights solved for a radius ``delta``
   against ``n * exp(-delta)``: the two agree exactly, which makes ``delta``
   an effective-sample-size knob.
"""

import matplotlib.pyplot as plt
import numpy as np

from divweights import KL, Alpha, ReverseKL, instance_weights

rng = np.random.default_rng(1)
n = 128
losses = rng.exponential(1.0, size=n)
u = np.full(n, 1.0 / n)
lams = np.logspace(-1.5, 1.5, 40)

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))

ax = axes[0]
for name, div in [("KL()", KL()), ("Alpha(0.1)", Alpha(0.1)), ("ReverseKL()", ReverseKL()), ("Alpha(2)", Alpha(2.0))]:
    deltas = [float(div(instance_weights(losses, div, lam=lam), u)) for lam in lams]
    ax.loglog(lams, deltas, lw=2, label=name)
ax.set_xlabel("lam (penalty multiplier)")
ax.set_ylabel("delta = D(w || u)")
ax.set_title("lam -> delta is monotone")
ax.legend(fontsize=8)

ax = axes[1]
temps = np.logspace(-2, 1.5, 40)
for a in (0.1, 0.5, 2.0):
    p = 1.0 / (a - 1.0)
    implied = [np.mean(np.maximum((1 - a) * losses + T, 0.0) ** p) ** (1 / p) for T in temps]
    ax.loglog(temps, implied, lw=2, label=f"Alpha({a})")
    # check: the temperature weights are the penalty weights at the implied lam
    T, lam = temps[20], implied[20]
    gap = np.abs(instance_weights(losses, Alpha(a), temperature=T) - instance_weights(losses, Alpha(a), lam=lam)).max()
    print(f"Alpha({a}), T={T:.3f}: implied lam={lam:.4f}, max weight difference {gap:.1e}")
ax.loglog(temps, temps, "k--", lw=1, label="KL: lam = T")
ax.set_xlabel("temperature T (published parameterisation)")
ax.set_ylabel("implied lam")
ax.set_title("temperature is a shift, not the multiplier")
ax.legend(fontsize=8)

ax = axes[2]
deltas = np.linspace(0.01, 1.5, 30)
perplexity = []
for delta in deltas:
    w = instance_weights(losses, KL(), delta=delta)
    perplexity.append(np.exp(-np.sum(w * np.log(w))))
ax.plot(deltas, perplexity, "o", ms=4, label="exp(H(w)) of the solved weights")
ax.plot(deltas, n * np.exp(-deltas), "k-", lw=1, label="n exp(-delta)")
ax.set_xlabel("delta (KL radius)")
ax.set_ylabel("effective sample size")
ax.set_title("KL: delta sets the effective sample size")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
