"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?") as pure functions.

Both drop the hidden-state dependence of the gates, so the recurrence is linear in `h`:

- minGRU: `z_t = sigmoid(k_t)`, `h_t = (1 - z_t) * h_{t-1} + z_t * h~_t`.
- minLSTM: `f_t = sigmoid(kf_t)`, `i_t = sigmoid(ki_t)`, normalised `f' = f / (f + i)`,
  `i' = i / (f + i)`, `h_t = f'_t * h_{t-1} + i'_t * h~_t`.

The ops take the gate logits and the candidate `h~` (the modules compute them from `x` with
linear layers). Forms, chosen with `method=`:
- "ref": the sequential `lax.scan` (the definition);
- "scan": `lib.ops.scan.linear_recurrence` with `a_t` the forget factor and `b_t` the input term;
- "log": the paper's log-space parallel form, `log h_t = logcumsumexp_s(log b_s + sum log a)`,
  computed per chunk (so the running log-decay stays small and float32 keeps 1e-5 relative
  accuracy at any length) with a short scan across chunks; it holds a `[b, l, chunk, d]`
  intermediate, so keep `chunk_size` small. It needs `h~ > 0` and, when given,
  `initial_state > 0` (the paper makes `h~` positive with `g`, see `g` and `log_g`).
"auto" picks "scan". Gates are computed in log space (`log sigmoid = -softplus(-k)`).
Shapes: logits and `h~` are `[b, l, d]`; the state is `h: [b, d]`.
"""

import jax
import jax.numpy as jnp

from lib.ops._checks import check_chunk_size, check_floats, check_method, check_rank, check_shape

METHODS = ("auto", "ref", "scan", "log")
_NEG = -1e30  # log of "zero" kept finite so that gradients stay NaN-free


def g(x: jax.Array) -> jax.Array:
    """The paper's positive activation for `h~`: `x + 0.5` for `x >= 0`, `sigmoid(x)` below."""
    return jnp.where(x >= 0, jax.nn.relu(x) + 0.5, jax.nn.sigmoid(jnp.minimum(x, 0)))


def log_g(x: jax.Array) -> jax.Array:
    """`log(g(x))`, computed without forming `g(x)` for very negative `x`."""
    return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-jnp.minimum(x, 0)))


def _min_gru_gates(z_logits):
    """`(log a, log z)`: log forget factor `log(1 - z)` and log input gate `log z`."""
    return -jax.nn.softplus(z_logits), -jax.nn.softplus(-z_logits)


def _min_lstm_gates(f_logits, i_logits):
    """`(log f', log i')` of the normalised minLSTM gates."""
    diff = jax.nn.softplus(-f_logits) - jax.nn.softplus(-i_logits)
    return -jax.nn.softplus(diff), -jax.nn.softplus(-diff)


def _ref(log_a, log_i, h_tilde, h0):
    def step(h, inp):
        la, li, ht = inp
        h = jnp.exp(la) * h + jnp.exp(li) * ht
        return h, h

    xs = tuple(jnp.swapaxes(v, 0, 1) for v in (log_a, log_i, h_tilde))
    final, h = jax.lax.scan(step, h0, xs)
    return jnp.swapaxes(h, 0, 1), final


def _via_linear_recurrence(log_a, log_i, h_tilde, h0):
    from lib.ops.scan.linear import linear_recurrence

    h = linear_recurrence(jnp.exp(log_a), jnp.exp(log_i) * h_tilde, h0)
    return h, h[:, -1]


