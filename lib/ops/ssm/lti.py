"""Diagonal state-space layers: S4D (Gu et al. 2022), S5 (Smith et al. 2023), LRU (Orvieto et al.
2023) and Griffin's RG-LRU (De et al. 2024), as pure functions over `linear_recurrence`.

Shape letters: b batch, l length, d channels (S4D: one SISO system of n states per channel),
h input/output features and p states (S5, LRU: one MIMO system), n states per channel.

Every op has the forms of `lib.ops.scan.linear_recurrence` through `method=` ("scan" is the
reference), a step form with an explicit state, and `initial_state` / `return_final_state`.
S4D also has a convolutional form, "fft": the kernel K_k = Re(sum_n C B_bar Lambda_bar^k)
applied with an FFT (O(l log l), no state over time; the initial state enters in closed form).
Initialisers (HiPPO-LegS, its normal/diagonal part for S5, S4D-Lin/Inv, the LRU ring) live
here too, as plain functions returning arrays.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lib.ops._checks import (
    check_float,
    check_floats,
    check_method,
    check_rank,
    check_shape,
    finite_or,
)
from lib.ops.scan.linear import linear_recurrence, segment_cut
from lib.ops.scan.linear import resolve_method as scan_resolve

METHODS = ("auto", "scan", "associative", "chunked")


class DiagState(NamedTuple):
    """Step-form state of S4D ([b, d, n]), S5/LRU ([b, p]) (complex64) or RG-LRU ([b, d])."""

    h: jax.Array


# --------------------------------------------------------------------------- initialisers


def hippo_legs(n: int) -> np.ndarray:
    """The HiPPO-LegS state matrix A [n, n] (negative: dx/dt = A x + B u)."""
    p = np.sqrt(1 + 2 * np.arange(n))
    a = np.tril(p[:, None] * p[None, :]) - np.diag(np.arange(n))
    return -a


def hippo_legs_normal_eig(n: int):
    """Eigen-decomposition of HiPPO-LegS's normal part (S5's init).

    A = A_normal - P P^T with P_k = sqrt(k + 1/2); A_normal = -I/2 + skew-symmetric, so its
    eigenvalues are -1/2 + i w. Returns (Lambda [n] complex64, V [n, n] complex64 unitary).
    """
    p = np.sqrt(np.arange(n) + 0.5)
    normal = hippo_legs(n) + p[:, None] * p[None, :]
    w, v = np.linalg.eigh(normal * -1j)  # Hermitian: -i * skew-symmetric
    lam = np.mean(np.diag(normal)) + 1j * w
    return jnp.asarray(lam, jnp.complex64), jnp.asarray(v, jnp.complex64)


def s4d_lin_init(n: int) -> jax.Array:
    """S4D-Lin: Lambda_k = -1/2 + i pi k, k < n."""
    return jnp.asarray(-0.5 + 1j * np.pi * np.arange(n), jnp.complex64)


def s4d_inv_init(n: int) -> jax.Array:
    """S4D-Inv: Lambda_k = -1/2 + i n/pi (n/(2k+1) - 1)."""
    k = np.arange(n)
    return jnp.asarray(-0.5 + 1j * n / np.pi * (n / (2 * k + 1) - 1), jnp.complex64)


def lru_ring_init(key, p: int, r_min: float = 0.0, r_max: float = 1.0, max_phase: float = 6.28):
    """LRU eigenvalues uniform on a ring: |lambda| in [r_min, r_max], phase in [0, max_phase].

    Returns (nu_log, theta_log, gamma_log), each [p]: lambda = exp(-exp(nu_log) + i
    exp(theta_log)) and gamma = exp(gamma_log) = sqrt(1 - |lambda|^2).
    """
    k1, k2 = jax.random.split(key)
    u1 = jax.random.uniform(k1, (p,))
    u2 = jax.random.uniform(k2, (p,))
    nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2))
    theta_log = jnp.log(max_phase * u2)
    gamma_log = 0.5 * jnp.log(-jnp.expm1(-2 * jnp.exp(nu_log)))
    return nu_log, theta_log, gamma_log


# --------------------------------------------------------------------------- discretisation


def discretize(Lambda, B, dt, method: str = "zoh"):
    """Continuous diagonal (Lambda, B) -> discrete (Lambda_bar, B_bar) with step dt.

    zoh: Lambda_bar = exp(dt Lambda), B_bar = (Lambda_bar - 1) / Lambda * B.
    bilinear: Lambda_bar = (1 + dt Lambda/2) / (1 - dt Lambda/2), B_bar = dt / (1 - dt Lambda/2) B.

    Args:
      Lambda: [..., n] complex; dt: broadcastable to Lambda; B: Lambda's shape, optionally
        followed by input axes (S5: Lambda [p], B [p, h]).
    """
    Lambda = Lambda.astype(jnp.complex64)
    dt = jnp.asarray(dt, jnp.float32)
    if method == "zoh":
        lam_bar = jnp.exp(dt * Lambda)
        factor = (lam_bar - 1) / Lambda
    elif method == "bilinear":
        denom = 1 - dt * Lambda / 2
        lam_bar = (1 + dt * Lambda / 2) / denom
        factor = dt / denom
    else:
        raise ValueError(f"unknown discretization={method!r}; expected 'zoh' or 'bilinear'")
    factor = jnp.broadcast_to(factor, lam_bar.shape)
    factor = factor.reshape(factor.shape + (1,) * (B.ndim - factor.ndim))
    return lam_bar, factor * B


_FFT_MAX_ELEMENTS = 2**24  # the FFT form materialises Lambda_bar^k as [d, n, l] complex64
_FFT_MIN_LENGTH = 512


def resolve_s4d_method(method: str, length: int, states: int = 1, segments: bool = False) -> str:
    """The form `method` stands for in `ssm_s4d` ("fft" or a scan form).

    Args:
      length: l.  states: d * n.  segments: whether `segment_ids` are given (no "fft" then).
    """
    check_method(method, METHODS + ("fft",))
    if method != "auto":
        return method
    # On the CPU the FFT form wins from a few hundred steps (2-4x at 2048) and the loop below
    # (benchmarks/results/mixers_cpu.md), as long as its [d, n, l] Vandermonde fits the budget.
    if not segments and length >= _FFT_MIN_LENGTH and states * length <= _FFT_MAX_ELEMENTS:
        return "fft"
    return scan_resolve("auto", length, complex_input=True)


def _out(y, u, D, dtype):
    if D is not None:
        y = y + u.astype(jnp.float32) * D.astype(jnp.float32)
    return y.astype(dtype)


# --------------------------------------------------------------------------- S4D


def _s4d_fft(u, lam_bar, b_bar, C, h0):
    """Convolutional form: y = K * u (causal, via rfft) + the decayed initial state."""
    b, length, d = u.shape
    log_lam = jnp.log(lam_bar)  # [d, n]
    powers = jnp.exp(log_lam[..., None] * jnp.arange(length))  # [d, n, l]: lam_bar^k
    kernel = jnp.real(jnp.einsum("dn,dnk->dk", C * b_bar, powers))  # [d, l]
    nfft = 2 * length
    uf = jnp.fft.rfft(u.astype(jnp.float32), nfft, axis=1)
    kf = jnp.fft.rfft(kernel, nfft, axis=1).T  # [nfft/2+1, d]
    y = jnp.fft.irfft(uf * kf, nfft, axis=1)[:, :length]
    # Initial state: y_t += Re(C lam_bar^{t+1} h0); final h_L = lam^L h0 + sum lam^{L-1-t} Bu_t.
    lam_next = powers * lam_bar[..., None]  # lam_bar^{k+1}
    y = y + jnp.real(jnp.einsum("dn,dnk,bdn->bkd", C, lam_next, h0))
    h_last = lam_next[..., -1] * h0 + jnp.einsum(
        "dn,dnk,bkd->bdn", b_bar, jnp.flip(powers, -1), u.astype(jnp.complex64)
    )
    return y, h_last


def ssm_s4d(
    u,
    Lambda,
    B,
    C,
    log_dt,
    D=None,
    *,
    discretization: str = "zoh",
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    method: str = "auto",
):
    """S4D: one diagonal SISO SSM of n complex states per channel.

    x_t = Lambda_bar x_{t-1} + B_bar u_t (per channel d), y_t = Re(C . x_t) + D u_t.

    Args:
      u: [b, l, d] real.  Lambda, B, C: [d, n] complex (Re Lambda < 0).  log_dt: [d].
      D: optional [d].  discretization: "zoh" or "bilinear".
      initial_state: [b, d, n] complex.  segment_ids: optional [b, l] (not with "fft").
      method: "auto", "scan", "associative", "chunked" or "fft".

    Returns:
      y [b, l, d] in u's dtype; and the final state [b, d, n] complex64 when asked.
    """
    check_floats(u=u, log_dt=log_dt, D=D)
    check_floats(complex_ok=True, Lambda=Lambda, B=B, C=C, initial_state=initial_state)
    check_rank("u", u, 3)
    b, length, d = u.shape
    check_rank("Lambda", Lambda, 2)
    check_shape("Lambda", Lambda, (d, None))
    for name, v in (("B", B), ("C", C)):
        check_shape(name, v, Lambda.shape)
    check_shape("log_dt", log_dt, (d,))
    method = resolve_s4d_method(method, length, Lambda.size, segment_ids is not None)
    lam_bar, b_bar = discretize(Lambda, B, jnp.exp(log_dt)[:, None], discretization)
    C = C.astype(jnp.complex64)
    n = Lambda.shape[1]
    h0 = jnp.zeros((b, d, n), jnp.complex64) if initial_state is None else initial_state
    check_shape("initial_state", h0, (b, d, n))
    h0 = h0.astype(jnp.complex64)

    def scan_form(method):
        bu = u.astype(jnp.float32)[..., None] * b_bar  # [b, l, d, n]
        x, h_last = linear_recurrence(
            lam_bar, bu, h0, method=method, segment_ids=segment_ids, return_final_state=True
        )
        return jnp.real(jnp.einsum("bldn,dn->bld", x, C)), h_last

    if method == "fft":
        if segment_ids is not None:
            raise ValueError("method='fft' does not support `segment_ids`; use a scan form")
        # The FFT mixes all positions: inputs holding a NaN or inf take the scan instead.
        y, h_last = (
            scan_form("scan")
            if length == 0
            else finite_or(
                lambda: _s4d_fft(u, lam_bar, b_bar, C, h0), lambda: scan_form("scan"), u, h0
            )
        )
    else:
        y, h_last = scan_form(method)
    y = _out(y, u, D, u.dtype)
    return (y, h_last) if return_final_state else y


def ssm_s4d_step(state: DiagState, u_t, Lambda, B, C, log_dt, D=None, *, discretization="zoh"):
    """One step of `ssm_s4d`: u_t [b, d], state h [b, d, n] -> `(state, y_t [b, d])`."""
    lam_bar, b_bar = discretize(Lambda, B, jnp.exp(log_dt)[:, None], discretization)
    h = lam_bar * state.h + u_t.astype(jnp.float32)[..., None] * b_bar
    y = jnp.real(jnp.einsum("bdn,dn->bd", h, C.astype(jnp.complex64)))
    return DiagState(h), _out(y, u_t, D, u_t.dtype)


# --------------------------------------------------------------------------- S5 and LRU


def _mimo(u, lam_bar, b_bar, C, D, h0, segment_ids, method, return_final_state):
    """x_t = lam_bar x_{t-1} + B_bar u_t (p states), y_t = Re(C x_t) + D u_t."""
    bsz = u.shape[0]
    p = lam_bar.shape[0]
    h0 = jnp.zeros((bsz, p), jnp.complex64) if h0 is None else h0
    check_shape("initial_state", h0, (bsz, p))
    bu = jnp.einsum("blh,ph->blp", u.astype(jnp.complex64), b_bar)
    x, h_last = linear_recurrence(
        lam_bar,
        bu,
        h0.astype(jnp.complex64),
        method=method,
        segment_ids=segment_ids,
        return_final_state=True,
    )
    y = _out(jnp.real(jnp.einsum("blp,hp->blh", x, C.astype(jnp.complex64))), u, D, u.dtype)
    return (y, h_last) if return_final_state else y


def _check_mimo(u, B, C, p):
    check_float("u", u)
    check_floats(complex_ok=True, B=B, C=C)
    check_rank("u", u, 3)
    h = u.shape[2]
    check_shape("B", B, (p, h))
    check_shape("C", C, (h, p))


def ssm_s5(
    u,
    Lambda,
    B,
    C,
    log_dt,
    D=None,
    *,
    discretization: str = "zoh",
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    method: str = "auto",
):
    """S5: one diagonal MIMO SSM with p complex states shared by all h features.

    Args:
      u: [b, l, h].  Lambda: [p] complex.  B: [p, h] complex.  C: [h, p] complex.
      log_dt: [p] (one time scale per state, as in S5).  D: optional [h].
      initial_state: [b, p] complex.  Other arguments as in `ssm_s4d` (no "fft").

    Returns:
      y [b, l, h]; and the final state [b, p] complex64 when asked.
    """
    check_rank("Lambda", Lambda, 1)
    p = Lambda.shape[0]
    _check_mimo(u, B, C, p)
    check_shape("log_dt", log_dt, (p,))
    check_method(method, METHODS)
    lam_bar, b_bar = discretize(Lambda, B.astype(jnp.complex64), jnp.exp(log_dt), discretization)
    return _mimo(u, lam_bar, b_bar, C, D, initial_state, segment_ids, method, return_final_state)


def lru_lambda(nu_log, theta_log):
    """LRU's exponential parametrisation: lambda = exp(-exp(nu_log) + i exp(theta_log))."""
    return jnp.exp(-jnp.exp(nu_log) + 1j * jnp.exp(theta_log)).astype(jnp.complex64)


