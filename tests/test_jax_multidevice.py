"""Data-parallel reweighted loss on two (simulated CPU) JAX devices.

The number of host devices is fixed when JAX initialises its backend, which
the test session has already done; the check therefore runs in a fresh Python
process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec as P

    from divweights import KL, TotalVariation
    from divweights_jax import reweighted_loss

    try:
        shard_map = jax.shard_map
    except AttributeError:  # older JAX
        from jax.experimental.shard_map import shard_map

    devices = jax.devices()
    assert len(devices) == 2, devices
    mesh = Mesh(np.array(devices), ("data",))

    rng = np.random.default_rng(0)
    n, k = 12, 5
    logits = jnp.asarray(rng.normal(scale=2.0, size=(n, k)).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, k, size=n).astype(np.int32))
    mask = jnp.asarray(np.arange(n) % 5 != 4)  # a few padded rows on both devices


    def check(kw):
        def per_device(z, y, m):
            loss, aux = reweighted_loss(z, y, mask=m, axis_name="data", **kw)
            return jax.lax.psum(loss, "data"), aux["weights"]

        def per_device_grad(z, y, m):
            g = jax.grad(lambda z: reweighted_loss(z, y, mask=m, axis_name="data", **kw)[0])(z)
            return g

        spec = P("data")
        try:
            sharded = shard_map(per_device, mesh=mesh, in_specs=(spec, spec, spec), out_specs=(P(), spec))
            sharded_grad = shard_map(per_device_grad, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec)
        except TypeError:  # signature without keywords
            sharded = shard_map(per_device, mesh, (spec, spec, spec), (P(), spec))
            sharded_grad = shard_map(per_device_grad, mesh, (spec, spec, spec), spec)

        loss, weights = jax.jit(sharded)(logits, labels, mask)
        grads = jax.jit(sharded_grad)(logits, labels, mask)
        ref_loss, ref_aux = reweighted_loss(logits, labels, mask=mask, **kw)
        ref_grads = jax.grad(lambda z: reweighted_loss(z, labels, mask=mask, **kw)[0])(logits)

        return {
            "devices": len(devices),
            "loss": float(loss),
            "ref_loss": float(ref_loss),
            "sharded": len(weights.sharding.device_set),
            "weights_err": float(np.max(np.abs(np.asarray(weights) - np.asarray(ref_aux["weights"])))),
            "grad_err": float(np.max(np.abs(np.asarray(grads) - np.asarray(ref_grads)))),
            "weights_sum": float(np.sum(np.asarray(weights))),
        }

    CONFIGS = {
        "fixed": dict(instance=KL(), delta=0.4, classes=TotalVariation(), gamma=0.2),
        # the adaptive radii: the noise rate of the global batch, one radius on every device
        "default": dict(),
        "adaptive_classes": dict(instance=KL(), delta=0.4, classes=TotalVariation(), gamma="auto"),
    }
    for name, kw in CONFIGS.items():
        print("RESULT " + json.dumps({"name": name, **check(kw)}))
    """
)


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(s[len("RESULT ") :]) for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
    return {r["name"]: r for r in rows}


@pytest.mark.parametrize("name", ["fixed", "default", "adaptive_classes"])
def test_sharded_weights_and_loss_equal_single_device(results, name):
    """Fixed radii, and the adaptive radii (the default), whose noise rate is that of the global batch."""
    result = results[name]
    assert result["devices"] == 2 and result["sharded"] == 2
    assert abs(result["loss"] - result["ref_loss"]) <= 1e-5 * max(1.0, abs(result["ref_loss"]))
    assert result["weights_err"] <= 1e-6
    assert result["grad_err"] <= 1e-5
    assert abs(result["weights_sum"] - 1.0) <= 1e-5
