"""Benchmark cases for benchmarks/mixers_cpu.py: softmax attention (causal, local, chunked),
GLA (vector and scalar gates), retention and RWKV-6. Small sizes (shared 2-core CPU)."""

import jax
import jax.numpy as jnp

from lib.ops.attention import softmax as attention
from lib.ops.linear_attention import gated as linear_attention
from lib.ops.linear_attention import retention as linear_attention_retention
from lib.ops.linear_attention import rwkv as linear_attention_rwkv

LENGTHS = (256, 2048)
WINDOW = 64


def _fwd_bwd(fn, *args):
    """Zero-arg jitted callable: gradient of sum(fn(*args)) w.r.t. every argument."""
    loss = lambda *a: jnp.sum(fn(*a))
    g = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))
    return lambda: g(*args)


def _qkv(length, h=4, dk=16, dv=16, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    q = jax.random.normal(k[0], (1, length, h, dk))
    kk = jax.random.normal(k[1], (1, length, h, dk))
    v = jax.random.normal(k[2], (1, length, h, dv))
    return q, kk, v, k[3]


def _causal(length):
    q, k, v, _ = _qkv(length)
    fn = lambda m: lambda q, k, v: attention.causal_attention(q, k, v, method=m)
    return {m: _fwd_bwd(fn(m), q, k, v) for m in ("ref", "xla")}


def _local(length):
    q, k, v, _ = _qkv(length)
    fn = lambda m: lambda q, k, v: attention.local_attention(q, k, v, window=WINDOW, method=m)
    return {m: _fwd_bwd(fn(m), q, k, v) for m in ("ref", "xla", "blocked")}


def _chunked_attention(length):
    q, k, v, _ = _qkv(length)
    fn = lambda m: lambda q, k, v: attention.chunked_attention(q, k, v, chunk_size=WINDOW, method=m)
    return {m: _fwd_bwd(fn(m), q, k, v) for m in ("ref", "blocked")}


def _gla(length, scalar, dk=16):
    q, k, v, key = _qkv(length, dk=dk, dv=dk)
    g = -jax.nn.softplus(jax.random.normal(key, q.shape[:3] if scalar else q.shape))
    fn = lambda m: lambda *a: linear_attention.gla(*a, method=m)
    return {m: _fwd_bwd(fn(m), q, k, v, g) for m in ("ref", "chunked")}


def _retention(length):
    q, k, v, _ = _qkv(length)
    fn = lambda m: lambda *a: linear_attention_retention.retention(*a, method=m)
    return {m: _fwd_bwd(fn(m), q, k, v) for m in ("ref", "parallel", "chunked")}


def _rwkv6(length, dk=16):
    r, k, v, key = _qkv(length, dk=dk, dv=dk)
    k1, k2 = jax.random.split(key)
    g = -jnp.exp(jax.random.normal(k1, r.shape))
    u = jax.random.normal(k2, r.shape[2:])
    fn = lambda m: lambda *a: linear_attention_rwkv.rwkv6(*a, method=m)
    return {m: _fwd_bwd(fn(m), r, k, v, g, u) for m in ("ref", "chunked")}


# the form each op's method="auto" picks on a CPU (keep in step with lib/ops)
def _auto(op, length):
    return {
        "causal_attention": "xla",
        "local_attention": "blocked" if 4 * WINDOW <= length else "xla",
        "chunked_attention": "blocked",
        "gla": "ref",
        "gla_dk64": "chunked",
        "gla_scalar": "chunked",
        "retention": "chunked",
        "rwkv6": "ref",
        "rwkv6_dk64": "chunked",
    }[op]


_BUILDERS = {
    "causal_attention": _causal,
    "local_attention": _local,
    "chunked_attention": _chunked_attention,
    "gla": lambda n: _gla(n, scalar=False),
    "gla_dk64": lambda n: _gla(n, scalar=False, dk=64),
    "gla_scalar": lambda n: _gla(n, scalar=True),
    "retention": _retention,
    "rwkv6": _rwkv6,
    "rwkv6_dk64": lambda n: _rwkv6(n, dk=64),
}

CASES = [
    {"op": op, "length": n, "forms": (lambda b=build, n=n: b(n)), "auto": _auto(op, n)}
    for op, build in _BUILDERS.items()
    for n in ((1024,) if op.endswith("dk64") else LENGTHS)
]
