"""Spike encoders and readouts (Auge et al. 2021, "A Survey of Encoding Techniques for Signal Processing in Spiking Neural Networks"; Eshraghian et al. 2023, snnTorch).

Encoders turn a static input `x` [B, *F] (or a signal [B, L, *F]) into spikes over time
[B, T, *F]; readouts turn the output layer's membrane or spikes [B, T, C] into logits [B, C].

- `rate_bernoulli`: s_t ~ Bernoulli(p), p = clip(x, 0, 1) (x a firing probability per step);
- `rate_poisson`: spike counts per step ~ Poisson(rate * dt), clipped to one spike per step
  unless `max_count` allows more; `rate` in Hz;
- `latency`: one spike per feature at time-to-first-spike, linear (`(1 - x) (T - 1)`) or
  logarithmic (`tau log(x / (x - threshold))`, the RC-circuit charge time); inputs below
  `threshold` stay silent;
- `delta`: send-on-change: +1 / -1 spikes (two channels) whenever the signal moves more than
  `threshold` from the last value that triggered a spike;
- `direct`: the analog input repeated at every step (the first layer turns it into spikes).
"""

import jax
import jax.numpy as jnp
from jax import lax

from lib.ops._checks import check_method, check_rank

READOUTS = ("mean_membrane", "max_membrane", "spike_count", "last_membrane")


def _repeat(x, num_steps):
    return jnp.broadcast_to(x[:, None], (x.shape[0], num_steps, *x.shape[1:]))


def direct(x, num_steps: int):
    """Direct (analog) coding: `x` [B, *F] repeated over time -> [B, T, *F]."""
    return _repeat(jnp.asarray(x), num_steps)


def rate_bernoulli(rng, x, num_steps: int, *, dtype=jnp.float32):
    """Rate coding: independent Bernoulli spikes with probability clip(x, 0, 1) per step.

    Args:
      rng: PRNG key.  x: probabilities [B, *F].  num_steps: T.

    Returns:
      spikes [B, T, *F] in `dtype`.
    """
    p = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    u = jax.random.uniform(rng, (p.shape[0], num_steps, *p.shape[1:]))
    return (u < p[:, None]).astype(dtype)


def rate_poisson(rng, rate, num_steps: int, *, dt=1e-3, max_count: int = 1, dtype=jnp.float32):
    """Poisson rate coding: counts ~ Poisson(rate * dt) per step, clipped at `max_count`.

    Args:
      rng: PRNG key.  rate: firing rates in Hz [B, *F] (>= 0).  num_steps: T.
      dt: step length in seconds.  max_count: most spikes per step (1 gives binary spikes).

    Returns:
      spike counts [B, T, *F] in `dtype`.
    """
    lam = jnp.maximum(jnp.asarray(rate, jnp.float32), 0.0) * dt
    lam = jnp.broadcast_to(lam[:, None], (lam.shape[0], num_steps, *lam.shape[1:]))
    return jnp.minimum(jax.random.poisson(rng, lam), max_count).astype(dtype)


def latency(x, num_steps: int, *, method="linear", tau=5.0, threshold=0.01, dtype=jnp.float32):
    """Time-to-first-spike coding: one spike per feature, earlier for larger `x` in [0, 1].

    Args:
      x: intensities [B, *F], clipped to [0, 1].  num_steps: T.
      method: "linear": t = round((1 - x) (T - 1)); "log": t = round(tau log(x / (x - thr)))
        clipped to T - 1 (the charge time of an RC neuron).
      threshold: inputs at or below it never spike.

    Returns:
      spikes [B, T, *F] in `dtype`, and no spike where x <= threshold.
    """
    check_method(method, ("linear", "log"))
    x = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    active = x > threshold
    if method == "linear":
        t = jnp.round((1.0 - x) * (num_steps - 1))
    else:
        safe = jnp.where(active, x, 1.0)
        t = jnp.round(tau * jnp.log(safe / jnp.maximum(safe - threshold, 1e-12)))
    t = jnp.clip(t, 0, num_steps - 1).astype(jnp.int32)
    steps = jnp.arange(num_steps).reshape((1, num_steps) + (1,) * (x.ndim - 1))
    return ((steps == t[:, None]) & active[:, None]).astype(dtype)


def delta(signal_BxLxF, threshold: float, *, dtype=jnp.float32):
    """Send-on-change (delta) coding of a signal [B, L, *F].

    A spike is sent when the signal differs from the last transmitted value by at least
    `threshold`; the reference then moves to the current value. The first step is compared
    with zero.

    Returns:
      spikes [B, L, 2, *F]: channel 0 for increases (ON), channel 1 for decreases (OFF).
    """
    check_rank("signal_BxLxF", signal_BxLxF, range(2, 8))
    sig = jnp.moveaxis(jnp.asarray(signal_BxLxF, jnp.float32), 1, 0)

    def body(ref, x_t):
        up = x_t - ref >= threshold
        down = ref - x_t >= threshold
        ref = jnp.where(up | down, x_t, ref)
        return ref, jnp.stack([up, down], 1)

    _, spikes = lax.scan(body, jnp.zeros_like(sig[0]), sig)
    return jnp.moveaxis(spikes, 0, 1).astype(dtype)


def readout(values_BxTxC, kind: str = "mean_membrane"):
    """Logits [B, C] from an output layer over time [B, T, C].

    kind: "mean_membrane" / "max_membrane" (mean or max over time of a membrane),
    "spike_count" (sum of spikes over time), "last_membrane" (membrane at the last step).
    """
    check_method(kind, READOUTS)
    check_rank("values_BxTxC", values_BxTxC, range(3, 8))
    if kind == "mean_membrane":
        return jnp.mean(values_BxTxC, axis=1)
    if kind == "max_membrane":
        return jnp.max(values_BxTxC, axis=1)
    if kind == "spike_count":
        return jnp.sum(values_BxTxC, axis=1)
    return values_BxTxC[:, -1]
