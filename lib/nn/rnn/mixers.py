"""Recurrent-cell mixers: LSTM, GRU, minGRU/minLSTM (Feng et al. 2024), EGRU (Subramoney 2023).

Registered as "lstm", "gru", "mingru", "minlstm", "egru". Each maps `[b, l, dim] -> [b, l, dim]`
through a recurrence of width `hidden_dim` (default `dim`) and, where the widths differ (or
`out_proj=True`), a linear read-out. Parameters own the arrays; the maths lives in
`lib.ops.rnn.cells`, `lib.ops.rnn.minimal` and `lib.ops.rnn.egru`. LSTM, GRU and EGRU take their gate and
candidate nonlinearities as attributes, so quantized or crossbar-emulated activations (paper 72)
plug in without touching the recurrence.

Every cell takes `quant=`: None (float, the default, unchanged), a `lib.nn.quant.layers.QuantConfig`
or an int (that many bits everywhere). It fake-quantizes the weights, the inputs (per token),
the gate and candidate activations, and the recurrent carry after every step, in the full
call and in `step` alike (the float ops' `gate_fn`, `cell_fn` and `carry_fn` hooks;
`lib.ops.quant.rnn` for minGRU/minLSTM), so step-by-step equals the full sequence and
the returned state lies on the carry's grid. The parameters are the float model's (a trained
float checkpoint loads unchanged; gradients pass straight through: QAT). A quantized carry
makes minGRU/minLSTM nonlinear in `h`: their `method="auto"` then runs the sequential form
("ref"); "scan" (parallel) is kept only when the state is float, and "log" is refused.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.quant.layers import QuantConfig, QuantDense, as_quant_config, fake_quantize_fixed
from lib.nn.registry import register_mixer
from lib.ops.quant import rnn as quant_ops
from lib.ops.rnn import cells as rnn_ops
from lib.ops.rnn import egru as egru_ops
from lib.ops.rnn import minimal as min_ops

MIN_STATE_RANGE = 4.0  # default carry range of quantized minGRU/minLSTM (see `_MinRNN`)


def _uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class _Cell(nn.Module):
    """Shared plumbing: hidden width, the read-out, parameters of a gated cell, `quant`, and
    the precision fields `dtype`, `param_dtype` (`lib.nn.precision`): the projections and the
    read-out compute in `dtype`, the recurrence and its carry in float32 whatever `dtype`."""

    dim: int
    hidden_dim: int | None = None
    out_proj: bool | None = None
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @property
    def hidden(self) -> int:
        return self.hidden_dim or self.dim

    @property
    def _q(self) -> QuantConfig | None:
        return as_quant_config(self.quant)

    def _dense(self, features: int, name: str):
        """`nn.Dense`, or with `quant` a `QuantDense` with the same params (kernel, bias)."""
        q, kw = self._q, precision.precision_kwargs(self)
        if q is None or q.weight is None:
            return nn.Dense(features, name=name, **kw)
        return QuantDense(features, weight=q.weight, name=name, **kw)

    def _readout(self):
        use = self.out_proj if self.out_proj is not None else self.hidden != self.dim
        return self._dense(self.dim, "out_proj") if use else (lambda y: y)

    def _cell_args(self, x, acts: dict, make_carry):
        """`(x, w_ih, w_hh, acts)` for the ops' gated cells: the float ones without `quant`;
        with it the inputs (per token) and weights fake-quantized, the gate/candidate
        nonlinearities followed by the gate grid (sigmoid-like gates on [0, 1], tanh-like
        candidates on [-1, 1]) and, for a quantized state, `carry_fn` quantizing every field
        of the carry (`make_carry(state, fn)`; the state grid of [-1, 1] by default)."""
        q = self._q
        if q is None:
            return x, self.w_ih, self.w_hh, acts
        acts = dict(acts, gate_fn=q.gate_fn(acts["gate_fn"]), cell_fn=q.cell_fn(acts["cell_fn"]))
        fn = q.state_fn(1.0)
        if fn is not None:
            acts["carry_fn"] = lambda s: make_carry(s, fn)
        return q.inputs(x), q.weights(self.w_ih), q.weights(self.w_hh), acts

    def _gate_params(self, gates: int, bias_init=nn.initializers.zeros):
        """PyTorch-style `U(-1/sqrt(h), 1/sqrt(h))` weights; `w_ih: [dim, gh]`, `w_hh: [h, gh]`."""
        h = self.hidden
        s = h**-0.5
        w_ih = precision.param(self, "w_ih", _uniform(s), (self.dim, gates * h))
        w_hh = precision.param(self, "w_hh", _uniform(s), (h, gates * h))
        b = precision.param(self, "b_ih", bias_init, (gates * h,))
        return w_ih, w_hh, b


def _lstm_bias_init(key, shape, dtype=jnp.float32):
    """Zero biases with the forget gate's set to 1 (Jozefowicz et al. 2015)."""
    del key
    h = shape[0] // 4
    return jnp.zeros(shape, dtype).at[h : 2 * h].set(1.0)


