"""Quantized Linen layers (QAT with straight-through fake quantization; LSQ; survey: Gholami
et al. 2021) built on lib.ops.quant*: one `QuantSpec` describes a number format.

`fake_quantize(x, spec)` quantize-dequantizes with a dynamic scale (max |x| per tensor, per
channel or per group) and a straight-through gradient; `QuantDense` applies a weight spec and an
activation spec around a dense product. `lib.nn.transform` swaps these into any model.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.ops.binary import sign_ste, xnor_scale
from lib.ops.quant import fake_quant, fake_quant_fp, fp_max_value, int_scale
from lib.ops.quant_lsq import lsq_init_step, lsq_quant
from lib.ops.quant_mx import MX_FORMATS, fake_mx_quantize
from lib.ops.quant_rnn import quantized_gru, quantized_lstm
from lib.ops.rnn import LSTMState

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
      mx_format: one of `lib.ops.quant_mx.MX_FORMATS`.
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


class QuantDense(nn.Module):
    """Dense layer with fake-quantized kernel and input activations.

    Attributes:
      features: output width.
      weight: spec for the kernel `[d_in, features]` (default int8 per output channel).
      act: spec for the input activations (None: left in float).
      use_bias: add a float bias.

    Params: `kernel`, `bias` as in `nn.Dense` (so a trained Dense's params load unchanged);
    plus `kernel_step` / `act_step` when a spec is "lsq".
    """

    features: int
    weight: QuantSpec = QuantSpec(kind="int", bits=8, axis=-1)
    act: QuantSpec | None = None
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        bias = (
            self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        )
        return quantized_dense_apply(self, x, kernel, bias, self.weight, self.act)


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

    Follows the mixer protocol of `lib.nn.registry` (without registering: use it directly):
    `__call__(x_BxLxD, state=None, return_state=False)`, `init_state`, `step`. Weight layout
    and maths are `lib.ops.rnn`'s; quantization is `lib.ops.quant_rnn`'s (each `*_bits` None
    keeps that part in float, so all None is the float cell).

    Attributes:
      dim: input width and hidden size.
      cell: "lstm" or "gru".
      weight_bits, input_bits, act_bits, state_bits: int bits or None.
      cell_range: LSTM cell-state saturation.
    """

    dim: int
    cell: str = "lstm"
    weight_bits: int | None = 8
    input_bits: int | None = 8
    act_bits: int | None = 8
    state_bits: int | None = 8
    cell_range: float = 4.0

    def setup(self):
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {self.cell!r}")
        k = 4 if self.cell == "lstm" else 3
        init = nn.initializers.uniform(2.0 / self.dim**0.5)
        shift = lambda key, shape: init(key, shape) - 1.0 / self.dim**0.5  # U(-1/sqrt h, .)
        self.w_ih = self.param("w_ih", shift, (self.dim, k * self.dim))
        self.w_hh = self.param("w_hh", shift, (self.dim, k * self.dim))
        self.b = self.param("b", nn.initializers.zeros, (k * self.dim,))

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
        y = y.astype(x_BxLxD.dtype)
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
