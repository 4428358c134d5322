"""Legendre Memory Unit memory (Voelker et al. 2019; parallel form: Chilkuri & Eliasmith 2021,
LMUFormer, Liu et al. 2024).

The LMU memory `m_t in R^N` (N = `order`) holds a sliding window of length `theta` of a scalar
signal `u`, compressed onto the first N shifted Legendre polynomials:
`theta dm/dt = A m + B u`, `A_ij = (2i+1) * (-1 if i < j else (-1)^(i-j+1))`,
`B_i = (2i+1) (-1)^i`; `u(t - r theta) ~= sum_i P_i(2r - 1) m_i(t)` for `r in [0, 1]`.
Zero-order-hold discretisation with step `dt` gives `A_bar = expm(A dt / theta)` and
`B_bar = A^{-1} (A_bar - I) B` (computed once, in float64, from an augmented exponential).

The memory is linear and time-invariant, so `m_t = sum_s H_s u_{t-s}` with the impulse response
`H_s = A_bar^s B_bar`; each input channel gets its own memory. Forms (`method=`):
- "ref": `lax.scan` of `m_t = A_bar m_{t-1} + B_bar u_t` (the definition);
- "direct": grouped `lax.conv_general_dilated` with the `[L, N]` kernel `H` (O(L^2 N));
- "fft": `irfft(rfft(u) rfft(H))`, zero-padded to a power of two >= 2L - 1 (O(L N log L)).
"auto" picks "fft" on an accelerator and "ref" on the CPU, where the scan was faster than
XLA's FFT at every size measured (orders 16-128, lengths 256-4096; direct is far slower).
An initial memory `m_0` adds `A_bar^{t+1} m_0`, computed per chunk from a short scan over
chunk starts.
Shapes: `u: [b, l, d]`, memory `m: [b, l, d, N]`, state `[b, d, N]`.

`lmu_cell` / `lmu_recurrent` are the original, nonlinear LMU with feedback from the hidden
state into the memory input (sequential only; no parallel form exists for it).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from lib.ops._checks import (
    check_floats,
    check_method,
    check_rank,
    check_shape,
    finite_or,
    on_accelerator,
)

METHODS = ("auto", "ref", "direct", "fft")


def legendre_memory_matrices(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time `(A: [N, N], B: [N])` of the LMU (before dividing by `theta`)."""
    if order < 1:
        raise ValueError(f"`order` must be >= 1, got {order}")
    i = np.arange(order)[:, None]
    j = np.arange(order)[None, :]
    a = (2 * i + 1) * np.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    b = (2 * np.arange(order) + 1) * (-1.0) ** np.arange(order)
    return a.astype(np.float64), b.astype(np.float64)