@register_mixer("lstm")
class LSTM(_Cell):
    """LSTM mixer (`lib.ops.rnn.cells.lstm`); state `LSTMState(h, c)`, each `[b, hidden]`.

    Attributes: dim, hidden_dim (default dim), out_proj (default: only if widths differ),
    method ("auto", "ref", "scan"), gate_fn, cell_fn (swappable nonlinearities), quant (None,
    a `QuantConfig` or int bits: quantized weights, activations and carry `(h, c)`; `c` on
    `[-cell_range, cell_range]`).
    """

    gate_fn: Callable = jax.nn.sigmoid
    cell_fn: Callable = jnp.tanh

    def setup(self):
        self.w_ih, self.w_hh, self.b = self._gate_params(4, _lstm_bias_init)
        self.readout = self._readout()

    def _acts(self):
        return dict(gate_fn=self.gate_fn, cell_fn=self.cell_fn)

    def _lstm_carry(self, s, fn):
        c = fake_quantize_fixed(s.c, self._q.state, self._q.cell_range)
        return rnn_ops.LSTMState(fn(s.h), c)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `LSTMState` when `return_state`)."""
        x, w_ih, w_hh, acts = self._cell_args(x_BxLxD, self._acts(), self._lstm_carry)
        h, final = rnn_ops.lstm(
            x, w_ih, w_hh, self.b, initial_state=state, return_final_state=True,
            method=self.method, **acts,
        )  # fmt: skip
        y = self.readout(h.astype(precision.result_dtype(self, x_BxLxD)))
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `LSTMState` (float32: carries are kept in at least float32)."""
        zeros = jnp.zeros((batch_size, self.hidden), jnp.promote_types(dtype, jnp.float32))
        return rnn_ops.LSTMState(zeros, zeros)

    def step(self, state, x_BxD):
        """One token: `(LSTMState, [b, dim]) -> (LSTMState, [b, dim])`."""
        x, w_ih, w_hh, acts = self._cell_args(x_BxD, self._acts(), self._lstm_carry)
        state, h = rnn_ops.lstm_step(state, x, w_ih, w_hh, self.b, **acts)
        return state, self.readout(h.astype(precision.result_dtype(self, x_BxD)))


def _gru_carry(h, fn):
    """The GRU carry `h` on the state grid."""
    return fn(h)


@register_mixer("gru")
class GRU(_Cell):
    """GRU mixer (`lib.ops.rnn.cells.gru`); state `h: [b, hidden]`.

    Attributes: dim, hidden_dim, out_proj, method, gate_fn, cell_fn, quant (as `LSTM`).
    """

    gate_fn: Callable = jax.nn.sigmoid
    cell_fn: Callable = jnp.tanh

    def setup(self):
        self.w_ih, self.w_hh, self.b_ih = self._gate_params(3)
        self.b_hh = precision.param(self, "b_hh", nn.initializers.zeros, (3 * self.hidden,))
        self.readout = self._readout()

    def _acts(self):
        return dict(gate_fn=self.gate_fn, cell_fn=self.cell_fn)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `h` when `return_state`)."""
        x, w_ih, w_hh, acts = self._cell_args(x_BxLxD, self._acts(), _gru_carry)
        h, final = rnn_ops.gru(
            x, w_ih, w_hh, self.b_ih, self.b_hh, initial_state=state, return_final_state=True,
            method=self.method, **acts,
        )  # fmt: skip
        y = self.readout(h.astype(precision.result_dtype(self, x_BxLxD)))
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `h: [b, hidden]` (float32 or wider)."""
        return jnp.zeros((batch_size, self.hidden), jnp.promote_types(dtype, jnp.float32))

    def step(self, state, x_BxD):
        """One token: `(h, [b, dim]) -> (h, [b, dim])`."""
        x, w_ih, w_hh, acts = self._cell_args(x_BxD, self._acts(), _gru_carry)
        state, h = rnn_ops.gru_step(state, x, w_ih, w_hh, self.b_ih, self.b_hh, **acts)
        return state, self.readout(h.astype(precision.result_dtype(self, x_BxD)))


