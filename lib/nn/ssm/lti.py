"""Diagonal SSM mixers: S4D (Gu et al. 2022), S5 (Smith et al. 2023), LRU (Orvieto et al. 2023),
RG-LRU and the Griffin recurrent block (De et al. 2024).

Registered as "s4d", "s5", "lru", "rglru" and "griffin". Complex parameters are stored as
real and imaginary parts (optimisers see real arrays); decay rates are stored as logs so the
continuous-time eigenvalues keep Re(Lambda) < 0 (stable) whatever the update.
"""

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.quant.layers import QuantConfig, as_quant_config, check_carry_quant_method, quant_dense
from lib.nn.registry import register_mixer
from lib.ops.conv import causal as conv_ops
from lib.ops.quant import scan as quant_ops
from lib.ops.scan.linear import linear_recurrence
from lib.ops.ssm import lti as ops


def _log_uniform(lo: float, hi: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, math.log(lo), math.log(hi))

    return init


def _const(value):
    return lambda key, shape, dtype=jnp.float32: jnp.broadcast_to(jnp.asarray(value, dtype), shape)


def _normal(std):
    return lambda key, shape, dtype=jnp.float32: std * jax.random.normal(key, shape, dtype)


class _Recurrent(nn.Module):
    """Shared protocol plumbing: `step` runs `__call__` on one token unless overridden."""

    def step(self, state, x_BxD):
        """One token: `(state, [b, dim]) -> (state, [b, dim])`."""
        y, state = self(x_BxD[:, None], state=state, return_state=True)
        return state, y[:, 0]


def _fq_rows(q: QuantConfig, m):
    """Fake-quantized `m: [rows, cols]` (complex: real and imaginary parts apart) with one
    scale per row under a per-column weight spec (the map is `m^T` as a Dense kernel)."""
    fq = lambda r: q.weights(r.T).T
    if jnp.iscomplexobj(m):
        return (fq(jnp.real(m)) + 1j * fq(jnp.imag(m))).astype(jnp.complex64)
    return fq(m)


def _complex_carry_fn(q: QuantConfig, default_range: float):
    """The state quantizer of a complex carry (real and imaginary parts on the fixed grid),
    or None for a float state."""
    fn = q.state_fn(default_range)
    if fn is None:
        return None
    return lambda h: (fn(jnp.real(h)) + 1j * fn(jnp.imag(h))).astype(jnp.complex64)


def _quant_prologue(quant, x_BxLxD, ssm: dict, default_range: float):
    """What `quant` does before a diagonal SSM (S4D, S5, LRU) runs: `(u, ssm, carry_fn)`.

    `u` is the input fake-quantized per token, `ssm` the parameter dict with `B` and `C`
    fake-quantized per row (`B: [states, features]` and `C: [features, states]` are the
    transposed Dense kernels, so a per-column weight spec is per row here; real and imaginary
    parts apart), `carry_fn` the complex state quantizer on the fixed grid of
    `[-r, r]`, `r = state_range or default_range` (None: float state). `quant=None` returns
    the inputs unchanged and no quantizer."""
    q = as_quant_config(quant)
    if q is None:
        return x_BxLxD, ssm, None
    ssm = dict(ssm, B=_fq_rows(q, ssm["B"]), C=_fq_rows(q, ssm["C"]))
    return q.inputs(x_BxLxD), ssm, _complex_carry_fn(q, default_range)


class _DiagSSM(_Recurrent):
    """S4D and S5: a discretized diagonal SSM, float or under `quant` (the attributes they
    share; each documents them). `dtype`, `param_dtype` (`lib.nn.precision`): the SSM runs
    in float32/complex64 whatever `dtype`; its output (and S4D's read-out) is in `dtype`."""

    dim: int
    state_dim: int = 32
    discretization: str = "zoh"
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def _diag_ssm(self, x_BxLxD, state, float_op, carry_scan, default_range: float):
        """`(y, final h)`: `float_op` (the `lib.ops.ssm.lti` form) for a float state, else
        `carry_scan` (sequential, the state rounded after every step; only "auto"/"scan"),
        on the inputs and `B`, `C` that `quant` gives (see `_quant_prologue`)."""
        h0 = None if state is None else state.h
        x_BxLxD = precision.to_float32(x_BxLxD)
        u, ssm, carry_fn = _quant_prologue(self.quant, x_BxLxD, self._ssm(), default_range)
        if carry_fn is None:
            return float_op(
                u, **ssm, discretization=self.discretization, initial_state=h0,
                return_final_state=True, method=self.method,
            )  # fmt: skip
        check_carry_quant_method(self.method, "scan", type(self).__name__)
        lam, log_dt = ssm["Lambda"], ssm["log_dt"]
        # S4D: one step per channel `[d]`, shared by its modes `[d, n]`; S5: one per state
        dt = jnp.exp(log_dt).reshape(log_dt.shape + (1,) * (lam.ndim - log_dt.ndim))
        lam_bar, b_bar = ops.discretize(lam, ssm["B"], dt, self.discretization)
        return carry_scan(u, lam_bar, b_bar, ssm["C"], ssm["D"], h0, carry_fn)


