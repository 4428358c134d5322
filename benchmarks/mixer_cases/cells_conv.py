"""Benchmark cases for benchmarks/mixers_cpu.py: LSTM, GRU, minGRU, EGRU, LMU memory, FFT long
conv, FSMN, TCN. Small sizes (the build machine is a shared 2-core CPU).

The gated cells use batch 4 and width 64: at batch 1 and width 32 the hoisted input
projection ("scan") and the per-step one ("ref") tie within noise, while from batch 4 / width
64 the hoisted form is 20-30% faster (lstm, b=8 d=h=128 L=512: 153 vs 218 ms fwd+bwd)."""

import jax
import jax.numpy as jnp

from lib.ops.conv import fsmn, tcn
from lib.ops.conv import long as long_conv
from lib.ops.rnn import cells as rnn
from lib.ops.rnn import egru as rnn_egru
from lib.ops.rnn import minimal as rnn_min
from lib.ops.ssm import lmu

LENGTHS = (256, 2048)


def _fwd_bwd(fn, *args):
    """Zero-arg jitted callable: gradient of sum(fn(*args)) w.r.t. every argument."""
    loss = lambda *a: jnp.sum(fn(*a))
    g = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))
    return lambda: g(*args)


def _normal(seed, *shapes, scale=1.0):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
    return [scale * jax.random.normal(k, s) for k, s in zip(keys, shapes)]


def _lstm(length, d=64, h=64, batch=4):
    x, w_ih, w_hh, b = _normal(0, (batch, length, d), (d, 4 * h), (h, 4 * h), (4 * h,), scale=0.2)
    fn = lambda m: lambda x, w_ih, w_hh, b: rnn.lstm(x, w_ih, w_hh, b, method=m)
    return {m: _fwd_bwd(fn(m), x, w_ih, w_hh, b) for m in ("ref", "scan")}


def _gru(length, d=64, h=64, batch=4):
    x, w_ih, w_hh, b = _normal(1, (batch, length, d), (d, 3 * h), (h, 3 * h), (3 * h,), scale=0.2)
    fn = lambda m: lambda x, w_ih, w_hh, b: rnn.gru(x, w_ih, w_hh, b, b, method=m)
    return {m: _fwd_bwd(fn(m), x, w_ih, w_hh, b) for m in ("ref", "scan")}


def _min_gru(length, d=64):
    k, ht = _normal(2, (1, length, d), (1, length, d))
    ht = rnn_min.g(ht)
    fn = lambda m: lambda k, ht: rnn_min.min_gru(k, ht, method=m)
    return {m: _fwd_bwd(fn(m), k, ht) for m in ("ref", "scan", "log")}


def _egru(length, d=64, h=64, batch=4):
    x, w_ih, w_hh, b = _normal(3, (batch, length, d), (d, 3 * h), (h, 3 * h), (3 * h,), scale=0.3)
    thr = jnp.full((h,), 0.2)
    fn = lambda m: lambda x, w_ih, w_hh: rnn_egru.egru(x, w_ih, w_hh, b, b, thr, method=m)
    return {m: _fwd_bwd(fn(m), x, w_ih, w_hh) for m in ("ref", "scan")}


def _lmu(length, d=8, order=16):
    (u,) = _normal(4, (1, length, d))
    a_bar, b_bar = lmu.lmu_discretize(order, theta=length / 2)
    fn = lambda m: lambda u: lmu.lmu_memory(u, a_bar, b_bar, method=m)
    return {m: _fwd_bwd(fn(m), u) for m in ("ref", "direct", "fft")}


def _long_conv(length, d=32, ksize=None):
    ksize = ksize or length
    u, k = _normal(5, (1, length, d), (ksize, d))
    fn = lambda m: lambda u, k: long_conv.fft_conv(u, k, method=m)
    forms = ("direct", "fft") if ksize > 256 else ("ref", "direct", "fft")
    return {m: _fwd_bwd(fn(m), u, k) for m in forms}


def _fsmn(length, d=64, taps=16):
    h, left = _normal(6, (1, length, d), (taps, d))
    fn = lambda m: lambda h, left: fsmn.fsmn(h, left, dilation=2, method=m)
    return {m: _fwd_bwd(fn(m), h, left) for m in ("ref", "conv")}


def _tcn(length, d=32, k=3, layers=4):
    x, *ws = _normal(7, (1, length, d), *[(k, d, d)] * layers, scale=0.2)
    fn = lambda m: lambda x, ws: tcn.tcn(x, ws, activation=jax.nn.gelu, method=m)
    return {m: _fwd_bwd(fn(m), x, ws) for m in ("ref", "conv")}


def _case(op, length, make, auto, **kw):
    return {"op": op, "length": length, "forms": lambda: make(length, **kw), "auto": auto}


CASES = []
for _L in LENGTHS:
    CASES += [
        _case("lstm", _L, _lstm, rnn.resolve_method("auto", _L)),
        _case("gru", _L, _gru, rnn.resolve_method("auto", _L)),
        _case("min_gru", _L, _min_gru, "scan"),
        _case("egru", _L, _egru, rnn.resolve_method("auto", _L)),
        _case("lmu_memory", _L, _lmu, lmu.resolve_method("auto", _L)),
        _case("fft_conv K=L", _L, _long_conv, long_conv.resolve_method("auto", _L)),
        _case("fft_conv K=16", _L, _long_conv, long_conv.resolve_method("auto", 16), ksize=16),
        _case("fsmn", _L, _fsmn, tcn.resolve_method("auto", depthwise=True, length=_L)),
        _case("tcn", _L, _tcn, tcn.resolve_method("auto", depthwise=False, length=_L)),
    ]