def ssm_lru(
    u,
    nu_log,
    theta_log,
    B,
    C,
    D=None,
    gamma_log=None,
    *,
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    method: str = "auto",
):
    """LRU: x_t = lambda x_{t-1} + gamma (B u_t), y_t = Re(C x_t) + D u_t.

    Args:
      u: [b, l, h].  nu_log, theta_log: [p] (see `lru_lambda`).  B: [p, h] complex.
      C: [h, p] complex.  D: optional [h].  gamma_log: optional [p] input normalisation
        (log of sqrt(1 - |lambda|^2) at init).  Others as in `ssm_s5`.
    """
    check_rank("nu_log", nu_log, 1)
    p = nu_log.shape[0]
    check_shape("theta_log", theta_log, (p,))
    _check_mimo(u, B, C, p)
    check_method(method, METHODS)
    b_bar = B.astype(jnp.complex64)
    if gamma_log is not None:
        check_shape("gamma_log", gamma_log, (p,))
        b_bar = jnp.exp(gamma_log)[:, None] * b_bar
    lam = lru_lambda(nu_log, theta_log)
    return _mimo(u, lam, b_bar, C, D, initial_state, segment_ids, method, return_final_state)


def mimo_step(state: DiagState, u_t, lam_bar, b_bar, C, D=None):
    """One step of S5/LRU given discrete (lam_bar [p], b_bar [p, h]): u_t [b, h]."""
    h = lam_bar * state.h + jnp.einsum("bh,ph->bp", u_t.astype(jnp.complex64), b_bar)
    y = jnp.real(jnp.einsum("bp,hp->bh", h, C.astype(jnp.complex64)))
    return DiagState(h), _out(y, u_t, D, u_t.dtype)