@register_mixer("s4d")
class S4D(_DiagSSM):
    """S4D layer: per-channel diagonal SSM (n complex modes), GELU, then a Dense mix.

    Attributes:
      dim: width (channels d).
      state_dim: complex modes n per channel.
      lambda_init: "lin" (S4D-Lin) or "inv" (S4D-Inv) for Lambda.
      discretization: "zoh" or "bilinear".
      dt_min, dt_max: log-uniform range of the initial step sizes.
      method: `ssm_s4d` method ("auto", "scan", "associative", "chunked", "fft").
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits, as `LRU`'s: the inputs
        (per token), `B` and `C` (one scale per channel), the read-out Dense's kernel, and
        the state `[b, dim, n]` after every step (real and imaginary parts on the fixed grid
        of `[-r, r]`, `r = state_range or S4D_STATE_RANGE`). A quantized state is sequential
        ("auto" or "scan"; the parallel forms and "fft" are refused).
    """

    lambda_init: str = "lin"

    def setup(self):
        d, n = self.dim, self.state_dim
        if self.lambda_init not in ("lin", "inv"):
            raise ValueError(f"`lambda_init` must be 'lin' or 'inv', got {self.lambda_init!r}")
        lam = ops.s4d_lin_init(n) if self.lambda_init == "lin" else ops.s4d_inv_init(n)
        self.log_neg_re = precision.param(
            self, "log_neg_re", _const(jnp.log(-jnp.real(lam))), (d, n)
        )
        self.im = precision.param(self, "im", _const(jnp.imag(lam)), (d, n))
        self.B_re = precision.param(self, "B_re", nn.initializers.ones, (d, n))
        self.B_im = precision.param(self, "B_im", nn.initializers.zeros, (d, n))
        self.C_re = precision.param(self, "C_re", _normal(0.5**0.5), (d, n))
        self.C_im = precision.param(self, "C_im", _normal(0.5**0.5), (d, n))
        self.log_dt = precision.param(self, "log_dt", _log_uniform(self.dt_min, self.dt_max), (d,))
        self.D = precision.param(self, "D", nn.initializers.ones, (d,))
        self.out = quant_dense(self.quant, d, name="out", **precision.precision_kwargs(self))

    def _ssm(self):
        lam = -jnp.exp(self.log_neg_re) + 1j * self.im
        # S4D keeps n/2 modes of conjugate pairs: y = 2 Re(C x); the factor is folded in here.
        return dict(Lambda=lam, B=self.B_re + 1j * self.B_im, C=2 * (self.C_re + 1j * self.C_im),
                    log_dt=self.log_dt, D=self.D)  # fmt: skip

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """[b, l, dim] -> [b, l, dim]; state `DiagState(h [b, dim, n] complex64)`."""
        y, h = self._diag_ssm(x_BxLxD, state, ops.ssm_s4d, _s4d_carry_quant, S4D_STATE_RANGE)
        out = self.out(jax.nn.gelu(y.astype(precision.result_dtype(self, x_BxLxD))))
        return (out, ops.DiagState(h)) if return_state else out

    def init_state(self, batch_size, dtype=jnp.float32):
        """Zero state (complex64 whatever `dtype`)."""
        return ops.DiagState(jnp.zeros((batch_size, self.dim, self.state_dim), jnp.complex64))

    def step(self, state, x_BxD):
        if self.quant is not None:  # the full form on one token: the same rounding per step
            return super().step(state, x_BxD)
        state, y = ops.ssm_s4d_step(
            state, precision.to_float32(x_BxD), **self._ssm(), discretization=self.discretization
        )
        return state, self.out(jax.nn.gelu(y.astype(precision.result_dtype(self, x_BxD))))


