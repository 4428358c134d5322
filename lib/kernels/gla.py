"""Pallas kernels for chunked gated linear attention (GLA, Yang et al. 2024), forward and backward.

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,        o_t = q_t S_t      (q pre-scaled)

One program owns one (batch, head, block of `block_v` value channels); it walks the chunks of
`chunk` steps in order with the state block S [dk, block_v] in registers (float32):

    o_C = (q * e^{b}) S + A v,        A_ij = sum_k q_ik k_jk e^{b_ik - b_jk}  (j <= i)
    S  <- e^{b_last} * S + (k * e^{b_last - b})^T v

with b the cumulative log gate inside the chunk. Every exponent is of a difference taken in
the causal direction, so it is <= 0 and never overflows however strong the decay: between
sub-chunks of `sub` steps the decay is split at the key sub-chunk's last step (two factors
<= 1 and a matmul); inside a diagonal sub-chunk it is formed pairwise ([sub, sub, dk]).

The backward recomputes the chunk-start states going forward (for dq), then walks chunks in
reverse carrying dS (for dk, dv and the initial state's gradient); the gate's gradient is
dg_u = sum_{t >= u} (q_t dq_t - k_t dk_t) + [S_T dS_T summed over values], a reverse cumsum
done by XLA outside the kernels.

Reference: `lib.ops.linear_attention.gla(..., method="recurrent")`.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from lib.kernels._common import compiler_params, pad_axis, pow2_at_least
from lib.kernels.linear_recurrence import _pick_block

_DOT = functools.partial(jnp.dot, preferred_element_type=jnp.float32)


def _dot_t(x, y):
    """x @ y^T for 2-D x [m, k], y [n, k]."""
    return lax.dot_general(x, y, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)


def _t_dot(x, y):
    """x^T @ y for 2-D x [m, k], y [m, n]."""
    return lax.dot_general(x, y, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)


def _iota(n, axis, shape=None):
    return lax.broadcasted_iota(jnp.int32, shape or (n, n), axis)


def _load(ref, t0, n):
    """Rows t0..t0+n of a [time, channels] block, as float32."""
    return ref[pl.ds(t0, n), :].astype(jnp.float32)


def _column(x, c):
    """Column c of a [m, n] value as [m, 1] (a masked sum: value slicing does not lower to Triton)."""
    return jnp.sum(jnp.where(_iota(x.shape[1], 1, x.shape) == c, x, 0.0), axis=1, keepdims=True)


def _row_as_column(x, r):
    """Row r of a [m, n] value, transposed to [n, 1]."""
    row = jnp.sum(jnp.where(_iota(x.shape[0], 0, x.shape) == r, x, 0.0), axis=0, keepdims=True)
    return jnp.transpose(row)


class _Chunk:
    """Sub-chunks of one chunk, loaded once from the refs: lists of [sub, channels] values.

    `b` is the cumulative log gate inside the chunk (computed by XLA before the kernel), so
    `b[t] - b[s]` for s <= t is the total log decay between steps s and t (<= 0). `ref[j]` is
    b at the last step of sub-chunk j, the reference point that splits decays across sub-chunks
    into two factors <= 1. Rows of b and k inside a sub-chunk are re-read one at a time from the
    refs where the pairwise (diagonal-block) terms need them.
    """

    def __init__(self, refs, t0, chunk, sub):
        self.t0, self.sub, self.n = t0, sub, chunk // sub
        self.refs = refs
        self.x = {
            name: [_load(r, t0 + j * sub, sub) for j in range(self.n)] for name, r in refs.items()
        }
        self.ref = [_load(refs["b"], t0 + j * sub + sub - 1, 1) for j in range(self.n)]
        self.last = self.ref[-1]  # [1, dk]

    def row(self, name, j, r):
        return _load(self.refs[name], self.t0 + j * self.sub + r, 1)  # [1, channels]


def _causal_exp(b_rows, b_r, r, lower):
    """exp(b_rows - b_r) on rows >= r (lower=True) or rows <= r, else 0; exponents <= 0."""
    rows = _iota(b_rows.shape[0], 0, b_rows.shape)
    keep = rows >= r if lower else rows <= r
    return jnp.exp(jnp.where(keep, b_rows - b_r, -jnp.inf))


def _scores_block(c, x, y, i, j):
    """P_ij = sum_k x_ik y_jk exp(b_ik - b_jk) for sub-chunks i >= j (causal inside i == j)."""
    bi = c.x["b"][i]
    if j < i:
        ref = c.ref[j]
        return _dot_t(c.x[x][i] * jnp.exp(bi - ref), c.x[y][j] * jnp.exp(ref - c.x["b"][j]))
    out = jnp.zeros((c.sub, c.sub), jnp.float32)
    cols = _iota(c.sub, 1)
    for r in range(c.sub):  # column r: keys at step r of the sub-chunk, queries at rows >= r
        term = c.x[x][i] * c.row(y, j, r) * _causal_exp(bi, c.row("b", j, r), r, lower=True)
        out = jnp.where(cols == r, jnp.sum(term, axis=1, keepdims=True), out)
    return out


def _apply_block(c, p, y, i, j):
    """R_i += sum_{s in j, s <= t} p_ts (y_s exp(b_t - b_s)) for sub-chunks i >= j."""
    bi = c.x["b"][i]
    if j < i:
        ref = c.ref[j]
        return _DOT(p, c.x[y][j] * jnp.exp(ref - c.x["b"][j])) * jnp.exp(bi - ref)
    out = jnp.zeros((c.sub, c.x[y][j].shape[1]), jnp.float32)
    for r in range(c.sub):
        dec = _causal_exp(bi, c.row("b", j, r), r, lower=True)
        out = out + _column(p, r) * c.row(y, j, r) * dec
    return out


def _apply_t_block(c, p, x, i, j):
    """R_j += sum_{t in i, t >= s} p_ts (x_t exp(b_t - b_s)) for sub-chunks i >= j."""
    bj = c.x["b"][j]
    if i > j:
        ref = c.ref[j]
        return _t_dot(p, c.x[x][i] * jnp.exp(c.x["b"][i] - ref)) * jnp.exp(ref - bj)
    out = jnp.zeros((c.sub, c.x[x][i].shape[1]), jnp.float32)
    for r in range(c.sub):  # query step r contributes to key rows <= r
        dec = _causal_exp(-bj, -c.row("b", i, r), r, lower=False)  # exp(b_r - b_s), s <= r
        out = out + _row_as_column(p, r) * c.row(x, i, r) * dec
    return out


def _fwd_kernel(q_ref, k_ref, v_ref, b_ref, s0_ref, o_ref, sT_ref, *, chunk, sub, num_chunks):
    def body(ci, s):
        t0 = ci * chunk
        c = _Chunk({"q": q_ref, "k": k_ref, "v": v_ref, "b": b_ref}, t0, chunk, sub)
        s_new = jnp.transpose(jnp.exp(c.last)) * s
        for i in range(c.n):
            o = _DOT(c.x["q"][i] * jnp.exp(c.x["b"][i]), s)
            for j in range(i + 1):
                o = o + _DOT(_scores_block(c, "q", "k", i, j), c.x["v"][j])
            o_ref[pl.ds(t0 + i * sub, sub), :] = o.astype(o_ref.dtype)
            s_new = s_new + _t_dot(c.x["k"][i] * jnp.exp(c.last - c.x["b"][i]), c.x["v"][i])
        return s_new

    sT_ref[...] = lax.fori_loop(0, num_chunks, body, s0_ref[...].astype(jnp.float32))


def _bwd_kernel(
    q_ref, k_ref, v_ref, b_ref, s0_ref, do_ref, dsT_ref,
    dq_ref, dk_ref, dv_ref, ds0_ref, *, chunk, sub, num_chunks,
):  # fmt: skip
    refs = {"q": q_ref, "k": k_ref, "v": v_ref, "b": b_ref, "do": do_ref}

    def forward(ci, s):  # dq needs the state entering each chunk
        t0 = ci * chunk
        c = _Chunk(refs, t0, chunk, sub)
        s_new = jnp.transpose(jnp.exp(c.last)) * s
        for i in range(c.n):
            dq = _dot_t(c.x["do"][i], s) * jnp.exp(c.x["b"][i])
            for j in range(i + 1):
                dq = dq + _apply_block(c, _dot_t(c.x["do"][i], c.x["v"][j]), "k", i, j)
            dq_ref[pl.ds(t0 + i * sub, sub), :] = dq
            s_new = s_new + _t_dot(c.x["k"][i] * jnp.exp(c.last - c.x["b"][i]), c.x["v"][i])
        return s_new

    lax.fori_loop(0, num_chunks, forward, s0_ref[...].astype(jnp.float32))

    def backward(ci, ds):  # ds: gradient of the state leaving this chunk
        t0 = (num_chunks - 1 - ci) * chunk
        c = _Chunk(refs, t0, chunk, sub)
        ds_new = jnp.transpose(jnp.exp(c.last)) * ds
        for j in range(c.n):
            dec = jnp.exp(c.last - c.x["b"][j])
            dk = _dot_t(c.x["v"][j], ds) * dec
            dv = _DOT(c.x["k"][j] * dec, ds)
            for i in range(j, c.n):
                dk = dk + _apply_t_block(c, _dot_t(c.x["do"][i], c.x["v"][j]), "q", i, j)
                dv = dv + _t_dot(_scores_block(c, "q", "k", i, j), c.x["do"][i])
            dk_ref[pl.ds(t0 + j * sub, sub), :] = dk
            dv_ref[pl.ds(t0 + j * sub, sub), :] = dv
            ds_new = ds_new + _t_dot(c.x["q"][j] * jnp.exp(c.x["b"][j]), c.x["do"][j])
        return ds_new

    ds0_ref[...] = lax.fori_loop(0, num_chunks, backward, dsT_ref[...].astype(jnp.float32))


def _specs(t, dk, bv):
    qk = pl.BlockSpec((None, t, None, dk), lambda b, h, j: (b, 0, h, 0))
    vv = pl.BlockSpec((None, t, None, bv), lambda b, h, j: (b, 0, h, j))
    st = pl.BlockSpec((None, None, dk, bv), lambda b, h, j: (b, h, 0, j))
    part = pl.BlockSpec((None, None, t, None, dk), lambda b, h, j: (b, j, 0, h, 0))
    return qk, vv, st, part


def _chunk_cumsum(g, chunk):
    """Cumulative sum of the log gate inside each chunk of `chunk` steps (axis 1), float32."""
    bsz, t, nh, dk = g.shape
    b = jnp.cumsum(g.astype(jnp.float32).reshape(bsz, t // chunk, chunk, nh, dk), axis=2)
    return b.reshape(g.shape)


def _forward(q, k, v, g, s0, chunk, sub, block_v, interpret):
    bsz, t, nh, dk = q.shape
    dv = v.shape[-1]
    bv = _pick_block(dv, block_v)
    qk, vv, st, _ = _specs(t, dk, bv)
    kern = functools.partial(_fwd_kernel, chunk=chunk, sub=sub, num_chunks=t // chunk)
    return pl.pallas_call(
        kern,
        grid=(bsz, nh, dv // bv),
        in_specs=[qk, qk, vv, qk, st],
        out_specs=[vv, st],
        out_shape=[
            jax.ShapeDtypeStruct((bsz, t, nh, dv), v.dtype),
            jax.ShapeDtypeStruct((bsz, nh, dk, dv), jnp.float32),
        ],
        interpret=interpret,
        compiler_params=compiler_params(),
        name="gla_forward",
    )(q, k, v, _chunk_cumsum(g, chunk), s0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7, 8))
def _gla(q, k, v, g, s0, chunk, sub, block_v, interpret):
    return _forward(q, k, v, g, s0, chunk, sub, block_v, interpret)


def _gla_fwd(q, k, v, g, s0, chunk, sub, block_v, interpret):
    o, s_last = _forward(q, k, v, g, s0, chunk, sub, block_v, interpret)
    return (o, s_last), (q, k, v, g, s0, s_last)


def _gla_bwd(chunk, sub, block_v, interpret, res, cts):
    do, ds_last = cts
    q, k, v, g, s0, s_last = res
    bsz, t, nh, dk = q.shape
    dv = v.shape[-1]
    bv = _pick_block(dv, block_v)
    nv = dv // bv
    qk, vv, st, part = _specs(t, dk, bv)
    f32 = jnp.float32
    kern = functools.partial(_bwd_kernel, chunk=chunk, sub=sub, num_chunks=t // chunk)
    dq, dk_, dv_, ds0 = pl.pallas_call(
        kern,
        grid=(bsz, nh, nv),
        in_specs=[qk, qk, vv, qk, st, vv, st],
        out_specs=[part, part, vv, st],
        out_shape=[
            jax.ShapeDtypeStruct((bsz, nv, t, nh, dk), f32),
            jax.ShapeDtypeStruct((bsz, nv, t, nh, dk), f32),
            jax.ShapeDtypeStruct((bsz, t, nh, dv), f32),
            jax.ShapeDtypeStruct((bsz, nh, dk, dv), f32),
        ],
        interpret=interpret,
        compiler_params=compiler_params(),
        name="gla_backward",
    )(q, k, v, _chunk_cumsum(g, chunk), s0, do, ds_last.astype(f32))
    dq, dk_ = jnp.sum(dq, axis=1), jnp.sum(dk_, axis=1)
    qf, kf = q.astype(f32), k.astype(f32)
    da = qf * dq - kf * dk_  # [b, t, h, dk]
    end = jnp.sum(s_last * ds_last.astype(f32), axis=-1)  # [b, h, dk]
    dg = jnp.flip(jnp.cumsum(jnp.flip(da, 1), axis=1), 1) + end[:, None]
    return (
        dq.astype(q.dtype),
        dk_.astype(k.dtype),
        dv_.astype(v.dtype),
        dg.astype(g.dtype),
        ds0.astype(s0.dtype),
    )


_gla.defvjp(_gla_fwd, _gla_bwd)


def gla_pallas(
    q, k, v, g, *, scale=None, initial_state=None, return_final_state=False,
    chunk_size=64, sub_chunk=16, block_v=None, interpret=None,
):  # fmt: skip
    """Chunked gated linear attention with Pallas kernels; the contract of `lib.ops.linear_attention.gla`.

    Args:
      q, k: [batch, length, heads, dk];  v: [batch, length, heads, dv];
      g: log forget gate (<= 0), [batch, length, heads, dk], or [batch, length, heads] for a
        scalar gate per head (RetNet / Mamba-2 SSD), broadcast over dk;
      scale: query scale, default dk ** -0.5;
      initial_state: [batch, heads, dk, dv];  return_final_state: also return S_T (float32).
      chunk_size: steps per chunk (matmul level); sub_chunk: steps per diagonal sub-block.
      block_v: value channels per program; interpret: Pallas interpreter (default off-GPU/TPU).

    Returns:
      o [batch, length, heads, dv] in v's dtype, and S_T [batch, heads, dk, dv] when asked.

    Log gates are clamped at `G_FLOOR` (exp of it is exactly 0 in float32, like exp(-inf)), so
    a gate of -inf gives the recurrence's exact zero decay, not `-inf - (-inf)`. The kernel's
    matmuls multiply masked zeros by later inputs, so inputs holding a NaN or inf run the
    recurrence (`gla_ref`) instead, which keeps outputs at t independent of inputs after t.
    """
    from lib.ops._checks import finite_or  # noqa: PLC0415
    from lib.ops.linear_attention.gated import G_FLOOR, gla_ref  # noqa: PLC0415 (op imports us)

    g = jnp.maximum(g, G_FLOOR)

    def kernel():
        return _gla_pallas(
            q, k, v, g, scale, initial_state, chunk_size, sub_chunk, block_v, interpret
        )

    def recurrence():
        o, s_last = gla_ref(q, k, v, g, scale=scale, initial_state=initial_state)
        return o.astype(v.dtype), s_last

    o, s_last = finite_or(kernel, recurrence, q, k, v, g, initial_state)
    return (o, s_last) if return_final_state else o


def _gla_pallas(q, k, v, g, scale, initial_state, chunk_size, sub_chunk, block_v, interpret):
    bsz, length, nh, dk = q.shape
    dv = v.shape[-1]
    if g.ndim == 3:
        g = jnp.broadcast_to(g[..., None], q.shape)
    if chunk_size % sub_chunk:
        raise ValueError(f"chunk_size={chunk_size} must be a multiple of sub_chunk={sub_chunk}")
    if interpret is None:
        interpret = jax.default_backend() not in ("gpu", "cuda", "rocm", "tpu")
    if not interpret and sub_chunk != pow2_at_least(sub_chunk, 16):
        raise ValueError(
            f"sub_chunk={sub_chunk} must be a power of two >= 16 for the GPU kernel (Triton)"
        )
    scale = dk**-0.5 if scale is None else scale
    q = q * jnp.asarray(scale, q.dtype)
    pad = (-length) % chunk_size
    if pad:  # zero q, k, v and a zero log gate change neither the outputs nor the final state
        widths = ((0, 0), (0, pad), (0, 0), (0, 0))
        q, k, v, g = (jnp.pad(x, widths) for x in (q, k, v, g))
    if initial_state is None:
        s0 = jnp.zeros((bsz, nh, dk, dv), jnp.float32)
    else:
        s0 = initial_state.astype(jnp.float32)
    # Zero-pad dk and dv to powers of two >= 16 (Triton tensor sizes; tl.dot operands): padded
    # key channels have q = k = 0 and gate 0, padded value channels v = 0, and zero initial
    # state rows/columns, so they add nothing and the real outputs and state are unchanged.
    dkp, dvp = pow2_at_least(dk, 16), pow2_at_least(dv, 16)
    q, k, g = (pad_axis(x, -1, dkp) for x in (q, k, g))
    v = pad_axis(v, -1, dvp)
    s0 = pad_axis(pad_axis(s0, -2, dkp), -1, dvp)
    o, s_last = _gla(
        q,
        k,
        v,
        g.astype(jnp.float32),
        s0,
        int(chunk_size),
        int(sub_chunk),
        block_v,
        bool(interpret),
    )
    return o[:, :length, :, :dv], s_last[:, :, :dk, :dv]
