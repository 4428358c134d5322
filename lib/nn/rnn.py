"""Recurrent-cell mixers: LSTM, GRU, minGRU/minLSTM (Feng et al. 2024), EGRU (Subramoney 2023).

Registered as "lstm", "gru", "mingru", "minlstm", "egru". Each maps `[b, l, dim] -> [b, l, dim]`
through a recurrence of width `hidden_dim` (default `dim`) and, where the widths differ (or
`out_proj=True`), a linear read-out. Parameters own the arrays; the maths lives in
`lib.ops.rnn`, `lib.ops.rnn_min` and `lib.ops.rnn_egru`. LSTM, GRU and EGRU take their gate and
candidate nonlinearities as attributes, so quantized or crossbar-emulated activations (paper 72)
plug in without touching the recurrence.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn.registry import register_mixer
from lib.ops import rnn as rnn_ops
from lib.ops import rnn_egru as egru_ops
from lib.ops import rnn_min as min_ops


def _uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class _Cell(nn.Module):
    """Shared plumbing: hidden width, the read-out, parameters of a gated cell."""

    dim: int
    hidden_dim: int | None = None
    out_proj: bool | None = None
    method: str = "auto"

    @property
    def hidden(self) -> int:
        return self.hidden_dim or self.dim

    def _readout(self):
        use = self.out_proj if self.out_proj is not None else self.hidden != self.dim
        return nn.Dense(self.dim, name="out_proj") if use else (lambda y: y)

    def _gate_params(self, gates: int, bias_init=nn.initializers.zeros):
        """PyTorch-style `U(-1/sqrt(h), 1/sqrt(h))` weights; `w_ih: [dim, gh]`, `w_hh: [h, gh]`."""
        h = self.hidden
        s = h**-0.5
        w_ih = self.param("w_ih", _uniform(s), (self.dim, gates * h))
        w_hh = self.param("w_hh", _uniform(s), (h, gates * h))
        b = self.param("b_ih", bias_init, (gates * h,))
        return w_ih, w_hh, b


def _lstm_bias_init(key, shape, dtype=jnp.float32):
    """Zero biases with the forget gate's set to 1 (Jozefowicz et al. 2015)."""
    del key
    h = shape[0] // 4
    return jnp.zeros(shape, dtype).at[h : 2 * h].set(1.0)


@register_mixer("lstm")
class LSTM(_Cell):
    """LSTM mixer (`lib.ops.rnn.lstm`); state `LSTMState(h, c)`, each `[b, hidden]`.

    Attributes: dim, hidden_dim (default dim), out_proj (default: only if widths differ),
    method ("auto", "ref", "scan"), gate_fn, cell_fn (swappable nonlinearities).
    """

    gate_fn: Callable = jax.nn.sigmoid
    cell_fn: Callable = jnp.tanh

    def setup(self):
        self.w_ih, self.w_hh, self.b = self._gate_params(4, _lstm_bias_init)
        self.readout = self._readout()

    def _acts(self):
        return dict(gate_fn=self.gate_fn, cell_fn=self.cell_fn)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `LSTMState` when `return_state`)."""
        h, final = rnn_ops.lstm(
            x_BxLxD, self.w_ih, self.w_hh, self.b, initial_state=state,
            return_final_state=True, method=self.method, **self._acts(),
        )  # fmt: skip
        y = self.readout(h)
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `LSTMState` (float32: carries are kept in at least float32)."""
        zeros = jnp.zeros((batch_size, self.hidden), jnp.promote_types(dtype, jnp.float32))
        return rnn_ops.LSTMState(zeros, zeros)

    def step(self, state, x_BxD):
        """One token: `(LSTMState, [b, dim]) -> (LSTMState, [b, dim])`."""
        state, h = rnn_ops.lstm_step(state, x_BxD, self.w_ih, self.w_hh, self.b, **self._acts())
        return state, self.readout(h.astype(x_BxD.dtype))


@register_mixer("gru")
class GRU(_Cell):
    """GRU mixer (`lib.ops.rnn.gru`); state `h: [b, hidden]`.

    Attributes: dim, hidden_dim, out_proj, method, gate_fn, cell_fn (as `LSTM`).
    """

    gate_fn: Callable = jax.nn.sigmoid
    cell_fn: Callable = jnp.tanh

    def setup(self):
        self.w_ih, self.w_hh, self.b_ih = self._gate_params(3)
        self.b_hh = self.param("b_hh", nn.initializers.zeros, (3 * self.hidden,))
        self.readout = self._readout()

    def _acts(self):
        return dict(gate_fn=self.gate_fn, cell_fn=self.cell_fn)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `h` when `return_state`)."""
        h, final = rnn_ops.gru(
            x_BxLxD, self.w_ih, self.w_hh, self.b_ih, self.b_hh, initial_state=state,
            return_final_state=True, method=self.method, **self._acts(),
        )  # fmt: skip
        y = self.readout(h)
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `h: [b, hidden]` (float32 or wider)."""
        return jnp.zeros((batch_size, self.hidden), jnp.promote_types(dtype, jnp.float32))

    def step(self, state, x_BxD):
        """One token: `(h, [b, dim]) -> (h, [b, dim])`."""
        state, h = rnn_ops.gru_step(
            state, x_BxD, self.w_ih, self.w_hh, self.b_ih, self.b_hh, **self._acts()
        )
        return state, self.readout(h.astype(x_BxD.dtype))


