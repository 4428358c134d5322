"""Benchmark cases for benchmarks/mixers_cpu.py: linear recurrence, causal conv, selective scan,
SSD, S4D/S5/LRU/RG-LRU. Small sizes (the build machine is a shared 2-core CPU)."""

import jax
import jax.numpy as jnp

from lib.ops.conv import causal as conv
from lib.ops.scan import linear as scan
from lib.ops.ssm import lti as ssm_lti
from lib.ops.ssm import selective as ssm
from lib.ops.ssm import ssd

LENGTHS = (256, 2048)


def _fwd_bwd(fn, *args):
    """Zero-arg jitted callable: gradient of sum(fn(*args)) w.r.t. every argument."""
    loss = lambda *a: jnp.sum(jnp.real(fn(*a)))
    g = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))
    return lambda: g(*args)


def _keys(n, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


def _linear_recurrence(length, width=64, complex_=False):
    k = _keys(3)
    a = jax.random.uniform(k[0], (1, length, width), minval=0.8, maxval=0.999)
    b = jax.random.normal(k[1], (1, length, width))
    if complex_:
        a = a * jnp.exp(1j * jax.random.uniform(k[2], a.shape))
        b = b.astype(jnp.complex64)
    forms = ("scan", "associative", "chunked")
    return {
        m: _fwd_bwd(lambda a, b, m=m: scan.linear_recurrence(a, b, method=m), a, b) for m in forms
    }


def _conv(length, d=64, k=4):
    x = jax.random.normal(_keys(1)[0], (1, length, d))
    w = jax.random.normal(_keys(2)[1], (k, d))
    return {
        m: _fwd_bwd(lambda x, w, m=m: conv.causal_conv1d(x, w, method=m), x, w)
        for m in ("shift", "conv")
    }


def _selective_scan(length, d=32, n=8):
    k = _keys(5, 1)
    u = jax.random.normal(k[0], (1, length, d))
    delta = jax.random.normal(k[1], (1, length, d))
    A = -jnp.exp(jax.random.normal(k[2], (d, n)))
    B = jax.random.normal(k[3], (1, length, n))
    C = jax.random.normal(k[4], (1, length, n))
    fn = lambda m: (
        lambda u, delta, A, B, C: ssm.selective_scan(
            u, delta, A, B, C, delta_softplus=True, method=m
        )
    )
    return {m: _fwd_bwd(fn(m), u, delta, A, B, C) for m in ("scan", "associative", "chunked")}


def _ssd(length, h=4, p=16, n=16):
    k = _keys(5, 2)
    x = jax.random.normal(k[0], (1, length, h, p))
    dt = jax.random.normal(k[1], (1, length, h))
    A = -jnp.exp(jax.random.normal(k[2], (h,)))
    B = jax.random.normal(k[3], (1, length, 1, n))
    C = jax.random.normal(k[4], (1, length, 1, n))
    fn = lambda m: lambda x, dt, B, C: ssd.ssd(x, dt, A, B, C, dt_softplus=True, method=m)
    return {m: _fwd_bwd(fn(m), x, dt, B, C) for m in ("scan", "chunked")}


def _s4d(length, d=32, n=16):
    k = _keys(4, 3)
    u = jax.random.normal(k[0], (1, length, d))
    lam = jnp.broadcast_to(ssm_lti.s4d_lin_init(n), (d, n))
    Bc = jnp.ones((d, n), jnp.complex64)
    Cc = (jax.random.normal(k[1], (d, n)) + 1j * jax.random.normal(k[2], (d, n))).astype(
        jnp.complex64
    )
    log_dt = jnp.full((d,), -3.0)
    fn = lambda m: lambda u, Cc: ssm_lti.ssm_s4d(u, lam, Bc, Cc, log_dt, method=m)
    return {m: _fwd_bwd(fn(m), u, Cc) for m in ("scan", "associative", "chunked", "fft")}


def _rglru(length, d=64):
    k = _keys(4, 4)
    x, ga, gx = (jax.random.normal(kk, (1, length, d)) for kk in k[:3])
    ap = jax.random.uniform(k[3], (d,), minval=2.0, maxval=6.0)
    fn = lambda m: lambda x, ga, gx: ssm_lti.ssm_rglru(x, ga, gx, ap, method=m)
    return {m: _fwd_bwd(fn(m), x, ga, gx) for m in ("scan", "associative", "chunked")}


def _auto_recurrence(length, complex_=False):
    return scan.resolve_method("auto", length, complex_input=complex_)


def _case(op, length, build, auto):
    return {"op": op, "length": length, "forms": lambda: build(length), "auto": auto}


CASES = []
for _L in LENGTHS:
    CASES += [
        _case("linear_recurrence", _L, _linear_recurrence, _auto_recurrence(_L)),
        _case(
            "linear_recurrence_cplx",
            _L,
            lambda L: _linear_recurrence(L, complex_=True),
            _auto_recurrence(_L, True),
        ),  # fmt: skip
        _case("causal_conv1d", _L, _conv, conv.resolve_method("auto", 4)),
        _case("selective_scan", _L, _selective_scan, ssm.resolve_method("auto", _L)),
        _case("ssd", _L, _ssd, ssd.resolve_method("auto", _L)),
        _case("ssm_s4d", _L, _s4d, ssm_lti.resolve_s4d_method("auto", _L, 32 * 16)),
        _case("ssm_rglru", _L, _rglru, _auto_recurrence(_L)),
    ]
