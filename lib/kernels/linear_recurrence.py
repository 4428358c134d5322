"""Pallas kernel for the diagonal linear recurrence h_t = a_t * h_{t-1} + b_t (forward and reverse).

One program owns one batch row and a block of `block_d` channels; it walks time in a
`fori_loop`, keeping the state in registers (float32 whatever the input dtype), reading one
row of `a` and `b` and writing one row of `h` per step: every byte of the inputs and outputs
crosses memory once, which is the op's floor. The backward pass is the same kernel run the
other way over time:

    g_t  = dy_t + a_{t+1} g_{t+1}      (reverse recurrence on the output gradients)
    db_t = g_t,   da_t = g_t * h_{t-1},   dh0 = a_0 * g_0    (for the forward direction)

so the vjp is a kernel too. `interpret=True` runs the same kernel body through Pallas'
interpreter on any backend; the tests use it on the CPU against `lax.scan`.

Reference: `lib.ops.scan.linear_recurrence(..., method="scan")`.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from lib.kernels._common import compiler_params


def _pick_block(d: int, block_d: int | None) -> int:
    if block_d is not None:
        if d % block_d:
            raise ValueError(f"block_d={block_d} must divide the channel size {d}")
        return block_d
    for cand in (256, 128, 64, 32, 16, 8, 4, 2, 1):
        if d % cand == 0:
            return cand
    return 1


def _scan_kernel(a_ref, b_ref, h0_ref, h_ref, *, length: int, reverse: bool):
    """Body of one program: a_ref, b_ref, h_ref are [length, block_d]; h0_ref is [1, block_d]."""

    def body(i, h):
        t = length - 1 - i if reverse else i
        a_t = a_ref[pl.ds(t, 1), :].astype(jnp.float32)
        b_t = b_ref[pl.ds(t, 1), :].astype(jnp.float32)
        h = jnp.where(a_t == 0, b_t, a_t * h + b_t)  # a zero decay forgets by selection
        h_ref[pl.ds(t, 1), :] = h.astype(h_ref.dtype)
        return h

    lax.fori_loop(0, length, body, h0_ref[...].astype(jnp.float32))


def _scan_call(a, b, h0, *, reverse: bool, block_d: int | None, interpret: bool, out_dtype):
    """Run the kernel: a, b [B, L, D]; h0 [B, D] float32; returns h [B, L, D] in out_dtype."""
    bsz, length, d = b.shape
    bd = _pick_block(d, block_d)
    seq_spec = pl.BlockSpec((None, length, bd), lambda i, j: (i, 0, j))
    state_spec = pl.BlockSpec((None, 1, bd), lambda i, j: (i, 0, j))
    return pl.pallas_call(
        functools.partial(_scan_kernel, length=length, reverse=reverse),
        grid=(bsz, d // bd),
        in_specs=[seq_spec, seq_spec, state_spec],
        out_specs=seq_spec,
        out_shape=jax.ShapeDtypeStruct((bsz, length, d), out_dtype),
        interpret=interpret,
        compiler_params=compiler_params(),
        name="linear_recurrence_rev" if reverse else "linear_recurrence",
    )(a, b, h0[:, None, :])


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _recurrence(a, b, h0, reverse, block_d, interpret):
    return _scan_call(
        a, b, h0, reverse=reverse, block_d=block_d, interpret=interpret, out_dtype=b.dtype
    )


def _recurrence_fwd(a, b, h0, reverse, block_d, interpret):
    h = _recurrence(a, b, h0, reverse, block_d, interpret)
    return h, (a, h, h0)


def _recurrence_bwd(reverse, block_d, interpret, res, dh):
    a, h, h0 = res
    # The gradient flows against the recurrence's direction; a is read one step ahead
    # (a_{t+1} for the forward direction), padded with a zero at the far end.
    zeros = jnp.zeros_like(a[:, :1])
    if reverse:
        a_next = jnp.concatenate([zeros, a[:, :-1]], axis=1)
        h_prev = jnp.concatenate([h[:, 1:], h0[:, None].astype(h.dtype)], axis=1)
    else:
        a_next = jnp.concatenate([a[:, 1:], zeros], axis=1)
        h_prev = jnp.concatenate([h0[:, None].astype(h.dtype), h[:, :-1]], axis=1)
    g = _scan_call(
        a_next,
        dh,
        jnp.zeros_like(h0),
        reverse=not reverse,
        block_d=block_d,
        interpret=interpret,
        out_dtype=jnp.float32,
    )
    da = (g * h_prev.astype(jnp.float32)).astype(a.dtype)
    db = g.astype(dh.dtype)
    edge = -1 if reverse else 0
    dh0 = (a[:, edge].astype(jnp.float32) * g[:, edge]).astype(h0.dtype)
    return da, db, dh0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def linear_recurrence_pallas(a, b, h0=None, *, reverse=False, block_d=None, interpret=None):
    """h_t = a_t * h_{t-1} + b_t over axis 1 with a Pallas kernel (values and gradients).

    Args:
      a: decays, real, [batch, length, *features] (broadcast to `b`'s shape).
      b: inputs, real, [batch, length, *features]; float32 or bfloat16.
      h0: optional initial state [batch, *features]; zeros when None.
      reverse: run from the last step to the first (`h_t = a_t h_{t+1} + b_t`).
      block_d: channels per program (defaults to the largest power of two <= 256 dividing
        the flattened feature size).
      interpret: run through Pallas' interpreter; defaults to True off a GPU/TPU.

    Returns:
      h: [batch, length, *features] in `b`'s dtype (the state is carried in float32).
    """
    if jnp.iscomplexobj(a) or jnp.iscomplexobj(b):
        raise ValueError(
            "linear_recurrence_pallas supports real inputs only; use method='associative'"
        )
    a = jnp.broadcast_to(a, b.shape).astype(b.dtype)
    bsz, length = b.shape[:2]
    feat = b.shape[2:]
    d = 1
    for s in feat:
        d *= s
    if h0 is None:
        h0 = jnp.zeros((bsz, d), jnp.float32)
    else:
        h0 = jnp.reshape(h0, (bsz, d)).astype(jnp.float32)
    if interpret is None:
        interpret = jax.default_backend() not in ("gpu", "cuda", "rocm", "tpu")
    h = _recurrence(
        a.reshape(bsz, length, d),
        b.reshape(bsz, length, d),
        h0,
        bool(reverse),
        block_d,
        bool(interpret),
    )
    return h.reshape(b.shape)
