"""Property-based fuzz of the public sequence ops (issue 27): for any drawn batch, length
(including 0 and 1), dtype (float32, bfloat16, int32) and `chunk_size`, every op either raises
a ValueError/TypeError whose message names an argument in backticks, or returns finite
outputs of the right shape that agree across its methods (tolerance per dtype).

Each (op, method, chunk_size) is jitted once and shapes come from small fixed sets, so XLA
compilations are shared between examples; the example count bounds the file's run time.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.ops.attention.softmax import causal_attention
from lib.ops.conv.causal import causal_conv1d
from lib.ops.conv.long import fft_conv
from lib.ops.linear_attention.gated import gla
from lib.ops.linear_attention.retention import retention
from lib.ops.linear_attention.rwkv import rwkv6
from lib.ops.quant.formats import fake_quant
from lib.ops.rnn.cells import gru
from lib.ops.rnn.minimal import min_gru
from lib.ops.scan.linear import linear_recurrence
from lib.ops.spiking.core import lif
from lib.ops.ssm.lmu import lmu_discretize, lmu_memory
from lib.ops.ssm.lti import s4d_lin_init, ssm_s4d
from lib.ops.ssm.selective import selective_scan
from lib.ops.ssm.ssd import ssd

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "int32": jnp.int32}
TOL = {"float32": 2e-4, "bfloat16": 6e-2}
LMU = lmu_discretize(3, 4.0)
S4D_LAMBDA = jnp.tile(s4d_lin_init(2)[None], (2, 1))


def _arrays(seed, dtype, shapes, positive=()):
    """Random inputs: one per shape, in `dtype` (int32 rounds, so they are valid numbers)."""
    rng = np.random.RandomState(seed)
    out = []
    for i, shape in enumerate(shapes):
        x = rng.standard_normal(shape).astype(np.float32)
        if i in positive:
            x = np.exp(0.5 * x)
        out.append(jnp.asarray(np.round(x * 2) if dtype == jnp.int32 else x, dtype))
    return out


def _gate(x):
    """A valid log gate (<= 0) in x's dtype."""
    return x if x.dtype == jnp.int32 else -jnp.abs(x) * 0.5


# name -> (input shapes for (batch b, length l), methods, call(inputs, method, chunk_size))
OPS = {
    "linear_recurrence": (
        lambda b, l: [(b, l, 3), (b, l, 3)], ("scan", "associative", "chunked"),
        lambda x, m, c: linear_recurrence(jnp.tanh(x[0]) if x[0].dtype != jnp.int32 else x[0],
                                          x[1], method=m, chunk_size=c),
    ),
    "selective_scan": (
        lambda b, l: [(b, l, 2), (b, l, 2), (b, l, 3), (b, l, 3)], ("scan", "associative", "chunked"),
        lambda x, m, c: selective_scan(x[0], x[1], -jnp.ones((2, 3)), x[2], x[3],
                                       delta_softplus=True, method=m, chunk_size=c),
    ),
    "ssd": (
        lambda b, l: [(b, l, 2, 2), (b, l, 2), (b, l, 1, 3), (b, l, 1, 3)], ("scan", "chunked"),
        lambda x, m, c: ssd(x[0], x[1], -jnp.ones(2), x[2], x[3], dt_softplus=True, method=m,
                            chunk_size=c),
    ),
    "gla": (
        lambda b, l: [(b, l, 2, 4), (b, l, 2, 4), (b, l, 2, 3), (b, l, 2, 4)], ("ref", "chunked"),
        lambda x, m, c: gla(x[0], x[1], x[2], _gate(x[3]), method=m, chunk_size=c),
    ),
    "retention": (
        lambda b, l: [(b, l, 2, 4), (b, l, 2, 4), (b, l, 2, 3)], ("ref", "parallel", "chunked"),
        lambda x, m, c: retention(x[0], x[1], x[2], method=m, chunk_size=c),
    ),
    "rwkv6": (
        lambda b, l: [(b, l, 2, 4), (b, l, 2, 4), (b, l, 2, 3), (b, l, 2, 4)], ("ref", "chunked"),
        lambda x, m, c: rwkv6(x[0], x[1], x[2], _gate(x[3]), jnp.ones((2, 4)), method=m,
                              chunk_size=c),
    ),
    "causal_attention": (
        lambda b, l: [(b, l, 2, 4), (b, l, 1, 4), (b, l, 1, 4)], ("ref", "xla"),
        lambda x, m, c: causal_attention(*x, method=m),
    ),
    "causal_conv1d": (
        lambda b, l: [(b, l, 3), (4, 3)], ("shift", "conv"),
        lambda x, m, c: causal_conv1d(x[0], x[1], method=m),
    ),
    "fft_conv": (
        lambda b, l: [(b, l, 3), (5, 3)], ("ref", "direct", "fft"),
        lambda x, m, c: fft_conv(x[0], x[1], method=m),
    ),
    "lmu_memory": (
        lambda b, l: [(b, l, 2)], ("ref", "direct", "fft"),
        lambda x, m, c: lmu_memory(x[0], *LMU, method=m),
    ),
    "ssm_s4d": (
        lambda b, l: [(b, l, 2)], ("scan", "chunked", "fft"),
        lambda x, m, c: ssm_s4d(x[0], S4D_LAMBDA, jnp.ones_like(S4D_LAMBDA),
                                jnp.ones_like(S4D_LAMBDA), jnp.full((2,), -1.0), method=m),
    ),
    "gru": (
        lambda b, l: [(b, l, 3), (3, 12), (4, 12)], ("ref", "scan"),
        lambda x, m, c: gru(*x, method=m),
    ),
    "min_gru": (
        lambda b, l: [(b, l, 3), (b, l, 3)], ("ref", "scan", "log"),
        lambda x, m, c: min_gru(x[0], x[1], method=m, chunk_size=c),
    ),
    "lif": (lambda b, l: [(b, l, 3)], ("scan",), lambda x, m, c: lif(x[0], beta=0.9, method=m)),
    "fake_quant": (lambda b, l: [(b, l, 3)], ("jit",), lambda x, m, c: fake_quant(x[0], 8, scale=0.05)),
}  # fmt: skip
POSITIVE = {"min_gru": (1,)}  # min_gru's log form needs h~ > 0
CHUNK_SIZES = [2, 64, np.int64(3), 0, 2.5]