# --------------------------------------------------------------------------- RG-LRU


def _rglru_terms(x, gate_a, gate_x, a_param, c):
    """log a_t = c r_t log sigmoid(Lambda); input sqrt(1 - a_t^2) * i_t * x_t (float32)."""
    log_a = (
        -c
        * jax.nn.sigmoid(gate_a.astype(jnp.float32))
        * jax.nn.softplus(-a_param.astype(jnp.float32))
    )
    # sqrt(1 - a^2) = sqrt(-expm1(2 log a)); floored so its gradient stays finite at a -> 1.
    mult = jnp.sqrt(jnp.maximum(-jnp.expm1(2 * log_a), 1e-8))
    return log_a, mult, jax.nn.sigmoid(gate_x.astype(jnp.float32)) * x.astype(jnp.float32)


def ssm_rglru(
    x,
    gate_a,
    gate_x,
    a_param,
    *,
    c: float = 8.0,
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    method: str = "auto",
):
    """Griffin's real-gated LRU: h_t = a_t h_{t-1} + sqrt(1 - a_t^2) (i_t x_t).

    a_t = sigmoid(Lambda)^(c r_t), computed in log space; r_t = sigmoid(gate_a),
    i_t = sigmoid(gate_x). At the first position of a segment the input is not normalised
    (the state starts there), as in Griffin.

    Args:
      x, gate_a, gate_x: [b, l, d] (gates are pre-sigmoid logits).  a_param: Lambda [d].
      c: the fixed exponent scale (8 in Griffin).  initial_state: [b, d].
      segment_ids: optional [b, l]; method as in `linear_recurrence`.

    Returns:
      h [b, l, d] in x's dtype; and the final state [b, d] float32 when asked.
    """
    check_floats(x=x, gate_a=gate_a, gate_x=gate_x, a_param=a_param, initial_state=initial_state)
    check_rank("x", x, 3)
    check_shape("gate_a", gate_a, x.shape)
    check_shape("gate_x", gate_x, x.shape)
    check_shape("a_param", a_param, (x.shape[2],))
    check_method(method, METHODS)
    if initial_state is not None:
        check_shape("initial_state", initial_state, (x.shape[0], x.shape[2]))
    log_a, mult, gx = _rglru_terms(x, gate_a, gate_x, a_param, c)
    cut = segment_cut(segment_ids, None, length=x.shape[1])
    if cut is not None:
        mult = jnp.where(cut[..., None], 1.0, mult)
    h, h_last = linear_recurrence(
        jnp.exp(log_a), mult * gx, initial_state, method=method, reset=cut,
        return_final_state=True,
    )  # fmt: skip
    h = h.astype(x.dtype)
    return (h, h_last) if return_final_state else h


def ssm_rglru_step(state: DiagState, x_t, gate_a_t, gate_x_t, a_param, *, c: float = 8.0):
    """One step of `ssm_rglru`: x_t, gates [b, d]; state h [b, d] float32."""
    log_a, mult, gx = _rglru_terms(x_t, gate_a_t, gate_x_t, a_param, c)
    h = jnp.exp(log_a) * state.h + mult * gx
    return DiagState(h), h.astype(x_t.dtype)