class _MinRNN(_Cell):
    """minGRU/minLSTM: one `Dense` to the gate logits and `g(.)` candidates, then the op.

    With `quant`, the candidates `h~` sit on the carry's grid (the state is a running mix of
    them), whose default range is `MIN_STATE_RANGE` (`g(.)` is positive and unbounded).
    """

    chunk_size: int = 32
    gates: int = 1

    def setup(self):
        self.in_proj = self._dense((self.gates + 1) * self.hidden, "in_proj")
        self.readout = self._readout()

    def _split(self, x):
        q = self._q
        parts = jnp.split(self.in_proj(x if q is None else q.inputs(x)), self.gates + 1, axis=-1)
        parts = precision.to_float32(*parts)  # gates, candidates and carry in float32
        h_tilde = min_ops.g(parts[-1])
        if q is not None and q.quantizes_state:
            h_tilde = q.state_fn(MIN_STATE_RANGE)(h_tilde)
        return parts[:-1], h_tilde

    def _quant_kw(self):
        """The gate quantizer and the carry quantizer of the `lib.ops.quant.rnn` min ops."""
        q = self._q
        return dict(gate_fn=q.gate_fn(lambda p: p), carry_fn=q.state_fn(MIN_STATE_RANGE))

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `h: [b, hidden]` (float32 or wider)."""
        return jnp.zeros((batch_size, self.hidden), jnp.promote_types(dtype, jnp.float32))


@register_mixer("mingru")
class MinGRU(_MinRNN):
    """minGRU mixer: `h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t)`, `z_t = sigmoid(W_z x_t)`.

    Attributes: dim, hidden_dim, out_proj, method ("auto", "ref", "scan", "log"), chunk_size,
    quant (see `_MinRNN`; a quantized carry resolves "auto" to the sequential "ref").
    """

    gates: int = 1

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `h` when `return_state`)."""
        (k,), ht = self._split(x_BxLxD)
        if self._q is None:
            h, final = min_ops.min_gru(
                k, ht, initial_state=state, return_final_state=True, method=self.method,
                chunk_size=self.chunk_size,
            )  # fmt: skip
        else:
            h, final = quant_ops.min_gru_carry_quant(
                k, ht, initial_state=state, return_final_state=True, method=self.method,
                **self._quant_kw(),
            )  # fmt: skip
        y = self.readout(h.astype(precision.result_dtype(self, x_BxLxD)))
        return (y, final) if return_state else y

    def step(self, state, x_BxD):
        """One token: `(h, [b, dim]) -> (h, [b, dim])`."""
        (k,), ht = self._split(x_BxD)
        if self._q is None:
            state, h = min_ops.min_gru_step(state, k, ht)
        else:
            state, h = quant_ops.min_gru_carry_quant_step(state, k, ht, **self._quant_kw())
        return state, self.readout(h.astype(precision.result_dtype(self, x_BxD)))