def _log_space(log_a, log_i, h_tilde, h0, chunk_size):
    """Chunked log-space parallel form (positive `h~` and `h0`)."""
    b, l, d = log_a.shape
    c = min(chunk_size, l)
    n = -(-l // c)
    pad = n * c - l
    log_b = log_i + jnp.log(h_tilde)
    if pad:
        log_a = jnp.pad(log_a, ((0, 0), (0, pad), (0, 0)))
        log_b = jnp.pad(log_b, ((0, 0), (0, pad), (0, 0)), constant_values=_NEG)
    log_a = log_a.reshape(b, n, c, d)
    log_b = log_b.reshape(b, n, c, d)
    a_star = jnp.cumsum(log_a, axis=2)  # log of the decay from the chunk start to t
    # Zero-start chunk state: local_t = logsumexp_{s<=t}(a*_t - a*_s + log b_s). Differences of
    # cumulative sums are formed inside the chunk only, and the [c, c] form keeps the gradient
    # cheap to compile (lax.cumlogsumexp's is not).
    causal = jnp.tril(jnp.ones((c, c), bool))[None, None, :, :, None]
    seg = a_star[:, :, :, None] - a_star[:, :, None, :] + log_b[:, :, None, :]
    local = jax.nn.logsumexp(jnp.where(causal, seg, _NEG), axis=3)
    if h0 is None:
        log_h0 = jnp.full((b, d), _NEG, log_a.dtype)
    else:  # a zero state (e.g. from init_state) stays finite, and so does its gradient
        log_h0 = jnp.log(jnp.maximum(h0, jnp.finfo(h0.dtype).tiny))

    def across(carry, inp):
        local_end, decay_end = inp
        return jnp.logaddexp(local_end, decay_end + carry), carry

    final_log, starts = jax.lax.scan(
        across, log_h0, (jnp.swapaxes(local[:, :, -1], 0, 1), jnp.swapaxes(a_star[:, :, -1], 0, 1))
    )
    starts = jnp.swapaxes(starts, 0, 1)[:, :, None]  # log h at each chunk's start
    log_h = jnp.logaddexp(local, a_star + starts).reshape(b, n * c, d)[:, :l]
    return jnp.exp(log_h), jnp.exp(log_h[:, -1])


def _run(log_a, log_i, h_tilde, initial_state, return_final_state, method, chunk_size, dtype):
    check_method(method, METHODS)
    chunk_size = check_chunk_size(chunk_size)
    b, _, d = h_tilde.shape
    f32 = jnp.promote_types(dtype, jnp.float32)
    log_a, log_i, h_tilde = (v.astype(f32) for v in (log_a, log_i, h_tilde))
    h0 = None
    if initial_state is not None:
        check_shape("initial_state", initial_state, (b, d))
        h0 = initial_state.astype(f32)
    if h_tilde.shape[1] == 0:  # empty outputs; the final state is the initial one
        final = jnp.zeros((b, d), f32) if h0 is None else h0
        return (h_tilde.astype(dtype), final) if return_final_state else h_tilde.astype(dtype)
    if method == "log":
        h, final = _log_space(log_a, log_i, h_tilde, h0, chunk_size)
    else:
        h0 = jnp.zeros((b, d), f32) if h0 is None else h0
        fn = _ref if method == "ref" else _via_linear_recurrence
        h, final = fn(log_a, log_i, h_tilde, h0)
    h = h.astype(dtype)
    return (h, final) if return_final_state else h


def min_gru(
    z_logits: jax.Array,
    h_tilde: jax.Array,
    *,
    initial_state: jax.Array | None = None,
    return_final_state: bool = False,
    method: str = "auto",
    chunk_size: int = 32,
):
    """minGRU over axis 1: `h_t = (1 - sigmoid(k_t)) h_{t-1} + sigmoid(k_t) h~_t`.

    Args:
      z_logits: update-gate logits `k: [b, l, d]`.
      h_tilde: candidate states `[b, l, d]` (positive for `method="log"`).
      initial_state: `h0: [b, d]`, zeros when None.
      return_final_state: also return `h_L: [b, d]` (float32 or wider).
      method: "ref", "scan", "log" or "auto" (see the module docstring).
      chunk_size: chunk length of the "log" form.

    Returns:
      `h: [b, l, d]` in `h_tilde.dtype` (and the final state).
    """
    check_floats(z_logits=z_logits, h_tilde=h_tilde, initial_state=initial_state)
    check_rank("z_logits", z_logits, 3)
    check_shape("h_tilde", h_tilde, z_logits.shape)
    log_a, log_z = _min_gru_gates(z_logits.astype(jnp.promote_types(z_logits.dtype, jnp.float32)))
    return _run(
        log_a, log_z, h_tilde, initial_state, return_final_state, method, chunk_size, h_tilde.dtype
    )


def min_lstm(
    f_logits: jax.Array,
    i_logits: jax.Array,
    h_tilde: jax.Array,
    *,
    initial_state: jax.Array | None = None,
    return_final_state: bool = False,
    method: str = "auto",
    chunk_size: int = 32,
):
    """minLSTM over axis 1: `h_t = f'_t h_{t-1} + i'_t h~_t` with normalised gates.

    Args:
      f_logits, i_logits: forget and input gate logits `[b, l, d]`.
      h_tilde: candidate states `[b, l, d]` (positive for `method="log"`).
      initial_state, return_final_state, method, chunk_size: as in `min_gru`.

    Returns:
      `h: [b, l, d]` in `h_tilde.dtype` (and the final state).
    """
    check_floats(f_logits=f_logits, i_logits=i_logits, h_tilde=h_tilde, initial_state=initial_state)
    check_rank("f_logits", f_logits, 3)
    check_shape("i_logits", i_logits, f_logits.shape)
    check_shape("h_tilde", h_tilde, f_logits.shape)
    f32 = jnp.promote_types(f_logits.dtype, jnp.float32)
    log_f, log_i = _min_lstm_gates(f_logits.astype(f32), i_logits.astype(f32))
    return _run(
        log_f, log_i, h_tilde, initial_state, return_final_state, method, chunk_size, h_tilde.dtype
    )


def min_gru_ref(z_logits, h_tilde, **kwargs):
    """The definition of `min_gru` (sequential `lax.scan`)."""
    return min_gru(z_logits, h_tilde, method="ref", **kwargs)


def min_lstm_ref(f_logits, i_logits, h_tilde, **kwargs):
    """The definition of `min_lstm` (sequential `lax.scan`)."""
    return min_lstm(f_logits, i_logits, h_tilde, method="ref", **kwargs)


def min_gru_step(h: jax.Array, z_logit_t: jax.Array, h_tilde_t: jax.Array):
    """Streaming minGRU: `(h: [b, d], k_t: [b, d], h~_t: [b, d]) -> (h, h_t)`."""
    z = jax.nn.sigmoid(z_logit_t.astype(h.dtype))
    h = (1.0 - z) * h + z * h_tilde_t.astype(h.dtype)
    return h, h


def min_lstm_step(h: jax.Array, f_logit_t, i_logit_t, h_tilde_t):
    """Streaming minLSTM: `(h: [b, d], kf_t, ki_t, h~_t: [b, d]) -> (h, h_t)`."""
    log_f, log_i = _min_lstm_gates(f_logit_t.astype(h.dtype), i_logit_t.astype(h.dtype))
    h = jnp.exp(log_f) * h + jnp.exp(log_i) * h_tilde_t.astype(h.dtype)
    return h, h