class _MinRNN(_Cell):
    """minGRU/minLSTM: one `Dense` to the gate logits and `g(.)` candidates, then the op."""

    chunk_size: int = 32
    gates: int = 1

    def setup(self):
        self.in_proj = nn.Dense((self.gates + 1) * self.hidden, name="in_proj")
        self.readout = self._readout()

    def _split(self, x):
        parts = jnp.split(self.in_proj(x), self.gates + 1, axis=-1)
        return parts[:-1], min_ops.g(parts[-1])

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero `h: [b, hidden]` (float32 or wider)."""
        return jnp.zeros((batch_size, self.hidden), jnp.promote_types(dtype, jnp.float32))


@register_mixer("mingru")
class MinGRU(_MinRNN):
    """minGRU mixer: `h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t)`, `z_t = sigmoid(W_z x_t)`.

    Attributes: dim, hidden_dim, out_proj, method ("auto", "ref", "scan", "log"), chunk_size.
    """

    gates: int = 1

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `h` when `return_state`)."""
        (k,), ht = self._split(x_BxLxD)
        h, final = min_ops.min_gru(
            k, ht, initial_state=state, return_final_state=True, method=self.method,
            chunk_size=self.chunk_size,
        )  # fmt: skip
        y = self.readout(h)
        return (y, final) if return_state else y

    def step(self, state, x_BxD):
        """One token: `(h, [b, dim]) -> (h, [b, dim])`."""
        (k,), ht = self._split(x_BxD)
        state, h = min_ops.min_gru_step(state, k, ht)
        return state, self.readout(h.astype(x_BxD.dtype))


@register_mixer("minlstm")
class MinLSTM(_MinRNN):
    """minLSTM mixer: normalised forget/input gates from `x` only, `h~ = g(W_h x)`.

    Attributes: dim, hidden_dim, out_proj, method ("auto", "ref", "scan", "log"), chunk_size.
    """

    gates: int = 2

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `h` when `return_state`)."""
        (kf, ki), ht = self._split(x_BxLxD)
        h, final = min_ops.min_lstm(
            kf, ki, ht, initial_state=state, return_final_state=True, method=self.method,
            chunk_size=self.chunk_size,
        )  # fmt: skip
        y = self.readout(h)
        return (y, final) if return_state else y

    def step(self, state, x_BxD):
        """One token: `(h, [b, dim]) -> (h, [b, dim])`."""
        (kf, ki), ht = self._split(x_BxD)
        state, h = min_ops.min_lstm_step(state, kf, ki, ht)
        return state, self.readout(h.astype(x_BxD.dtype))


@register_mixer("egru")
class EGRU(_Cell):
    """Event-based GRU mixer (`lib.ops.rnn_egru.egru`); state `EGRUState(c, y)`.

    The sparse outputs `y` are read out by `out_proj` (on by default: events are non-negative
    and mostly zero, so a linear read-out restores a dense residual update). The fraction of
    silent units is sown as `intermediates/activity_sparsity` (read it with
    `apply(..., mutable=["intermediates"])`).

    Attributes: dim, hidden_dim, out_proj (default True), method, threshold_init (thresholds
    are learned, kept in [0.01, 1]), surrogate (a `lib.ops.spiking.SURROGATES` name or None
    for the paper's triangle), gate_fn, cell_fn.
    """

    out_proj: bool | None = True
    threshold_init: float = 0.3
    surrogate: str | None = None
    gate_fn: Callable = jax.nn.sigmoid
    cell_fn: Callable = jnp.tanh

    def setup(self):
        self.w_ih, self.w_hh, self.b_ih = self._gate_params(3)
        self.b_hh = self.param("b_hh", nn.initializers.zeros, (3 * self.hidden,))
        self.threshold = self.param(
            "threshold", nn.initializers.constant(self.threshold_init), (self.hidden,)
        )
        self.readout = self._readout()

    def _kw(self):
        return dict(surrogate=self.surrogate, gate_fn=self.gate_fn, cell_fn=self.cell_fn)

    def _thr(self):
        return jnp.clip(self.threshold, 0.01, 1.0)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `EGRUState` when `return_state`)."""
        y, final = egru_ops.egru(
            x_BxLxD, self.w_ih, self.w_hh, self.b_ih, self.b_hh, self._thr(),
            initial_state=state, return_final_state=True, method=self.method, **self._kw(),
        )  # fmt: skip
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
        state, y = egru_ops.egru_step(
            state, x_BxD, self.w_ih, self.w_hh, self.b_ih, self.b_hh, self._thr(), **self._kw()
        )
        return state, self.readout(y.astype(x_BxD.dtype))