@register_mixer("minlstm")
class MinLSTM(_MinRNN):
    """minLSTM mixer: normalised forget/input gates from `x` only, `h~ = g(W_h x)`.

    Attributes: dim, hidden_dim, out_proj, method ("auto", "ref", "scan", "log"), chunk_size,
    quant (as `MinGRU`).
    """

    gates: int = 2

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `h` when `return_state`)."""
        (kf, ki), ht = self._split(x_BxLxD)
        if self._q is None:
            h, final = min_ops.min_lstm(
                kf, ki, ht, initial_state=state, return_final_state=True, method=self.method,
                chunk_size=self.chunk_size,
            )  # fmt: skip
        else:
            h, final = quant_ops.min_lstm_carry_quant(
                kf, ki, ht, initial_state=state, return_final_state=True, method=self.method,
                **self._quant_kw(),
            )  # fmt: skip
        y = self.readout(h.astype(precision.result_dtype(self, x_BxLxD)))
        return (y, final) if return_state else y

    def step(self, state, x_BxD):
        """One token: `(h, [b, dim]) -> (h, [b, dim])`."""
        (kf, ki), ht = self._split(x_BxD)
        if self._q is None:
            state, h = min_ops.min_lstm_step(state, kf, ki, ht)
        else:
            state, h = quant_ops.min_lstm_carry_quant_step(state, kf, ki, ht, **self._quant_kw())
        return state, self.readout(h.astype(precision.result_dtype(self, x_BxD)))


def _egru_carry(s, fn):
    """Both EGRU carry fields on the state grid: `c` and the event output `y` (in [0, 1])."""
    return egru_ops.EGRUState(fn(s.c), fn(s.y))


@register_mixer("egru")
class EGRU(_Cell):
    """Event-based GRU mixer (`lib.ops.rnn.egru.egru`); state `EGRUState(c, y)`.

    The sparse outputs `y` are read out by `out_proj` (on by default: events are non-negative
    and mostly zero, so a linear read-out restores a dense residual update). The fraction of
    silent units is sown as `intermediates/activity_sparsity` (read it with
    `apply(..., mutable=["intermediates"])`).

    Attributes: dim, hidden_dim, out_proj (default True), method, threshold_init (thresholds
    are learned, kept in [0.01, 1]), surrogate (a `lib.ops.spiking.SURROGATES` name or None
    for the paper's triangle), gate_fn, cell_fn, quant (as `LSTM`; the carry `(c, y)` on the
    grid of [-1, 1]; thresholds stay float).
    """

    out_proj: bool | None = True
    threshold_init: float = 0.3
    surrogate: str | None = None
    gate_fn: Callable = jax.nn.sigmoid
    cell_fn: Callable = jnp.tanh

    def setup(self):
        self.w_ih, self.w_hh, self.b_ih = self._gate_params(3)
        self.b_hh = precision.param(self, "b_hh", nn.initializers.zeros, (3 * self.hidden,))
        self.threshold = precision.param(
            self, "threshold", nn.initializers.constant(self.threshold_init), (self.hidden,)
        )
        self.readout = self._readout()

    def _kw(self):
        return dict(surrogate=self.surrogate, gate_fn=self.gate_fn, cell_fn=self.cell_fn)

    def _thr(self):
        return jnp.clip(self.threshold, 0.01, 1.0)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `EGRUState` when `return_state`)."""
        x, w_ih, w_hh, kw = self._cell_args(x_BxLxD, self._kw(), _egru_carry)
        y, final = egru_ops.egru(
            x, w_ih, w_hh, self.b_ih, self.b_hh, self._thr(), initial_state=state,
            return_final_state=True, method=self.method, **kw,
        )  # fmt: skip
        y = y.astype(precision.result_dtype(self, x_BxLxD))
        self.sow("intermediates", "activity_sparsity", egru_ops.activity_sparsity(y))
        out = self.readout(y)
        return (out, final) if return_state else out

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `EGRUState` (float32 or wider)."""
        return egru_ops.egru_init_state(
            batch_size, self.hidden, jnp.promote_types(dtype, jnp.float32)
        )

    def step(self, state, x_BxD):
        """One token: `(EGRUState, [b, dim]) -> (EGRUState, [b, dim])`."""
        x, w_ih, w_hh, kw = self._cell_args(x_BxD, self._kw(), _egru_carry)
        state, y = egru_ops.egru_step(state, x, w_ih, w_hh, self.b_ih, self.b_hh, self._thr(), **kw)
        return state, self.readout(y.astype(precision.result_dtype(self, x_BxD)))