def lmu_discretize(order: int, theta: float, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold `(A_bar: [N, N], B_bar: [N])` for a window of `theta` steps of size `dt`."""
    if theta <= 0:
        raise ValueError(f"`theta` must be positive, got {theta}")
    a, b = legendre_memory_matrices(order)
    aug = np.zeros((order + 1, order + 1))
    aug[:order, :order] = a * dt / theta
    aug[:order, order] = b * dt / theta
    e = scipy.linalg.expm(aug)
    return e[:order, :order], e[:order, order]


def lmu_impulse_response(a_bar, b_bar, length: int) -> np.ndarray:
    """`H: [length, N]` with `H_s = A_bar^s B_bar` (float64)."""
    a_bar, b_bar = np.asarray(a_bar, np.float64), np.asarray(b_bar, np.float64)
    h = np.empty((length, b_bar.shape[0]))
    v = b_bar
    for s in range(length):
        h[s] = v
        v = a_bar @ v
    return h


def legendre_decoder(order: int, r) -> np.ndarray:
    """`P: [len(r), N]`, shifted Legendre values: `u(t - r theta) ~= P @ m_t` for `r in [0, 1]`."""
    r = np.atleast_1d(np.asarray(r, np.float64))
    return np.stack([np.polynomial.legendre.Legendre.basis(i)(2 * r - 1) for i in range(order)], -1)


def _impulse_response(a_bar, b_bar, length, dtype):
    """`H` in float64 NumPy for concrete matrices, else by a `lax.scan` (traced matrices)."""
    if not any(isinstance(v, jax.core.Tracer) for v in (a_bar, b_bar)):
        return jnp.asarray(lmu_impulse_response(a_bar, b_bar, length), dtype)
    a, b = jnp.asarray(a_bar, dtype), jnp.asarray(b_bar, dtype)
    _, h = jax.lax.scan(lambda v, _: (a @ v, v), b, None, length=length)
    return h


def _ref(u, a_bar, b_bar, m0):
    def step(m, u_t):  # m: [b, d, N], u_t: [b, d]
        m = jnp.einsum("bdm,nm->bdn", m, a_bar) + u_t[..., None] * b_bar
        return m, m

    final, m = jax.lax.scan(step, m0, jnp.swapaxes(u, 0, 1))
    return jnp.swapaxes(m, 0, 1), final


def _direct(u, h):
    b, l, d = u.shape
    n = h.shape[1]
    rhs = jnp.flip(h, 0)[:, None, None, :] * jnp.ones((1, 1, d, 1), h.dtype)  # [L, 1, d, N]
    out = jax.lax.conv_general_dilated(
        u,
        rhs.reshape(l, 1, d * n),
        window_strides=(1,),
        padding=[(l - 1, 0)],
        dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=d,
        precision=jax.lax.Precision.HIGHEST,
    )
    return out.reshape(b, l, d, n)


def _fft(u, h):
    l = u.shape[1]
    nfft = 1 << max(0, int(2 * l - 2).bit_length())
    u_f = jnp.fft.rfft(u, n=nfft, axis=1)  # [b, F, d]
    h_f = jnp.fft.rfft(h, n=nfft, axis=0)  # [F, N]
    return jnp.fft.irfft(u_f[..., None] * h_f[None, :, None, :], n=nfft, axis=1)[:, :l]


def _decay_initial(m0, a_bar, length, chunk=64):
    """`A_bar^{t+1} m0` for t < length, `[b, length, d, N]`, by chunks of `chunk` steps."""
    c = min(chunk, length)
    n_chunks = -(-length // c)
    powers = [a_bar]
    for _ in range(c - 1):
        powers.append(powers[-1] @ a_bar)
    powers = jnp.stack(powers)  # A^1 .. A^c
    a_c = powers[-1]

    def across(x, _):
        return jnp.einsum("bdm,nm->bdn", x, a_c), x

    _, starts = jax.lax.scan(across, m0, None, length=n_chunks)  # [C, b, d, N]: A^{kc} m0
    out = jnp.einsum("jnm,kbdm->bkjdn", powers, starts)
    b, _, _, d, n = out.shape
    return out.reshape(b, n_chunks * c, d, n)[:, :length]


def resolve_method(method: str, length: int) -> str:
    """The concrete form `method` stands for at sequence `length`."""
    check_method(method, METHODS)
    if method == "auto":
        return "fft" if on_accelerator() else "ref"
    return method


def lmu_memory(
    u: jax.Array,
    a_bar,
    b_bar,
    *,
    initial_state: jax.Array | None = None,
    return_final_state: bool = False,
    method: str = "auto",
):
    """The LMU's linear memory of each channel of `u`.

    Args:
      u: memory inputs `[b, l, d]` (one memory per channel).
      a_bar, b_bar: discretised system `[N, N]`, `[N]` (see `lmu_discretize`).
      initial_state: `m_0: [b, d, N]`; zeros when None.
      return_final_state: also return `m_L: [b, d, N]`.
      method: "ref", "direct", "fft" or "auto".

    Returns:
      `m: [b, l, d, N]` in `u.dtype` (float32 or wider inside), and the final state.
    """
    check_floats(u=u, initial_state=initial_state)
    check_rank("u", u, 3)
    check_rank("b_bar", b_bar, 1)
    n = np.shape(b_bar)[0]
    check_shape("a_bar", a_bar, (n, n))
    bsz, length, d = u.shape
    method = resolve_method(method, length)
    dtype = jnp.promote_types(u.dtype, jnp.float32)
    a = jnp.asarray(a_bar, dtype)
    bb = jnp.asarray(b_bar, dtype)
    x = u.astype(dtype)
    if initial_state is not None:
        check_shape("initial_state", initial_state, (bsz, d, n))
    m0 = None if initial_state is None else initial_state.astype(dtype)
    if length == 0:  # empty outputs; the final state is the initial one
        m = jnp.zeros((bsz, 0, d, n), u.dtype)
        final = jnp.zeros((bsz, d, n), dtype) if m0 is None else m0
        return (m, final) if return_final_state else m
    if method == "ref":
        m, final = _ref(x, a, bb, jnp.zeros((bsz, d, n), dtype) if m0 is None else m0)
    else:
        h = _impulse_response(a_bar, b_bar, length, dtype)
        if method == "direct":
            m = _direct(x, h)
        else:  # the FFT mixes all positions: inputs holding a NaN or inf take the direct form
            m = finite_or(lambda: _fft(x, h), lambda: _direct(x, h), x)
        if m0 is not None:
            m = m + _decay_initial(m0, a, length)
        final = m[:, -1]
    m = m.astype(u.dtype)
    return (m, final) if return_final_state else m


def lmu_memory_ref(u, a_bar, b_bar, **kwargs):
    """The definition of `lmu_memory` (sequential `lax.scan`)."""
    return lmu_memory(u, a_bar, b_bar, method="ref", **kwargs)


class LMUCellState(NamedTuple):
    """State of the original (nonlinear) LMU cell: hidden `h: [b, d_h]`, memory `m: [b, N]`."""

    h: jax.Array
    m: jax.Array


def lmu_cell(
    state: LMUCellState,
    x_t: jax.Array,
    weights: dict,
    a_bar,
    b_bar,
    *,
    activation: Callable = jnp.tanh,
):
    """One step of Voelker et al.'s LMU with feedback (a scalar memory input `u`):

    `u_t = e_x x_t + e_h h_{t-1} + e_m m_{t-1}`, `m_t = A_bar m_{t-1} + B_bar u_t`,
    `h_t = act(W_x x_t + W_h h_{t-1} + W_m m_t)`.

    Args:
      state: `LMUCellState(h: [b, d_h], m: [b, N])`.
      x_t: input `[b, d_in]`.
      weights: `e_x: [d_in]`, `e_h: [d_h]`, `e_m: [N]`, `W_x: [d_in, d_h]`, `W_h: [d_h, d_h]`,
        `W_m: [N, d_h]` (the feedback makes this form sequential only).
      a_bar, b_bar: discretised system (see `lmu_discretize`).
      activation: the hidden nonlinearity (swappable).

    Returns:
      `(new_state, h_t)`.
    """
    dtype = state.h.dtype
    w = {k: jnp.asarray(v, dtype) for k, v in weights.items()}
    x_t = x_t.astype(dtype)
    u = x_t @ w["e_x"] + state.h @ w["e_h"] + state.m @ w["e_m"]  # [b]
    m = state.m @ jnp.asarray(a_bar, dtype).T + u[:, None] * jnp.asarray(b_bar, dtype)
    h = activation(x_t @ w["W_x"] + state.h @ w["W_h"] + m @ w["W_m"])
    return LMUCellState(h, m), h


def lmu_recurrent(
    x: jax.Array,
    weights: dict,
    a_bar,
    b_bar,
    *,
    initial_state: LMUCellState | None = None,
    return_final_state: bool = False,
    activation: Callable = jnp.tanh,
):
    """The original LMU (with `h -> u` feedback) over axis 1, a `lax.scan` of `lmu_cell`.

    Args:
      x: inputs `[b, l, d_in]`; weights, a_bar, b_bar, activation: as `lmu_cell`.
      initial_state: `LMUCellState`; zeros when None.
      return_final_state: also return the final `LMUCellState`.

    Returns:
      `h: [b, l, d_h]` in `x.dtype` (and the final state).
    """
    check_rank("x", x, 3)
    check_shape("weights['W_x']", weights["W_x"], (x.shape[-1], None))
    d_h, n = weights["W_x"].shape[1], np.shape(b_bar)[0]
    check_shape("weights['W_m']", weights["W_m"], (n, d_h))
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    if initial_state is None:
        initial_state = LMUCellState(
            jnp.zeros((x.shape[0], d_h), dtype), jnp.zeros((x.shape[0], n), dtype)
        )
    else:
        check_shape("initial_state.h", initial_state.h, (x.shape[0], d_h))
        check_shape("initial_state.m", initial_state.m, (x.shape[0], n))
        initial_state = LMUCellState(*(s.astype(dtype) for s in initial_state))
    step = lambda s, x_t: lmu_cell(s, x_t, weights, a_bar, b_bar, activation=activation)
    final, h = jax.lax.scan(step, initial_state, jnp.swapaxes(x, 0, 1))
    h = jnp.swapaxes(h, 0, 1).astype(x.dtype)
    return (h, final) if return_final_state else h


def lmu_memory_step(m: jax.Array, u_t: jax.Array, a_bar, b_bar):
    """Streaming memory: `(m: [b, d, N], u_t: [b, d]) -> (m, m)`."""
    a = jnp.asarray(a_bar, m.dtype)
    m = jnp.einsum("bdm,nm->bdn", m, a) + u_t.astype(m.dtype)[..., None] * jnp.asarray(
        b_bar, m.dtype
    )
    return m, m
