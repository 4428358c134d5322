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

from lib.kernels.linear_recurrence import _pick_block

_DOT = functools.partial(jnp.dot, preferred_element_type=jnp.float32)


def _dot_t(x, y):
    """x @ y^T for 2-D x [m, k], y [n, k]."""
    return lax.dot_general(x, y, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)


def _t_dot(x, y):
    """x^T @ y for 2-D x [m, k], y [m, n]."""
    return lax.dot_general(x, y, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)


def _tril(n, strict=False):
    i = lax.broadcasted_iota(jnp.int32, (n, n), 0)
    j = lax.broadcasted_iota(jnp.int32, (n, n), 1)
    return (j < i) if strict else (j <= i)


def _scores(x, y, b, sub):
    """P_ij = sum_k x_ik y_jk exp(b_ik - b_jk) for j <= i (zero above), exponents all <= 0."""
    c = x.shape[0]
    rows = []
    for bi in range(c // sub):
        i0 = bi * sub
        xi, bi_ = x[i0 : i0 + sub], b[i0 : i0 + sub]
        blocks = []
        for bj in range(c // sub):
            j0 = bj * sub
            if bj > bi:
                blocks.append(jnp.zeros((sub, sub), jnp.float32))
            elif bj < bi:
                ref = b[j0 + sub - 1 : j0 + sub]  # last step of the key sub-chunk
                xs = xi * jnp.exp(bi_ - ref)
                ys = y[j0 : j0 + sub] * jnp.exp(ref - b[j0 : j0 + sub])
                blocks.append(_dot_t(xs, ys))
            else:
                diff = bi_[:, None, :] - bi_[None, :, :]  # [sub, sub, dk]
                diff = jnp.where(_tril(sub)[:, :, None], diff, -jnp.inf)
                pair = xi[:, None, :] * y[j0 : j0 + sub][None, :, :] * jnp.exp(diff)
                blocks.append(jnp.sum(pair, axis=-1))
        rows.append(jnp.concatenate(blocks, axis=1))
    return jnp.concatenate(rows, axis=0)


def _apply(p, y, b, sub):
    """R_i = sum_{j <= i} p_ij (y_j * exp(b_i - b_j)), row-wise decayed apply (exponents <= 0)."""
    c = p.shape[0]
    out = []
    for bi in range(c // sub):
        i0 = bi * sub
        bi_ = b[i0 : i0 + sub]
        acc = jnp.zeros((sub, y.shape[1]), jnp.float32)
        for bj in range(bi + 1):
            j0 = bj * sub
            pij = p[i0 : i0 + sub, j0 : j0 + sub]
            if bj < bi:
                ref = b[j0 + sub - 1 : j0 + sub]
                ys = y[j0 : j0 + sub] * jnp.exp(ref - b[j0 : j0 + sub])
                acc = acc + _DOT(pij, ys) * jnp.exp(bi_ - ref)
            else:
                diff = bi_[:, None, :] - b[j0 : j0 + sub][None, :, :]
                diff = jnp.where(_tril(sub)[:, :, None], diff, -jnp.inf)
                acc = acc + jnp.sum(
                    pij[:, :, None] * y[j0 : j0 + sub][None] * jnp.exp(diff), axis=1
                )
        out.append(acc)
    return jnp.concatenate(out, axis=0)


def _apply_t(p, x, b, sub):
    """R_j = sum_{i >= j} p_ij (x_i * exp(b_i - b_j)), the transposed decayed apply."""
    c = p.shape[0]
    out = []
    for bj in range(c // sub):
        j0 = bj * sub
        bj_ = b[j0 : j0 + sub]
        acc = jnp.zeros((sub, x.shape[1]), jnp.float32)
        for bi in range(bj, c // sub):
            i0 = bi * sub
            pij = p[i0 : i0 + sub, j0 : j0 + sub]
            if bi > bj:
                ref = b[j0 + sub - 1 : j0 + sub]
                xs = x[i0 : i0 + sub] * jnp.exp(b[i0 : i0 + sub] - ref)
                acc = acc + _t_dot(pij, xs) * jnp.exp(ref - bj_)
            else:
                diff = b[i0 : i0 + sub][:, None, :] - bj_[None, :, :]  # [i, j, dk]
                diff = jnp.where(_tril(sub)[:, :, None], diff, -jnp.inf)
                acc = acc + jnp.sum(
                    pij[:, :, None] * x[i0 : i0 + sub][:, None] * jnp.exp(diff), axis=0
                )
        out.append(acc)
    return jnp.concatenate(out, axis=0)


def _load(ref, t0, chunk):
    return ref[pl.ds(t0, chunk), :].astype(jnp.float32)


def _fwd_kernel(q_ref, k_ref, v_ref, g_ref, s0_ref, o_ref, sT_ref, *, chunk, sub, num_chunks):
    def body(ci, s):
        t0 = ci * chunk
        q, k, v = _load(q_ref, t0, chunk), _load(k_ref, t0, chunk), _load(v_ref, t0, chunk)
        b = jnp.cumsum(_load(g_ref, t0, chunk), axis=0)
        o = _DOT(q * jnp.exp(b), s) + _DOT(_scores(q, k, b, sub), v)
        o_ref[pl.ds(t0, chunk), :] = o.astype(o_ref.dtype)
        last = b[chunk - 1 :]
        return jnp.transpose(jnp.exp(last)) * s + _t_dot(k * jnp.exp(last - b), v)

    sT_ref[...] = lax.fori_loop(0, num_chunks, body, s0_ref[...].astype(jnp.float32))


def _bwd_kernel(
    q_ref, k_ref, v_ref, g_ref, s0_ref, do_ref, dsT_ref,
    dq_ref, dk_ref, dv_ref, ds0_ref, *, chunk, sub, num_chunks,
):  # fmt: skip
    def forward(ci, s):  # dq needs the state entering each chunk
        t0 = ci * chunk
        k, v = _load(k_ref, t0, chunk), _load(v_ref, t0, chunk)
        do = _load(do_ref, t0, chunk)
        b = jnp.cumsum(_load(g_ref, t0, chunk), axis=0)
        dq = _dot_t(do, s) * jnp.exp(b) + _apply(_dot_t(do, v), k, b, sub)
        dq_ref[pl.ds(t0, chunk), :] = dq
        last = b[chunk - 1 :]
        return jnp.transpose(jnp.exp(last)) * s + _t_dot(k * jnp.exp(last - b), v)

    lax.fori_loop(0, num_chunks, forward, s0_ref[...].astype(jnp.float32))

    def backward(i, ds):  # ds: gradient of the state leaving this chunk
        t0 = (num_chunks - 1 - i) * chunk
        q, k, v = _load(q_ref, t0, chunk), _load(k_ref, t0, chunk), _load(v_ref, t0, chunk)
        do = _load(do_ref, t0, chunk)
        b = jnp.cumsum(_load(g_ref, t0, chunk), axis=0)
        last = b[chunk - 1 :]
        k_dec = k * jnp.exp(last - b)
        dk = _apply_t(_dot_t(do, v), q, b, sub) + _dot_t(v, ds) * jnp.exp(last - b)
        dv = _t_dot(_scores(q, k, b, sub), do) + _DOT(k_dec, ds)
        dk_ref[pl.ds(t0, chunk), :] = dk
        dv_ref[pl.ds(t0, chunk), :] = dv
        return jnp.transpose(jnp.exp(last)) * ds + _t_dot(q * jnp.exp(b), do)

    ds0_ref[...] = lax.fori_loop(0, num_chunks, backward, dsT_ref[...].astype(jnp.float32))


def _specs(t, dk, bv):
    qk = pl.BlockSpec((None, t, None, dk), lambda b, h, j: (b, 0, h, 0))
    vv = pl.BlockSpec((None, t, None, bv), lambda b, h, j: (b, 0, h, j))
    st = pl.BlockSpec((None, None, dk, bv), lambda b, h, j: (b, h, 0, j))
    part = pl.BlockSpec((None, None, t, None, dk), lambda b, h, j: (b, j, 0, h, 0))
    return qk, vv, st, part


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
        name="gla_forward",
    )(q, k, v, g, s0)


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
        name="gla_backward",
    )(q, k, v, g, s0, do, ds_last.astype(f32))
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
    """
    bsz, length, nh, dk = q.shape
    dv = v.shape[-1]
    if g.ndim == 3:
        g = jnp.broadcast_to(g[..., None], q.shape)
    if chunk_size % sub_chunk:
        raise ValueError(f"chunk_size={chunk_size} must be a multiple of sub_chunk={sub_chunk}")
    if interpret is None:
        interpret = jax.default_backend() not in ("gpu", "cuda", "rocm", "tpu")
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
    o = o[:, :length]
    return (o, s_last) if return_final_state else o