def _names_an_argument(err):
    """The message quotes an argument (`name`) or shows its value (name=...)."""
    return re.search(r"`[A-Za-z_][\w.]*`|\b[A-Za-z_]\w*=", str(err)) is not None


@functools.cache
def _jitted(op, method, chunk_size):
    call = OPS[op][2]
    return jax.jit(lambda *x: call(x, method, chunk_size))


def _check(op, batch, length, dtype_name, chunk_size, seed):
    shapes, methods, call = OPS[op]
    dtype = DTYPES[dtype_name]
    x = _arrays(seed, dtype, shapes(batch, length), POSITIVE.get(op, ()))
    outs = {}
    for m in methods:
        try:
            out = _jitted(op, m, chunk_size)(*x)
        except (TypeError, ValueError) as err:
            assert _names_an_argument(err), f"{op}/{m}: error names no argument: {err}"
            bad_chunk = not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1
            assert dtype == jnp.int32 or bad_chunk, f"{op}/{m} rejected valid input: {err}"
            continue
        assert dtype != jnp.int32, f"{op}/{m} accepted integer inputs"
        out = np.asarray(out[0] if isinstance(out, tuple) else out, np.float32)
        assert out.shape[:2] == (batch, length), f"{op}/{m}: shape {out.shape}"
        assert np.isfinite(out).all(), f"{op}/{m}: non-finite outputs"
        outs[m] = out
    if len(outs) > 1:
        ref = outs[methods[0]]
        scale = 1.0 + (np.abs(ref).max() if ref.size else 0.0)
        for m, out in outs.items():
            np.testing.assert_allclose(out, ref, rtol=TOL[dtype_name], atol=TOL[dtype_name] * scale,
                                       err_msg=f"{op}: {m} vs {methods[0]} ({dtype_name})")  # fmt: skip


@settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    op=st.sampled_from(sorted(OPS)),
    batch=st.sampled_from([1, 2]),
    length=st.sampled_from([0, 1, 5]),
    dtype=st.sampled_from(sorted(DTYPES)),
    chunk_size=st.sampled_from(CHUNK_SIZES),
    seed=st.integers(0, 3),
)
def test_ops_raise_clearly_or_agree_across_methods(op, batch, length, dtype, chunk_size, seed):
    _check(op, batch, length, dtype, chunk_size, seed)