@register_mixer("s5")
class S5(_DiagSSM):
    """S5 layer: one MIMO diagonal SSM with p states, initialised from HiPPO-LegS's normal part.

    Attributes:
      dim: features h.  state_dim: p (the HiPPO matrix is split into `blocks` blocks).
      discretization, dt_min, dt_max, method: as in `S4D` (no "fft").
      quant: as `LRU`'s (inputs, `B` and `C` per row, state `[b, p]` on the fixed grid of
        `[-r, r]`, `r = state_range or S5_STATE_RANGE`; `Lambda`, `dt` and `D` stay float).
    """

    blocks: int = 1

    def setup(self):
        h, p = self.dim, self.state_dim
        if p % self.blocks:
            raise ValueError(f"blocks={self.blocks} must divide state_dim={p}")
        lam, v = ops.hippo_legs_normal_eig(p // self.blocks)
        lam = jnp.tile(lam, self.blocks)
        v = jax.scipy.linalg.block_diag(*([v] * self.blocks))
        self.log_neg_re = precision.param(self, "log_neg_re", _const(jnp.log(-jnp.real(lam))), (p,))
        self.im = precision.param(self, "im", _const(jnp.imag(lam)), (p,))

        # B = V^H B_0 and C = C_0 V for Gaussian B_0, C_0: the SSM in HiPPO coordinates.
        def b_init(key, shape):
            b0 = jax.random.normal(key, (p, h)) / math.sqrt(h)
            b = v.conj().T @ b0
            return jnp.stack([jnp.real(b), jnp.imag(b)])

        def c_init(key, shape):
            c0 = jax.random.normal(key, (h, p)) / math.sqrt(p)
            c = c0 @ v
            return jnp.stack([jnp.real(c), jnp.imag(c)])

        self.B = precision.param(self, "B", b_init, (2, p, h))
        self.C = precision.param(self, "C", c_init, (2, h, p))
        self.log_dt = precision.param(self, "log_dt", _log_uniform(self.dt_min, self.dt_max), (p,))
        self.D = precision.param(self, "D", _normal(1.0), (h,))

    def _ssm(self):
        lam = -jnp.exp(self.log_neg_re) + 1j * self.im
        return dict(Lambda=lam, B=self.B[0] + 1j * self.B[1], C=self.C[0] + 1j * self.C[1],
                    log_dt=self.log_dt, D=self.D)  # fmt: skip

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """[b, l, dim] -> [b, l, dim]; state `DiagState(h [b, p] complex64)`."""
        y, h = self._diag_ssm(x_BxLxD, state, ops.ssm_s5, _mimo_carry_quant, S5_STATE_RANGE)
        y = y.astype(precision.result_dtype(self, x_BxLxD))
        return (y, ops.DiagState(h)) if return_state else y

    def init_state(self, batch_size, dtype=jnp.float32):
        return ops.DiagState(jnp.zeros((batch_size, self.state_dim), jnp.complex64))


@register_mixer("lru")
class LRU(_Recurrent):
    """Linear Recurrent Unit: exponential parametrisation, ring init, gamma normalisation.

    Attributes:
      dim: features h.  state_dim: p.  r_min, r_max, max_phase: the ring of initial
      eigenvalues.  method: `linear_recurrence` method.
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits: fake-quantizes the
        inputs (per token), the real and imaginary parts of `B` and `C` (weight spec, per
        output row of the map) and of the state `h_t` after every step (state spec, fixed
        grid of `[-r, r]`, `r = state_range or LRU_STATE_RANGE`). The eigenvalues `lambda`,
        `gamma` and `D` stay float (decays and skips, like biases). A quantized state makes
        the recurrence nonlinear: `method="auto"` then runs the sequential "scan"; the
        parallel forms are refused.
      dtype, param_dtype: output and parameter dtypes (`lib.nn.precision`); the recurrence
        runs in complex64 whatever `dtype`.
    """

    dim: int
    state_dim: int = 32
    r_min: float = 0.0
    r_max: float = 1.0
    max_phase: float = 2 * math.pi
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        h, p = self.dim, self.state_dim

        def ring_init(key, shape):  # one key, so gamma matches the sampled lambda
            nu, theta, gamma = ops.lru_ring_init(key, p, self.r_min, self.r_max, self.max_phase)
            return jnp.stack([nu, theta, gamma])

        # rows: nu_log, theta_log, gamma_log
        self.ring = precision.param(self, "ring", ring_init, (3, p))
        self.B = precision.param(self, "B", _normal(1 / math.sqrt(2 * h)), (2, p, h))
        self.C = precision.param(self, "C", _normal(1 / math.sqrt(p)), (2, h, p))
        self.D = precision.param(self, "D", _normal(1.0), (h,))

    def _ssm(self):
        nu_log, theta_log, gamma_log = self.ring
        return dict(nu_log=nu_log, theta_log=theta_log, B=self.B[0] + 1j * self.B[1],
                    C=self.C[0] + 1j * self.C[1], D=self.D, gamma_log=gamma_log)  # fmt: skip

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """[b, l, dim] -> [b, l, dim]; state `DiagState(h [b, p] complex64)`."""
        h0, out_dtype = None if state is None else state.h, precision.result_dtype(self, x_BxLxD)
        x_BxLxD = precision.to_float32(x_BxLxD)
        if as_quant_config(self.quant) is None:
            y, h = ops.ssm_lru(
                x_BxLxD, **self._ssm(), initial_state=h0, return_final_state=True,
                method=self.method,
            )  # fmt: skip
        else:
            y, h = self._quantized(x_BxLxD, h0)
        y = y.astype(out_dtype)
        return (y, ops.DiagState(h)) if return_state else y

    def _quantized(self, x_BxLxD, h0):
        """The LRU with `quant` (see the class docstring): `(y [b, l, h], final h [b, p])`."""
        u, ssm, carry_fn = _quant_prologue(self.quant, x_BxLxD, self._ssm(), LRU_STATE_RANGE)
        B, C = ssm["B"], ssm["C"]
        lam = ops.lru_lambda(ssm["nu_log"], ssm["theta_log"])
        b_bar = jnp.exp(ssm["gamma_log"])[:, None] * B
        if carry_fn is None:  # float state: the parallel forms still apply
            bu = jnp.einsum("blh,ph->blp", u.astype(jnp.complex64), b_bar)
            if h0 is None:
                h0 = jnp.zeros((x_BxLxD.shape[0], self.state_dim), jnp.complex64)
            h, last = linear_recurrence(lam, bu, h0, method=self.method, return_final_state=True)
            y = jnp.real(jnp.einsum("blp,hp->blh", h, C)) + u * ssm["D"]
        else:
            check_carry_quant_method(self.method, "scan", "LRU")
            y, last = _mimo_carry_quant(u, lam, b_bar, C, ssm["D"], h0, carry_fn)
        return y.astype(x_BxLxD.dtype), last

    def init_state(self, batch_size, dtype=jnp.float32):
        return ops.DiagState(jnp.zeros((batch_size, self.state_dim), jnp.complex64))


def _s4d_carry_quant(u, lam_bar, b_bar, C, D, h0, carry_fn):
    """S4D (per-channel modes `[d, n]`) with `carry_fn` on the state after every step:
    `(y [b, l, d], final h [b, d, n])`."""
    b, _, d = u.shape
    h0 = jnp.zeros((b, d, lam_bar.shape[-1]), jnp.complex64) if h0 is None else h0
    hs, last = quant_ops.linear_recurrence_carry_quant(
        lam_bar, u[..., None] * b_bar, h0.astype(jnp.complex64), carry_fn, return_final_state=True
    )
    y = jnp.real(jnp.einsum("bldn,dn->bld", hs, C.astype(jnp.complex64))) + u * D
    return y, last


def _mimo_carry_quant(u, lam_bar, b_bar, C, D, h0, carry_fn):
    """S5/LRU with `carry_fn` on the state after every step: `(y [b, l, h], final h [b, p])`."""
    bsz, p = u.shape[0], lam_bar.shape[0]
    h0 = jnp.zeros((bsz, p), jnp.complex64) if h0 is None else h0
    bu = jnp.einsum("blh,ph->blp", u.astype(jnp.complex64), b_bar)
    h, last = quant_ops.linear_recurrence_carry_quant(
        lam_bar, bu, h0.astype(jnp.complex64), carry_fn, return_final_state=True
    )
    y = jnp.real(jnp.einsum("blp,hp->blh", h, C.astype(jnp.complex64))) + u * D
    return y, last


# Default fixed ranges of a quantized state (real and imaginary parts; QuantConfig.state_range
# overrides them): the states of these normalised SSMs stay within a few input scales.
LRU_STATE_RANGE = 4.0
S4D_STATE_RANGE = 4.0
S5_STATE_RANGE = 4.0
RGLRU_STATE_RANGE = 2.0


def _rglru_a_init(lo: float = 0.9, hi: float = 0.999, c: float = 8.0):
    """Lambda such that a^c = sigmoid(Lambda)^c is uniform in [lo, hi] (Griffin)."""

    def init(key, shape, dtype=jnp.float32):
        a = jax.random.uniform(key, shape, dtype, lo, hi) ** (1 / c)
        return jnp.log(a) - jnp.log1p(-a)

    return init


@register_mixer("rglru")
class RGLRU(_Recurrent):
    """The RG-LRU layer: input and recurrence gates from Dense layers, then `ssm_rglru`.

    Attributes:
      dim: width d.  c: the exponent scale (8).  method: `linear_recurrence` method.
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits: the inputs (per token),
        the gate Dense kernels, the gates `r_t, i_t` (on the fixed grid of [0, 1]) and the
        state `[b, dim]` after every step (fixed grid of `[-r, r]`,
        `r = state_range or RGLRU_STATE_RANGE`); `Lambda` stays float. A quantized state is
        sequential ("auto" or "scan"; the parallel forms are refused).
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the gates'
        Dense layers run in `dtype`, the recurrence and its state in float32.
    Griffin computes the gates with block-diagonal weights per head; here they are dense.
    """

    dim: int
    c: float = 8.0
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        kw = precision.precision_kwargs(self)
        self.gate_a = quant_dense(self.quant, self.dim, name="gate_a", **kw)
        self.gate_x = quant_dense(self.quant, self.dim, name="gate_x", **kw)
        self.a_param = precision.param(self, "a_param", _rglru_a_init(c=self.c), (self.dim,))

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """[b, l, dim] -> [b, l, dim]; state `DiagState(h [b, dim] float32)`."""
        h0, x_BxLxD = None if state is None else state.h, precision.cast(x_BxLxD, self.dtype)
        if self.quant is None:
            h, last = ops.ssm_rglru(
                x_BxLxD, self.gate_a(x_BxLxD), self.gate_x(x_BxLxD), self.a_param, c=self.c,
                initial_state=h0, return_final_state=True, method=self.method,
            )  # fmt: skip
        else:
            h, last = self._quantized(x_BxLxD, h0)
        return (h, ops.DiagState(last)) if return_state else h

    def _quantized(self, x_BxLxD, h0):
        """`ssm_rglru`'s recurrence with `quant`: `(h [b, l, dim], final h [b, dim])`."""
        q = as_quant_config(self.quant)
        u = q.inputs(x_BxLxD)
        gate = q.gate_fn(jax.nn.sigmoid)
        r, i = gate(self.gate_a(u).astype(jnp.float32)), gate(self.gate_x(u).astype(jnp.float32))
        log_a = -self.c * r * jax.nn.softplus(-self.a_param.astype(jnp.float32))
        mult = jnp.sqrt(jnp.maximum(-jnp.expm1(2 * log_a), 1e-8))  # as `ssm_rglru`
        h0 = jnp.zeros((u.shape[0], self.dim), jnp.float32) if h0 is None else h0
        carry_fn = q.state_fn(RGLRU_STATE_RANGE)
        if carry_fn is None:
            h, last = linear_recurrence(
                jnp.exp(log_a), mult * i * u, h0, method=self.method, return_final_state=True
            )
        else:
            check_carry_quant_method(self.method, "scan", "RG-LRU")
            h, last = quant_ops.linear_recurrence_carry_quant(
                jnp.exp(log_a), mult * i * u, h0.astype(jnp.float32), carry_fn,
                return_final_state=True,
            )  # fmt: skip
        return h.astype(x_BxLxD.dtype), last

    def init_state(self, batch_size, dtype=jnp.float32):
        return ops.DiagState(jnp.zeros((batch_size, self.dim), jnp.float32))

    def step(self, state, x_BxD):
        if self.quant is not None:  # the full form on one token: the same rounding per step
            return super().step(state, x_BxD)
        x_BxD = precision.cast(x_BxD, self.dtype)
        return ops.ssm_rglru_step(
            state, x_BxD, self.gate_a(x_BxD), self.gate_x(x_BxD), self.a_param, c=self.c
        )


class GriffinState(NamedTuple):
    """Streaming state: `conv` [b, conv_width-1, width] inputs, `rnn` [b, width] float32."""

    conv: jax.Array
    rnn: jax.Array


@register_mixer("griffin")
class GriffinBlock(nn.Module):
    """Griffin's recurrent block: gelu(W_g x) * RG-LRU(conv(W_x x)), then W_o.

    Attributes:
      dim: model width.  width: recurrence width (default `dim`, Griffin uses ~4/3 dim).
      conv_width: causal conv taps.  c, method: as in `RGLRU`.
      quant: None, a `lib.nn.quant.layers.QuantConfig` or int bits: the block's input (per token),
        the projections' kernels and conv taps (weight spec), and the RG-LRU as `RGLRU`'s.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the
        projections run in `dtype`; the conv, the recurrence and the state in float32.
    """

    dim: int
    width: int | None = None
    conv_width: int = 4
    c: float = 8.0
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @property
    def _width(self):
        return self.width or self.dim

    def setup(self):
        w, kw = self._width, precision.precision_kwargs(self)
        self.gate_proj = quant_dense(self.quant, w, name="gate_proj", **kw)
        self.in_proj = quant_dense(self.quant, w, name="in_proj", **kw)
        self.conv_weight = precision.param(
            self, "conv_weight", nn.initializers.lecun_normal(in_axis=0, out_axis=()), (self.conv_width, w)
        )  # fmt: skip
        self.conv_bias = precision.param(self, "conv_bias", nn.initializers.zeros, (w,))
        self.rglru = RGLRU(w, c=self.c, method=self.method, quant=self.quant, name="rglru", **kw)
        self.out_proj = quant_dense(self.quant, self.dim, name="out_proj", **kw)

    def _inputs_and_conv(self, x):
        """The (quantized) block input, in the computation dtype, and conv taps."""
        x, q = precision.cast(x, self.dtype), as_quant_config(self.quant)
        if q is None:
            return x, self.conv_weight
        return q.inputs(x).astype(x.dtype), q.weights(self.conv_weight)

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """[b, l, dim] -> [b, l, dim]; state `GriffinState`."""
        x_BxLxD, conv_weight = self._inputs_and_conv(x_BxLxD)
        gate = jax.nn.gelu(self.gate_proj(x_BxLxD))
        x, conv_last = conv_ops.causal_conv1d(
            precision.to_float32(self.in_proj(x_BxLxD)), conv_weight, self.conv_bias, return_final_state=True,
            initial_state=None if state is None else state.conv,
        )  # fmt: skip
        rnn_state = None if state is None else ops.DiagState(state.rnn)
        h, rnn_last = self.rglru(x, state=rnn_state, return_state=True)
        out = self.out_proj(h * gate)
        return (out, GriffinState(conv_last, rnn_last.h)) if return_state else out

    def init_state(self, batch_size, dtype=jnp.float32):
        w = self._width
        return GriffinState(
            conv=jnp.zeros((batch_size, self.conv_width - 1, w), precision.state_dtype(dtype)),
            rnn=jnp.zeros((batch_size, w), jnp.float32),
        )

    def step(self, state, x_BxD):
        """One token: `(GriffinState, [b, dim]) -> (GriffinState, [b, dim])`."""
        x_BxD, conv_weight = self._inputs_and_conv(x_BxD)
        gate = jax.nn.gelu(self.gate_proj(x_BxD))
        conv_state, x = conv_ops.causal_conv1d_step(
            conv_ops.ConvState(state.conv),
            precision.to_float32(self.in_proj(x_BxD)),
            conv_weight,
            self.conv_bias,
        )
        rnn_state, h = self.rglru.step(ops.DiagState(state.rnn), x)
        return GriffinState(conv_state.x, rnn_state.h), self.out_proj(h * gate)
