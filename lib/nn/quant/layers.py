"""Quantized Linen layers (QAT with straight-through fake quantization; LSQ; survey: Gholami
et al. 2021) built on lib.ops.quant.formats*: one `QuantSpec` describes a number format.

`fake_quantize(x, spec)` quantize-dequantizes with a dynamic scale (max |x| per tensor, per
channel or per group) and a straight-through gradient; `QuantDense` applies a weight spec and an
activation spec around a dense product. `lib.nn.transform` swaps these into any model.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.ops.quant.binary import sign_ste, xnor_scale
from lib.ops.quant.formats import fake_quant, fake_quant_fp, fp_max_value, int_scale
from lib.ops.quant.lsq import lsq_init_step, lsq_quant
from lib.ops.quant.mx import MX_FORMATS, fake_mx_quantize
from lib.ops.quant.rnn import quantized_gru, quantized_lstm
from lib.ops.rnn.cells import LSTMState

KINDS = ("none", "int", "fp", "mx", "binary", "lsq")


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """A number format for weights or activations.

    Attributes:
      kind: "none", "int" (uniform, `bits`), "fp" (ExMy, `exponent_bits`/`mantissa_bits`),
        "mx" (`mx_format`, blocks of `block_size` along the last axis), "binary" (XNOR:
        `mean|x| * sign(x)`), or "lsq" (int with a learned step; only inside `QuantDense`).
      bits: integer bits (2..16).
      exponent_bits, mantissa_bits: FP format.
      mx_format: one of `lib.ops.quant.mx.MX_FORMATS`.
      block_size: MX block size.
      axis: kept axis for per-channel scales (e.g. -1: one scale per output column of a
        kernel); None for per tensor.
      group_size: per-group scales along `axis` (default the last axis) for "int".
      symmetric: symmetric int codes (else asymmetric with a zero point).
    """

    kind: str = "int"
    bits: int = 8
    exponent_bits: int = 4
    mantissa_bits: int = 3
    mx_format: str = "mxfp8_e4m3"
    block_size: int = 32
    axis: int | None = None
    group_size: int | None = None
    symmetric: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown quantization kind={self.kind!r}; expected one of {KINDS}")
        if self.kind == "mx" and self.mx_format not in MX_FORMATS:
            raise ValueError(f"unknown mx_format={self.mx_format!r}; expected {sorted(MX_FORMATS)}")
        if self.kind in ("int", "lsq") and not 2 <= self.bits <= 16:
            raise ValueError(f"unsupported bits={self.bits}; integer formats need 2..16 bits")

    @property
    def bits_per_value(self) -> float:
        """Storage bits per element (MX adds its 8-bit shared scale per block)."""
        if self.kind == "none":
            return 32.0
        if self.kind == "fp":
            return 1.0 + self.exponent_bits + self.mantissa_bits
        if self.kind == "binary":
            return 1.0
        if self.kind == "mx":
            fmt = MX_FORMATS[self.mx_format]
            elem = 8 if fmt[0] == "int" else 1 + fmt[1] + fmt[2]
            return elem + 8.0 / self.block_size
        return float(self.bits)


def _kept_reduce_axes(ndim, axis):
    if axis is None:
        return None
    keep = {a % ndim for a in ((axis,) if isinstance(axis, int) else axis)}
    return tuple(a for a in range(ndim) if a not in keep)


def fake_quantize(x, spec: QuantSpec):
    """Quantize-dequantize `x` in `spec`'s format with a dynamic scale, straight-through.

    Args:
      x: float array; spec: the format ("lsq" is not stateless: use `QuantDense`).

    Returns:
      array like `x`.
    """
    if spec.kind == "none":
        return x
    if spec.kind == "int":
        scale, zp = int_scale(
            jax.lax.stop_gradient(x),
            spec.bits,
            symmetric=spec.symmetric,
            axis=spec.axis,
            group_size=spec.group_size,
        )
        return fake_quant(x, spec.bits, scale=scale, zero_point=zp).astype(x.dtype)
    if spec.kind == "fp":
        red = _kept_reduce_axes(jnp.ndim(x), spec.axis)
        amax = jnp.max(jnp.abs(jax.lax.stop_gradient(x)), axis=red, keepdims=True)
        scale = jnp.maximum(amax, 1e-30) / fp_max_value(spec.exponent_bits, spec.mantissa_bits)
        q = fake_quant_fp(x / scale, spec.exponent_bits, spec.mantissa_bits) * scale
        return q.astype(x.dtype)
    if spec.kind == "mx":
        return fake_mx_quantize(x, spec.mx_format, block_size=spec.block_size, axis=-1)
    if spec.kind == "binary":
        red = _kept_reduce_axes(jnp.ndim(x), spec.axis)
        return (xnor_scale(x, red) * sign_ste(x, None)).astype(x.dtype)
    raise ValueError("kind='lsq' keeps a learned step: use QuantDense (or lsq_quant directly)")


def fake_quantize_tokens(x, spec: QuantSpec):
    """`fake_quantize` with one dynamic scale per token: the maximum runs over the last (feature)
    axis only, so a token quantizes the same alone (streaming) as inside a sequence.

    "int" with `group_size` and "mx" already scale groups / blocks of the last axis and are
    passed through unchanged; for the other kinds `spec.axis` must be None.
    """
    if spec.kind in ("none", "mx") or (spec.kind == "int" and spec.group_size is not None):
        return fake_quantize(x, spec)
    if spec.axis is not None:
        raise ValueError(f"a per-token activation spec takes no axis, got axis={spec.axis}")
    keep = tuple(range(jnp.ndim(x) - 1))
    return fake_quantize(x, dataclasses.replace(spec, axis=keep if keep else None))


def fake_quantize_fixed(x, spec: QuantSpec, limit: float, *, signed: bool = True):
    """Quantize-dequantize onto a FIXED grid covering `[-limit, limit]` (`[0, limit]` when not
    `signed`), saturating: the static scale of fixed-point hardware state.

    "int": `k * limit / (2**(b-1) - 1)` for |k| <= 2**(b-1) - 1 (signed), or
    `k * limit / (2**b - 1)` for 0 <= k <= 2**b - 1 (unsigned). "fp": the ExMy grid scaled so
    that its largest value is `limit`. The gradient is straight-through inside the range and
    zero where the value saturates (the clipped STE).
    """
    if spec.kind == "none":
        return x
    if spec.kind == "int":
        if signed:
            scale = limit / (2 ** (spec.bits - 1) - 1)
            return fake_quant(x, spec.bits, scale=scale, narrow_range=True).astype(x.dtype)
        scale = limit / (2**spec.bits - 1)
        return fake_quant(x, spec.bits, scale=scale, zero_point=0).astype(x.dtype)
    if spec.kind == "fp":
        scale = limit / fp_max_value(spec.exponent_bits, spec.mantissa_bits)
        lo = -limit if signed else 0.0
        inside = (x >= lo) & (x <= limit)
        q = fake_quant_fp(jnp.clip(x, lo, limit) / scale, spec.exponent_bits, spec.mantissa_bits)
        return jnp.where(inside, q * scale, jax.lax.stop_gradient(q * scale)).astype(x.dtype)
    raise ValueError(f"a fixed-grid quantizer needs kind 'int' or 'fp', got {spec.kind!r}")


FIXED_KINDS = ("none", "int", "fp")


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """Quantization of a recurrent mixer (the `quant=` option of `lib.nn.rnn.mixers`'s cells).

    Attributes (each spec None or kind "none" keeps that part in float):
      weight: the weight matrices (`w_ih`, `w_hh`, and the Dense kernels of the input
        projection / read-out); dynamic scale, per output column with `axis=-1`.
      act: the inputs of the cell, one dynamic scale per token (see `fake_quantize_tokens`;
        `axis` must be None), so streaming equals the full pass.
      gate: the outputs of the gate nonlinearities on the fixed unsigned grid of [0, 1] and of
        the candidate/output nonlinearities (tanh) on the fixed signed grid of [-1, 1]
        ("int" or "fp").
      state: the recurrent carry, after every step, on a fixed signed grid of
        `[-state_range, state_range]` ("int" or "fp"; saturating).
      state_range: None for the cell's own bound (1 for LSTM/GRU/EGRU, whose carries lie in
        [-1, 1]; 4 for minGRU/minLSTM, whose `h` is a running mix of `g(.) > 0` candidates).
      cell_range: the LSTM cell state `c`'s fixed range (it is not bounded by 1).
    LSQ (kind "lsq") keeps learned steps and is not offered here; "mx" and "binary" work for
    `weight` and `act` only.
    """

    weight: QuantSpec | None = QuantSpec("int", bits=8, axis=-1)
    act: QuantSpec | None = QuantSpec("int", bits=8)
    gate: QuantSpec | None = QuantSpec("int", bits=8)
    state: QuantSpec | None = QuantSpec("int", bits=8)
    state_range: float | None = None
    cell_range: float = 4.0

    def __post_init__(self):
        for name in ("weight", "act", "gate", "state"):
            spec = getattr(self, name)
            if spec is not None and not isinstance(spec, QuantSpec):
                raise TypeError(f"QuantConfig.{name} must be a QuantSpec or None, got {spec!r}")
            if spec is not None and spec.kind == "lsq":
                raise ValueError(f"QuantConfig.{name}: kind='lsq' is not supported in a cell")
            if name in ("gate", "state") and spec is not None and spec.kind not in FIXED_KINDS:
                raise ValueError(
                    f"QuantConfig.{name} is a fixed grid: kind must be one of {FIXED_KINDS}, "
                    f"got {spec.kind!r}"
                )
        if self.act is not None and self.act.axis is not None:
            raise ValueError("QuantConfig.act is scaled per token: leave its axis None")
        for name in ("state_range", "cell_range"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"QuantConfig.{name} must be positive, got {value}")

    @classmethod
    def int_bits(cls, bits: int, **overrides) -> "QuantConfig":
        """Symmetric int `bits` everywhere (weights per output column); `overrides` replace
        fields (e.g. `state=None`)."""
        specs = dict(
            weight=QuantSpec("int", bits=bits, axis=-1),
            act=QuantSpec("int", bits=bits),
            gate=QuantSpec("int", bits=bits),
            state=QuantSpec("int", bits=bits),
        )
        return cls(**{**specs, **overrides})

    @property
    def quantizes_state(self) -> bool:
        return self.state is not None and self.state.kind != "none"

    def weights(self, w):
        """Fake-quantized weight matrix."""
        return w if self.weight is None else fake_quantize(w, self.weight)

    def inputs(self, x):
        """Fake-quantized inputs (per token), float32 or wider."""
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        return x if self.act is None else fake_quantize_tokens(x, self.act)

    def gate_fn(self, fn):
        """`fn` (a gate nonlinearity with values in [0, 1]) followed by the gate grid."""
        if self.gate is None or self.gate.kind == "none":
            return fn
        return lambda z: fake_quantize_fixed(fn(z), self.gate, 1.0, signed=False)

    def cell_fn(self, fn):
        """`fn` (a nonlinearity with values in [-1, 1], e.g. tanh) followed by the grid."""
        if self.gate is None or self.gate.kind == "none":
            return fn
        return lambda z: fake_quantize_fixed(fn(z), self.gate, 1.0)

    def state_fn(self, default_range: float):
        """Quantizer of a carry array on `[-r, r]`, `r = state_range or default_range`
        (None when the state is left in float)."""
        if not self.quantizes_state:
            return None
        limit = self.state_range or default_range
        return lambda h: fake_quantize_fixed(h, self.state, limit)


def as_quant_config(quant) -> QuantConfig | None:
    """`quant=` of a cell: None, a `QuantConfig`, or an int (`QuantConfig.int_bits(quant)`)."""
    if quant is None or isinstance(quant, QuantConfig):
        return quant
    if isinstance(quant, int) and not isinstance(quant, bool):
        return QuantConfig.int_bits(quant)
    raise TypeError(f"quant must be None, an int (bits) or a QuantConfig, got {quant!r}")


def quant_dense(quant, features: int, **kwargs) -> nn.Module:
    """`nn.Dense(features, **kwargs)`, or with `quant` (see `as_quant_config`) a `QuantDense`
    with its weight spec and the same parameters (`kernel`, `bias`), so a float checkpoint
    loads unchanged."""
    q = as_quant_config(quant)
    if q is None or q.weight is None:
        return nn.Dense(features, **kwargs)
    return QuantDense(features, weight=q.weight, **kwargs)


def check_carry_quant_method(method: str, sequential: str, mixer: str) -> None:
    """Refuse a parallel `method` for a mixer whose state is quantized after every step (the
    rounded recurrence is nonlinear: only `sequential` or "auto", which resolves to it)."""
    if method not in ("auto", sequential):
        raise ValueError(
            f"a quantized {mixer} state makes the recurrence nonlinear: method={method!r} "
            f"(parallel) cannot apply it; use {sequential!r} or 'auto'"
        )


class QuantDense(nn.Module):
    """Dense layer with fake-quantized kernel and input activations.

    Attributes:
      features: output width.
      weight: spec for the kernel `[d_in, features]` (default int8 per output channel).
      act: spec for the input activations (None: left in float).
      use_bias: add a float bias.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); the kernel
        is fake-quantized in `param_dtype`, then used in `dtype`.

    Params: `kernel`, `bias` as in `nn.Dense` (so a trained Dense's params load unchanged);
    plus `kernel_step` / `act_step` when a spec is "lsq".
    """

    features: int
    weight: QuantSpec = QuantSpec(kind="int", bits=8, axis=-1)
    act: QuantSpec | None = None
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        kernel = self.param(
            "kernel", self.kernel_init, (x.shape[-1], self.features), self.param_dtype
        )
        bias = None
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
        if self.dtype is not None:  # fake-quantize the float32 parameters, then compute
            x = x.astype(self.dtype)
        y = quantized_dense_apply(self, x, kernel, bias, self.weight, self.act)
        return y if self.dtype is None else y.astype(self.dtype)


def _maybe_lsq(module, name, x, spec):
    if spec.kind != "lsq":
        return fake_quantize(x, spec)
    step = module.param(name, lambda _: lsq_init_step(jax.lax.stop_gradient(x), spec.bits))
    return lsq_quant(x, step, spec.bits)


def quantized_dense_apply(module, x, kernel, bias, weight: QuantSpec, act: QuantSpec | None):
    """`fq(x) @ fq(kernel) + bias`; `module` owns any LSQ step parameters."""
    k = _maybe_lsq(module, "kernel_step", kernel, weight)
    if act is not None:
        x = _maybe_lsq(module, "act_step", x, act)
    y = x @ k.astype(x.dtype)
    return y + bias if bias is not None else y


class QuantizedRNN(nn.Module):
    """LSTM or GRU layer with quantized weights, inputs, activations and recurrent carry.

    The bit-width interface of `lib.ops.quant.rnn.quantized_lstm` / `quantized_gru` (which
    run `lib.ops.rnn.cells.lstm` / `gru` with quantized nonlinearities and a `carry_fn`, as the
    registered cells' option `lib.nn.rnn.mixers.LSTM(dim, quant=QuantConfig(...))` does; use that
    inside a `SequenceModel`).
    Follows the mixer protocol of `lib.nn.registry` (without registering: use it directly):
    `__call__(x_BxLxD, state=None, return_state=False)`, `init_state`, `step`. Weight layout
    and maths are `lib.ops.rnn.cells`'s; quantization is `lib.ops.quant.rnn`'s (each `*_bits` None
    keeps that part in float, so all None is the float cell).

    Attributes:
      dim: input width and hidden size.
      cell: "lstm" or "gru".
      weight_bits, input_bits, act_bits, state_bits: int bits or None.
      cell_range: LSTM cell-state saturation.
      dtype, param_dtype: output and parameter dtypes (`lib.nn.precision`); the cell runs
        in float32 (its carry's dtype) whatever `dtype`.
    """

    dim: int
    cell: str = "lstm"
    weight_bits: int | None = 8
    input_bits: int | None = 8
    act_bits: int | None = 8
    state_bits: int | None = 8
    cell_range: float = 4.0
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {self.cell!r}")
        k = 4 if self.cell == "lstm" else 3
        init = nn.initializers.uniform(2.0 / self.dim**0.5)
        shift = lambda key, shape: init(key, shape) - 1.0 / self.dim**0.5  # U(-1/sqrt h, .)
        self.w_ih = precision.param(self, "w_ih", shift, (self.dim, k * self.dim))
        self.w_hh = precision.param(self, "w_hh", shift, (self.dim, k * self.dim))
        self.b = precision.param(self, "b", nn.initializers.zeros, (k * self.dim,))

    def _bits(self):
        return dict(
            weight_bits=self.weight_bits,
            input_bits=self.input_bits,
            act_bits=self.act_bits,
            state_bits=self.state_bits,
        )

    def __call__(self, x_BxLxD, state=None, return_state=False):
        if self.cell == "lstm":
            y, final = quantized_lstm(
                x_BxLxD,
                self.w_ih,
                self.w_hh,
                self.b,
                cell_range=self.cell_range,
                initial_state=state,
                return_final_state=True,
                **self._bits(),
            )
        else:
            y, final = quantized_gru(
                x_BxLxD,
                self.w_ih,
                self.w_hh,
                self.b,
                None,
                initial_state=state,
                return_final_state=True,
                **self._bits(),
            )
        y = y.astype(self.dtype or x_BxLxD.dtype)
        return (y, final) if return_state else y

    def init_state(self, batch_size, dtype=jnp.float32):
        """Zeros: `LSTMState(h, c)` for the LSTM, `h: [b, dim]` for the GRU."""
        zeros = jnp.zeros((batch_size, self.dim), jnp.promote_types(dtype, jnp.float32))
        return LSTMState(zeros, zeros) if self.cell == "lstm" else zeros

    def step(self, state, x_BxD):
        """One token: `(state, x_t) -> (state, y_t)`; equal to `__call__` position by position
        when `input_bits` is None (dynamic input scales are per call)."""
        y, state = self(x_BxD[:, None], state=state, return_state=True)
        return state, y[:, 0]
