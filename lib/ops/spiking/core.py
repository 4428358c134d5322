"""Spikes with surrogate gradients and LIF neurons (Neftci, Mostafa & Zenke 2019; Zenke & Ganguli 2018).

`spike(x)` is the Heaviside step H(x) (with H(0) = 1) in the forward pass and a smooth
surrogate derivative in the backward pass, through `jax.custom_vjp`. Every surrogate in
`SURROGATES` is the exact derivative of a smooth "twin" function (`Surrogate.smooth`), so
`grad(smooth)` is the reference its backward pass is tested against. Surrogates whose twin
rises from 0 to 1 integrate to one; `straight_through`, `fast_sigmoid`, `triangle` and
`multi_gaussian` (mass 1 - height) follow their papers' scale, and `biper_sine` is periodic. See `lib.ops.spiking.surrogates` for the formulas.

`lif` is the leaky integrate-and-fire neuron over axis 1 (time), a `lax.scan` of `lif_step`:

    v_t = beta * v_{t-1} + I_t,   s_t = H(v_t - threshold),
    v_t <- v_t - threshold * s_t  (reset="subtract")  |  v_t * (1 - s_t)  ("zero")  |  v_t ("none")

Shape letters: B batch, L time, N (any trailing) neuron axes.

The rest of the spiking toolbox lives next door: `spiking_surrogates` (the registry),
`spiking_neurons` (IF, PLIF, ALIF, synaptic, recurrent and time-parallel no-reset LIF),
`sltt` (BPTT, truncated BPTT, SLTT, SLTT-K), `spiking_delays` (fixed and DCLS delays),
`spiking_encode` (encoders and readouts) and `spiking_metrics` (rates, SynOps, energy).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from lib.ops._checks import check_method, check_rank, on_accelerator
from lib.ops.spiking.surrogates import SURROGATES, Surrogate, get_surrogate, register_surrogate

__all__ = [
    "SURROGATES",
    "RESETS",
    "Surrogate",
    "get_surrogate",
    "register_surrogate",
    "spike",
    "spike_fn",
    "lif",
    "lif_step",
    "lif_init_state",
]

RESETS = ("subtract", "zero", "none")
LIF_METHODS = ("auto", "scan", "pallas")


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _heaviside(grad_fn, x, params):
    del grad_fn, params
    # A NaN membrane spikes NaN (not a silent 0), so a NaN input shows in the output from then on.
    return jnp.where(jnp.isnan(x), x, (x >= 0).astype(x.dtype))


def _heaviside_fwd(grad_fn, x, params):
    return _heaviside(grad_fn, x, params), (x, params)


def _heaviside_bwd(grad_fn, res, g):
    x, params = res
    dx = g.astype(jnp.float32) * grad_fn(x.astype(jnp.float32), **params)
    return dx.astype(g.dtype), jax.tree.map(jnp.zeros_like, params)


_heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


def spike(x, surrogate: str = "fast_sigmoid", **params):
    """Heaviside forward (exactly 0 or 1, H(0) = 1), surrogate derivative backward.

    Args:
      x: membrane minus threshold, any shape, floating point.
      surrogate: a name in `SURROGATES` (e.g. "fast_sigmoid", "arctan", "triangle").
      **params: the surrogate's parameters (e.g. `alpha=25.0`); defaults from the registry.
        They get no gradient (to learn a sharpness, write a custom surrogate).

    Returns:
      spikes with `x`'s shape and dtype (NaN where `x` is NaN).
    """
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise TypeError(f"spike expects a floating-point input, got dtype {jnp.result_type(x)}")
    sg = get_surrogate(surrogate)
    unknown = set(params) - set(sg.defaults)
    if unknown:
        raise TypeError(
            f"surrogate {surrogate!r} has parameters {sorted(sg.defaults)}, got {sorted(unknown)}"
        )
    full = {k: jnp.asarray(params.get(k, v), jnp.float32) for k, v in sg.defaults.items()}
    return _heaviside(sg.grad, jnp.asarray(x), full)


def spike_fn(surrogate: str | Callable = "fast_sigmoid", **params) -> Callable:
    """Return `x -> spikes` for a surrogate name (with params) or pass a callable through."""
    if callable(surrogate):
        if params:
            raise TypeError("surrogate params only apply to a surrogate given by name")
        return surrogate
    get_surrogate(surrogate)  # fail early on unknown names
    return functools.partial(spike, surrogate=surrogate, **params)


def lif_init_state(batch_size: int, neurons, dtype=jnp.float32):
    """Zero membrane `v` [batch, *neurons], the state of `lif_step`."""
    neurons = (neurons,) if isinstance(neurons, int) else tuple(neurons)
    return jnp.zeros((batch_size, *neurons), dtype)


def _check_reset(reset):
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")


def _apply_reset(v, s, threshold, reset, detach_reset):
    if detach_reset:
        s = lax.stop_gradient(s)
    if reset == "subtract":
        return v - threshold * s
    if reset == "zero":
        return v * (1 - s)
    return v


def lif_step(
    v,
    current_t,
    *,
    beta,
    threshold=1.0,
    reset: str = "subtract",
    surrogate: str | Callable = "fast_sigmoid",
    detach_reset: bool = False,
):
    """One LIF step: `(v_{t-1}, I_t) -> (v_t, s_t)`, the step form of `lif`.

    Args:
      v: membrane after the previous step's reset, [B, *N] (float32 recommended).
      current_t: input current I_t, [B, *N].
      beta, threshold: decay and threshold, scalars or broadcastable to [*N] (or [B, *N]).
      reset, surrogate, detach_reset: as in `lif`.

    Returns:
      `(v_t, s_t)`: the membrane after reset and the spikes, both [B, *N].
    """
    _check_reset(reset)
    fire = spike_fn(surrogate)
    u = beta * v + current_t
    s = fire(u - threshold)
    return _apply_reset(u, s, threshold, reset, detach_reset), s


# Jitted with the configuration static so that eager calls (notebooks, module init then
# apply) reuse one compiled scan per shape instead of compiling a fresh one on every call.
@functools.partial(jax.jit, static_argnames=("reset", "surrogate", "detach_reset"))
def _lif_scan(current_LxBxN, v0, beta, threshold, *, reset, surrogate, detach_reset):
    fire = spike_fn(surrogate)

    def body(v, i_t):
        u = beta * v + i_t
        s = fire(u - threshold)
        return _apply_reset(u, s, threshold, reset, detach_reset), s

    return lax.scan(body, v0, current_LxBxN)


def lif(
    current,
    *,
    beta,
    threshold=1.0,
    reset: str = "subtract",
    v0=None,
    surrogate: str | Callable = "fast_sigmoid",
    detach_reset: bool = False,
    return_final_state: bool = False,
    method: str = "scan",
):
    """Leaky integrate-and-fire neurons over axis 1; returns the spikes.

    Args:
      current: input current I, [B, L, *N], floating point. The membrane is carried in
        float32 (bfloat16 inputs are upcast) and the spikes come back in `current`'s dtype.
      beta: membrane decay in [0, 1] (1 gives integrate-and-fire), a scalar or an array
        broadcastable to [*N]; differentiable (learn it through a sigmoid, as in PLIF).
      threshold: firing threshold, a scalar or broadcastable to [*N].
      reset: "subtract" (soft reset), "zero" (hard reset) or "none".
      v0: initial membrane [B, *N]; zeros when None.
      surrogate: a name in `SURROGATES` or a callable `x -> spikes`
        (e.g. `spike_fn("sigmoid", alpha=4.0)`).
      detach_reset: stop the gradient through the reset (Zenke & Vogels 2021).
      return_final_state: also return the final membrane `v_L` [B, *N] (float32).
      method: "scan" (`lax.scan`, the reference, default), "pallas" (the kernel in
        `lib.kernels.lif`; needs a named surrogate, a Python-float threshold and a
        subtract/zero reset; falls back to "scan" without an accelerator) or "auto"
        ("pallas" where it applies on an accelerator, else "scan").

    Returns:
      spikes [B, L, *N] (0/1) and, if `return_final_state`, `(spikes, v_L)`.
    """
    check_rank("current", current, range(2, 8))
    _check_reset(reset)
    check_method(method, LIF_METHODS)
    if not jnp.issubdtype(current.dtype, jnp.floating):
        raise TypeError(f"`current` must be floating point, got {current.dtype}")
    bsz, _, *neurons = current.shape
    if v0 is None:
        v0 = jnp.zeros((bsz, *neurons), jnp.float32)
    elif tuple(jnp.shape(v0)) != (bsz, *neurons):
        raise ValueError(f"`v0` must have shape {(bsz, *neurons)}, got {jnp.shape(v0)}")
    beta = jnp.asarray(beta, jnp.float32)
    threshold_arr = jnp.asarray(threshold, jnp.float32)
    for name, arr in (("beta", beta), ("threshold", threshold_arr)):
        try:
            jnp.broadcast_shapes(arr.shape, (bsz, *neurons))
        except ValueError:
            raise ValueError(
                f"`{name}` with shape {arr.shape} does not broadcast to neurons {tuple(neurons)}"
            ) from None

    pallas_ok = (
        isinstance(surrogate, str)
        and isinstance(threshold, int | float)
        and reset in ("subtract", "zero")
        and not return_final_state
        and beta.ndim <= len(neurons)
    )
    use_pallas = method == "pallas" or (method == "auto" and on_accelerator())
    if use_pallas and pallas_ok and on_accelerator():
        from lib.kernels.lif import lif_pallas

        sg = get_surrogate(surrogate)
        grad = functools.partial(sg.grad, **sg.defaults)
        return lif_pallas(
            current,
            beta=beta,
            surrogate_grad=grad,
            threshold=float(threshold),
            reset=reset,
            v0=v0,
            detach_reset=detach_reset,
        )

    spike_fn(surrogate)  # unknown names fail here, with the registry's message
    current_LxBxN = jnp.moveaxis(current.astype(jnp.float32), 1, 0)
    v_final, spikes_LxBxN = _lif_scan(
        current_LxBxN, v0.astype(jnp.float32), beta, threshold_arr,
        reset=reset, surrogate=surrogate, detach_reset=bool(detach_reset),
    )  # fmt: skip
    spikes = jnp.moveaxis(spikes_LxBxN, 0, 1).astype(current.dtype)
    return (spikes, v_final) if return_final_state else spikes
