"""Pallas kernels for Mamba's selective scan (forward and backward, Gu & Dao 2023).

Forward, per (batch row, block of `block_d` channels), state h [block_d, n] in registers:

    delta_t = softplus(delta_t + delta_bias)   (when asked)
    h_t = exp(delta_t A) * h_{t-1} + (delta_t u_t) B_t
    y_t = C_t . h_t + D u_t,   then y_t *= silu(z_t)

The forward writes y and a checkpoint of the state every `chunk` steps. The backward walks
the chunks in reverse: it recomputes the chunk's states from its checkpoint into a per-program
scratch buffer, then walks the chunk backwards accumulating dA and dD in registers and writing
du, ddelta and per-block partial dB, dC (summed over channel blocks outside the kernel, since
B and C are shared by all channels). Memory is O(L/chunk) states rather than O(L).

Reference: `lib.ops.ssm.selective_scan(..., method="scan")`.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from lib.kernels._common import compiler_params, pad_axis, pow2_at_least
from lib.kernels.linear_recurrence import _pick_block


def _col(row):
    """[1, k] -> [k, 1]."""
    return jnp.transpose(row)


def _fwd_kernel(
    u_ref, dl_ref, a_ref, b_ref, c_ref, h0_ref, y_ref, ck_ref, hT_ref, *, length, chunk
):
    a = a_ref[...].astype(jnp.float32)  # [bd, n]

    def body(t, h):
        @pl.when(lax.rem(t, chunk) == 0)  # lax.rem: jnp.remainder does not lower to Triton
        def _():
            ck_ref[pl.ds(t // chunk, 1), :, :] = h[None]

        u = u_ref[pl.ds(t, 1), :].astype(jnp.float32)  # [1, bd]
        dl = dl_ref[pl.ds(t, 1), :].astype(jnp.float32)
        bt = b_ref[pl.ds(t, 1), :].astype(jnp.float32)  # [1, n]
        ct = c_ref[pl.ds(t, 1), :].astype(jnp.float32)
        h = jnp.exp(_col(dl) * a) * h + _col(dl * u) * bt
        y_ref[pl.ds(t, 1), :] = jnp.transpose(jnp.sum(h * ct, axis=1, keepdims=True))
        return h

    hT_ref[...] = lax.fori_loop(0, length, body, h0_ref[...].astype(jnp.float32))


def _bwd_kernel(
    u_ref, dl_ref, a_ref, b_ref, c_ref, ck_ref, dy_ref, dhT_ref,
    du_ref, ddl_ref, da_ref, db_ref, dc_ref, dh0_ref, hs_ref, *, length, chunk,
):  # fmt: skip
    a = a_ref[...].astype(jnp.float32)
    num_chunks = (length + chunk - 1) // chunk

    def load(t):
        u = u_ref[pl.ds(t, 1), :].astype(jnp.float32)
        dl = dl_ref[pl.ds(t, 1), :].astype(jnp.float32)
        return (
            u,
            dl,
            b_ref[pl.ds(t, 1), :].astype(jnp.float32),
            c_ref[pl.ds(t, 1), :].astype(jnp.float32),
        )

    def chunk_body(ci, carry):
        c = num_chunks - 1 - ci
        start = c * chunk
        steps = jnp.minimum(chunk, length - start)

        # Recompute the states entering each step of this chunk: hs[k] = h_{start+k-1}.
        def recompute(k, h):
            hs_ref[pl.ds(k, 1), :, :] = h[None]
            u, dl, bt, _ = load(start + k)
            return jnp.exp(_col(dl) * a) * h + _col(dl * u) * bt

        lax.fori_loop(0, steps, recompute, ck_ref[pl.ds(c, 1), :, :][0])

        def back(j, carry):
            dh, da = carry
            k = steps - 1 - j
            t = start + k
            u, dl, bt, ct = load(t)
            h_prev = hs_ref[pl.ds(k, 1), :, :][0]
            decay = jnp.exp(_col(dl) * a)  # [bd, n]
            h = decay * h_prev + _col(dl * u) * bt
            dy = _col(dy_ref[pl.ds(t, 1), :].astype(jnp.float32))  # [bd, 1]
            dc_ref[pl.ds(t, 1), :] = jnp.sum(dy * h, axis=0, keepdims=True)
            dh = dh + dy * ct
            g_decay = dh * h_prev * decay  # d/d(delta A) of the decay term
            da = da + g_decay * _col(dl)
            ddl = jnp.sum(g_decay * a + dh * _col(u) * bt, axis=1, keepdims=True)  # [bd, 1]
            ddl_ref[pl.ds(t, 1), :] = jnp.transpose(ddl)
            du_ref[pl.ds(t, 1), :] = jnp.transpose(
                _col(dl) * jnp.sum(dh * bt, axis=1, keepdims=True)
            )
            db_ref[pl.ds(t, 1), :] = jnp.sum(dh * _col(dl * u), axis=0, keepdims=True)
            return decay * dh, da

        return lax.fori_loop(0, steps, back, carry)

    dh_last = dhT_ref[...].astype(jnp.float32)
    dh0, da = lax.fori_loop(0, num_chunks, chunk_body, (dh_last, jnp.zeros(a.shape, jnp.float32)))
    da_ref[...] = da
    dh0_ref[...] = dh0


def _specs(length, bd, n, num_chunks):
    seq_d = pl.BlockSpec((None, length, bd), lambda i, j: (i, 0, j))
    seq_n = pl.BlockSpec((None, length, n), lambda i, j: (i, 0, 0))
    mat = pl.BlockSpec((bd, n), lambda i, j: (j, 0))
    ck = pl.BlockSpec((None, None, num_chunks, bd, n), lambda i, j: (i, j, 0, 0, 0))
    state = pl.BlockSpec((None, bd, n), lambda i, j: (i, j, 0))
    return seq_d, seq_n, mat, ck, state


def _forward(u, dl, A, B, C, h0, chunk, block_d, interpret):
    bsz, length, d = u.shape
    n = A.shape[1]
    bd = _pick_block(d, block_d)
    nc = (length + chunk - 1) // chunk
    seq_d, seq_n, mat, ck, state = _specs(length, bd, n, nc)
    return pl.pallas_call(
        functools.partial(_fwd_kernel, length=length, chunk=chunk),
        grid=(bsz, d // bd),
        in_specs=[seq_d, seq_d, mat, seq_n, seq_n, state],
        out_specs=[seq_d, ck, state],
        out_shape=[
            jax.ShapeDtypeStruct((bsz, length, d), jnp.float32),
            jax.ShapeDtypeStruct((bsz, d // bd, nc, bd, n), jnp.float32),
            jax.ShapeDtypeStruct((bsz, d, n), jnp.float32),
        ],
        interpret=interpret,
        compiler_params=compiler_params(),
        name="selective_scan_forward",
    )(u, dl, A, B, C, h0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8))
def _scan(u, dl, A, B, C, h0, chunk, block_d, interpret):
    y, _, h_last = _forward(u, dl, A, B, C, h0, chunk, block_d, interpret)
    return y, h_last


def _scan_fwd(u, dl, A, B, C, h0, chunk, block_d, interpret):
    y, ckpt, h_last = _forward(u, dl, A, B, C, h0, chunk, block_d, interpret)
    return (y, h_last), (u, dl, A, B, C, ckpt)


def _scan_bwd(chunk, block_d, interpret, res, cotangents):
    dy, dh_last = cotangents
    u, dl, A, B, C, ckpt = res
    bsz, length, d = u.shape
    n = A.shape[1]
    bd = _pick_block(d, block_d)
    nb = d // bd
    nc = (length + chunk - 1) // chunk
    seq_d, seq_n, mat, ck, state = _specs(length, bd, n, nc)
    part = pl.BlockSpec((None, None, length, n), lambda i, j: (i, j, 0, 0))
    da_spec = pl.BlockSpec((None, bd, n), lambda i, j: (i, j, 0))
    scratch = pl.BlockSpec((None, None, chunk, bd, n), lambda i, j: (i, j, 0, 0, 0))
    f32 = jnp.float32
    du, ddl, da, db, dc, dh0, _ = pl.pallas_call(
        functools.partial(_bwd_kernel, length=length, chunk=chunk),
        grid=(bsz, nb),
        in_specs=[seq_d, seq_d, mat, seq_n, seq_n, ck, seq_d, state],
        out_specs=[seq_d, seq_d, da_spec, part, part, state, scratch],
        out_shape=[
            jax.ShapeDtypeStruct((bsz, length, d), f32),
            jax.ShapeDtypeStruct((bsz, length, d), f32),
            jax.ShapeDtypeStruct((bsz, d, n), f32),
            jax.ShapeDtypeStruct((bsz, nb, length, n), f32),
            jax.ShapeDtypeStruct((bsz, nb, length, n), f32),
            jax.ShapeDtypeStruct((bsz, d, n), f32),
            jax.ShapeDtypeStruct((bsz, nb, chunk, bd, n), f32),
        ],
        interpret=interpret,
        compiler_params=compiler_params(),
        name="selective_scan_backward",
    )(u, dl, A, B, C, ckpt, dy, dh_last)
    return (
        du.astype(u.dtype),
        ddl.astype(dl.dtype),
        jnp.sum(da, axis=0).astype(A.dtype),
        jnp.sum(db, axis=1).astype(B.dtype),
        jnp.sum(dc, axis=1).astype(C.dtype),
        dh0,
    )


_scan.defvjp(_scan_fwd, _scan_bwd)


def selective_scan_pallas(
    u, delta, A, B, C, D=None, *, z=None, delta_bias=None, delta_softplus=False,
    initial_state=None, return_final_state=False, chunk=64, block_d=None, interpret=None,
):  # fmt: skip
    """Mamba's selective scan with Pallas kernels; the contract of `lib.ops.ssm.selective_scan`.

    Args:
      u, delta: [batch, length, d];  A: [d, n];  B, C: [batch, length, n];  D: [d] or None;
      z: optional gate [batch, length, d] (y *= silu(z));  delta_bias: [d] or None;
      delta_softplus: apply softplus to delta (+ bias) first.
      initial_state: [batch, d, n] state before the first step (zeros when None).
      return_final_state: also return the state after the last step, [batch, d, n] float32
        (it gets a gradient like any output).
      chunk: steps between state checkpoints kept for the backward pass.
      block_d, interpret: as in `linear_recurrence_pallas`.

    Returns:
      y [batch, length, d] in u's dtype (the state is float32), and the final state when asked. The state-space part runs in
      the kernels; the bias, softplus, skip and gate are elementwise and left to XLA to fuse.
    """
    if interpret is None:
        interpret = jax.default_backend() not in ("gpu", "cuda", "rocm", "tpu")
    dt = delta.astype(jnp.float32)
    if delta_bias is not None:
        dt = dt + delta_bias.astype(jnp.float32)
    if delta_softplus:
        dt = jax.nn.softplus(dt)
    bsz, _, d = u.shape
    n = A.shape[1]
    if initial_state is None:
        h0 = jnp.zeros((bsz, d, n), jnp.float32)
    else:
        h0 = initial_state.astype(jnp.float32)
    # Zero-pad the state size to a power of two (Triton's tensors): a padded state channel has
    # A = 0, B = 0, C = 0 and h0 = 0, so it stays 0 and adds nothing to y.
    npad = pow2_at_least(n)
    A32, B, C, h0 = (pad_axis(x, -1, npad) for x in (A.astype(jnp.float32), B, C, h0))
    y, h_last = _scan(u, dt, A32, B, C, h0, int(chunk), block_d, bool(interpret))
    h_last = h_last[..., :n]
    if D is not None:
        y = y + u.astype(jnp.float32) * D.astype(jnp.float32)
    if z is not None:
        y = y * jax.nn.silu(z.astype(jnp.float32))
    y = y.astype(u.dtype)
    return (y, h_last) if return_final_state else y
