"""NaN and inf never cross causality or segment boundaries, -inf gates are exact zero decays,
and integer inputs are rejected by name (issue 27, items 4 and 5).

Every causal op and form is one row of `CASES`: a builder of random inputs and a function of
them (jitted once per row, so `finite_or`'s `lax.cond` is what runs). The test poisons one
time-indexed input at positions > T with NaN, +inf or -inf and asserts that the outputs at
positions <= T are finite and equal to the clean run's; rows that take `segment_ids` also
poison the first of two packed sequences and check the second. Adding an op is one row.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.kernels.gla import gla_pallas
from lib.kernels.lif import lif_pallas
from lib.kernels.linear_recurrence import linear_recurrence_pallas
from lib.kernels.selective_scan import selective_scan_pallas
from lib.ops.attention.softmax import (
    attention_step,
    causal_attention,
    chunked_attention,
    init_kv_cache,
    local_attention,
)
from lib.ops.conv.causal import causal_conv1d, causal_conv1d_init_state, causal_conv1d_step
from lib.ops.conv.fsmn import fsmn
from lib.ops.conv.long import fft_conv
from lib.ops.conv.tcn import dilated_causal_conv, tcn
from lib.ops.linear_attention.gated import gla, gla_step
from lib.ops.linear_attention.retention import retention, retention_step
from lib.ops.linear_attention.rwkv import rwkv6, rwkv6_step
from lib.ops.rnn.cells import gru, lstm
from lib.ops.rnn.egru import egru
from lib.ops.rnn.minimal import min_gru, min_lstm
from lib.ops.scan.linear import (
    linear_recurrence,
    linear_recurrence_init_state,
    linear_recurrence_step,
)
from lib.ops.spiking.core import lif
from lib.ops.ssm.lmu import lmu_discretize, lmu_memory
from lib.ops.ssm.lti import s4d_lin_init, ssm_s4d
from lib.ops.ssm.selective import selective_scan, selective_scan_init_state, selective_scan_step
from lib.ops.ssm.ssd import ssd, ssd_init_state, ssd_step

B, L, T = 2, 12, 5  # batch, length, the last position whose outputs must stay clean
SEG = np.repeat(np.array([[0] * 6 + [1] * 6]), B, axis=0).astype(np.int32)  # two sequences
POISON = (np.nan, np.inf, -np.inf)


def _rng(seed=0):
    rng = np.random.RandomState(seed)
    return lambda *shape: rng.standard_normal(shape).astype(np.float32)


def _gate(x):
    return np.asarray(jax.nn.log_sigmoid(x + 2.0))


def _steps(step, state, xs, static=()):
    """Run `step(state, *x_t, *static) -> (state, y_t)` over axis 1 of each of `xs`."""
    _, ys = jax.lax.scan(
        lambda s, x: step(s, *x, *static), state, [jnp.moveaxis(x, 1, 0) for x in xs]
    )
    return jnp.moveaxis(ys, 0, 1)


# Each builder returns (inputs: dict, time-indexed input names, fn(inputs, segment_ids) or
# None-aware fn, takes_segments).
def _lr(method):
    r = _rng(1)
    x = dict(a=np.abs(r(B, L, 3)) % 1.0, b=r(B, L, 3), h0=r(B, 3))
    if method == "pallas":
        return (
            x,
            ("a", "b"),
            lambda i, s: linear_recurrence_pallas(i["a"], i["b"], i["h0"], interpret=True),
            False,
        )
    if method == "step":

        def fn(i, s):
            reset = jnp.asarray(SEG[:, 1:] != SEG[:, :-1])
            reset = (
                jnp.concatenate([jnp.zeros((B, 1), bool), reset], 1)
                if s is not None
                else jnp.zeros((B, L), bool)
            )
            st = linear_recurrence_init_state(B, 3)._replace(h=i["h0"])
            return _steps(linear_recurrence_step, st, [i["a"], i["b"], reset])

        return x, ("a", "b"), fn, True
    return (
        x,
        ("a", "b"),
        lambda i, s: linear_recurrence(
            i["a"], i["b"], i["h0"], method=method, segment_ids=s, chunk_size=4
        ),
        True,
    )


def _sel(method):
    r = _rng(2)
    d, n = 3, 4
    x = dict(u=r(B, L, d), delta=r(B, L, d), A=-np.abs(r(d, n)), B=r(B, L, n), C=r(B, L, n))
    ts = ("u", "delta", "B", "C")
    if method == "pallas":
        return (
            x,
            ts,
            lambda i, s: selective_scan_pallas(
                i["u"],
                i["delta"],
                i["A"],
                i["B"],
                i["C"],
                delta_softplus=True,
                chunk=4,
                interpret=True,
            ),
            False,
        )
    if method == "step":

        def fn(i, s):
            st = selective_scan_init_state(B, d, n)
            step = lambda st, u, dl, b, c: selective_scan_step(
                st, u, dl, i["A"], b, c, delta_softplus=True
            )
            return _steps(step, st, [i["u"], i["delta"], i["B"], i["C"]])

        return x, ts, fn, False
    return (
        x,
        ts,
        lambda i, s: selective_scan(
            i["u"],
            i["delta"],
            i["A"],
            i["B"],
            i["C"],
            delta_softplus=True,
            segment_ids=s,
            method=method,
            chunk_size=4,
        ),
        True,
    )


def _ssd(method):
    r = _rng(3)
    x = dict(
        x=r(B, L, 2, 3), dt=r(B, L, 2), A=-np.abs(r(2)) - 0.1, B=r(B, L, 1, 4), C=r(B, L, 1, 4)
    )
    ts = ("x", "dt", "B", "C")
    if method == "step":

        def fn(i, s):
            step = lambda st, xt, dtt, bt, ct: ssd_step(
                st, xt, dtt, i["A"], bt, ct, dt_softplus=True
            )
            return _steps(step, ssd_init_state(B, 2, 3, 4), [i["x"], i["dt"], i["B"], i["C"]])

        return x, ts, fn, False
    return (
        x,
        ts,
        lambda i, s: ssd(
            i["x"],
            i["dt"],
            i["A"],
            i["B"],
            i["C"],
            dt_softplus=True,
            segment_ids=s,
            method=method,
            chunk_size=4,
        ),
        True,
    )


def _gla(method, scalar=False):
    r = _rng(4)
    gshape = (B, L, 2) if scalar else (B, L, 2, 4)
    x = dict(q=r(B, L, 2, 4), k=r(B, L, 2, 4), v=r(B, L, 2, 3), g=_gate(r(*gshape)))
    ts = ("q", "k", "v", "g")
    if method == "pallas":
        return (
            x,
            ts,
            lambda i, s: gla_pallas(i["q"], i["k"], i["v"], i["g"], chunk_size=16, interpret=True),
            False,
        )
    if method == "step":
        st = jnp.zeros((B, 2, 4, 3))
        return (
            x,
            ts,
            lambda i, s: _steps(lambda st, *a: gla_step(st, *a), st, [i[n] for n in ts]),
            False,
        )
    return (
        x,
        ts,
        lambda i, s: gla(
            i["q"], i["k"], i["v"], i["g"], method=method, segment_ids=s, chunk_size=4
        ),
        True,
    )


def _retention(method):
    r = _rng(5)
    x = dict(q=r(B, L, 2, 4), k=r(B, L, 2, 4), v=r(B, L, 2, 3))
    if method == "step":
        return (
            x,
            ("q", "k", "v"),
            lambda i, s: _steps(retention_step, jnp.zeros((B, 2, 4, 3)), [i["q"], i["k"], i["v"]]),
            False,
        )
    return (
        x,
        ("q", "k", "v"),
        lambda i, s: retention(i["q"], i["k"], i["v"], method=method, chunk_size=4),
        False,
    )


def _rwkv(method):
    r = _rng(6)
    x = dict(r=r(B, L, 2, 4), k=r(B, L, 2, 4), v=r(B, L, 2, 3), g=_gate(r(B, L, 2, 4)), u=r(2, 4))
    ts = ("r", "k", "v", "g")
    if method == "step":
        step = lambda st, *a: rwkv6_step(st, *a, x["u"])
        return x, ts, lambda i, s: _steps(step, jnp.zeros((B, 2, 4, 3)), [i[n] for n in ts]), False
    return (
        x,
        ts,
        lambda i, s: rwkv6(i["r"], i["k"], i["v"], i["g"], i["u"], method=method, chunk_size=4),
        False,
    )


def _attn(kind, method):
    r = _rng(7)
    x = dict(q=r(B, L, 2, 4), k=r(B, L, 1, 4), v=r(B, L, 1, 4))  # "xla" needs dv == d
    ts = ("q", "k", "v")
    if kind == "step":

        def fn(i, s):
            cache = init_kv_cache(B, L, 1, 4, 4)
            return _steps(
                lambda c, q, k, v: attention_step(c, q, k, v), cache, [i["q"], i["k"], i["v"]]
            )

        return x, ts, fn, False
    op = {"causal": causal_attention, "local": lambda *a, **k: local_attention(*a, window=4, **k),
          "chunked": lambda *a, **k: chunked_attention(*a, chunk_size=4, **k)}[kind]  # fmt: skip
    return x, ts, lambda i, s: op(i["q"], i["k"], i["v"], method=method), False


def _conv(kind, method):
    r = _rng(8)
    x = dict(x=r(B, L, 3), w=r(3, 3))
    if kind == "causal":
        return (
            x,
            ("x",),
            lambda i, s: causal_conv1d(i["x"], i["w"], segment_ids=s, method=method),
            method == "shift",
        )
    if kind == "causal_step":
        st = causal_conv1d_init_state(B, 3, 3)
        return (
            x,
            ("x",),
            lambda i, s: _steps(lambda st, xt: causal_conv1d_step(st, xt, i["w"]), st, [i["x"]]),
            False,
        )
    if kind == "dilated":
        return (
            x,
            ("x",),
            lambda i, s: dilated_causal_conv(i["x"], i["w"], dilation=2, method=method),
            False,
        )
    if kind == "tcn":
        return x, ("x",), lambda i, s: tcn(i["x"], [i["w"], i["w"]], method=method), False
    if kind == "fsmn":
        return x, ("x",), lambda i, s: fsmn(i["x"], i["w"], method=method), False
    x["w"] = r(L, 3)  # a long kernel
    return x, ("x",), lambda i, s: fft_conv(i["x"], i["w"], method=method), False


def _ssm(kind, method):
    r = _rng(9)
    if kind == "s4d":
        lam = jnp.tile(s4d_lin_init(2)[None], (3, 1))
        x = dict(u=r(B, L, 3), C=r(3, 2) + 0j)
        return (
            x,
            ("u",),
            lambda i, s: ssm_s4d(
                i["u"], lam, jnp.ones_like(lam), i["C"], jnp.full((3,), -1.0), method=method
            ),
            False,
        )
    a_bar, b_bar = lmu_discretize(4, 8.0)
    return (
        dict(u=r(B, L, 3)),
        ("u",),
        lambda i, s: lmu_memory(i["u"], a_bar, b_bar, method=method),
        False,
    )


def _rnn(kind, method):
    r = _rng(10)
    if kind in ("gru", "lstm", "egru"):
        k = {"gru": 3, "lstm": 4, "egru": 3}[kind]
        x = dict(x=r(B, L, 3), w_ih=r(3, k * 4) * 0.5, w_hh=r(4, k * 4) * 0.5)
        if kind == "gru":
            return x, ("x",), lambda i, s: gru(i["x"], i["w_ih"], i["w_hh"], method=method), False
        if kind == "lstm":
            return x, ("x",), lambda i, s: lstm(i["x"], i["w_ih"], i["w_hh"], method=method), False
        thr = jnp.full((4,), 0.1)
        return (
            x,
            ("x",),
            lambda i, s: egru(i["x"], i["w_ih"], i["w_hh"], None, None, thr, method=method),
            False,
        )
    if kind == "min_gru":
        x = dict(z=r(B, L, 3), h=np.exp(r(B, L, 3)))
        return (
            x,
            ("z", "h"),
            lambda i, s: min_gru(i["z"], i["h"], method=method, chunk_size=4),
            False,
        )
    if kind == "min_lstm":
        x = dict(f=r(B, L, 3), i=r(B, L, 3), h=np.exp(r(B, L, 3)))
        return (
            x,
            ("f", "i", "h"),
            lambda i, s: min_lstm(i["f"], i["i"], i["h"], method=method, chunk_size=4),
            False,
        )
    x = dict(c=r(B, L, 3) + 0.5)
    if method == "pallas":
        sg = lambda v: 1 / (1 + 10 * jnp.abs(v)) ** 2
        return (
            x,
            ("c",),
            lambda i, s: lif_pallas(i["c"], beta=0.9, surrogate_grad=sg, interpret=True),
            False,
        )
    return x, ("c",), lambda i, s: lif(i["c"], beta=0.9, method=method), False


CASES = {
    **{f"linear_recurrence-{m}": (_lr, m) for m in ("scan", "associative", "chunked", "pallas", "step")},
    **{f"selective_scan-{m}": (_sel, m) for m in ("scan", "associative", "chunked", "pallas", "step")},
    **{f"ssd-{m}": (_ssd, m) for m in ("scan", "chunked", "step")},
    **{f"gla-{m}": (_gla, m) for m in ("ref", "chunked", "pallas", "step")},
    **{f"gla_scalar-{m}": (lambda m: _gla(m, scalar=True), m) for m in ("ref", "chunked", "pallas")},
    **{f"retention-{m}": (_retention, m) for m in ("ref", "parallel", "chunked", "step")},
    **{f"rwkv6-{m}": (_rwkv, m) for m in ("ref", "chunked", "step")},
    **{f"attention_{k}-{m}": (lambda m, k=k: _attn(k, m), m)
       for k, ms in (("causal", ("ref", "xla")), ("local", ("ref", "xla", "blocked")),
                     ("chunked", ("ref", "blocked")), ("step", ("step",))) for m in ms},
    **{f"conv_{k}-{m}": (lambda m, k=k: _conv(k, m), m)
       for k, ms in (("causal", ("shift", "conv")), ("causal_step", ("step",)), ("dilated", ("ref", "conv")),
                     ("tcn", ("ref", "conv")), ("fsmn", ("ref", "conv")), ("fft", ("ref", "direct", "fft")))
       for m in ms},
    **{f"{k}-{m}": (lambda m, k=k: _ssm(k, m), m)
       for k, ms in (("s4d", ("scan", "associative", "chunked", "fft")), ("lmu", ("ref", "direct", "fft")))
       for m in ms},
    **{f"{k}-{m}": (lambda m, k=k: _rnn(k, m), m)
       for k, ms in (("gru", ("ref", "scan")), ("lstm", ("ref", "scan")), ("egru", ("ref", "scan")),
                     ("min_gru", ("ref", "scan", "log")), ("min_lstm", ("ref", "scan", "log")),
                     ("lif", ("scan", "pallas")))
       for m in ms},
}  # fmt: skip


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("case", sorted(CASES))
def test_nonfinite_inputs_stay_behind_causality_and_segments(case):
    build, method = CASES[case]
    inputs, timed, fn, takes_segments = build(method)
    run = jax.jit(lambda i, s: _first(fn(i, s)))
    seg_options = [None] + ([jnp.asarray(SEG)] if takes_segments else [])
    for seg in seg_options:
        clean = np.asarray(run(inputs, seg), np.float32)
        assert np.isfinite(clean).all(), f"{case}: clean outputs are not finite"
        # positions > T poisoned: outputs <= T unchanged; with segments, also poison the first
        # sequence (positions 2..5) and check the second (6..11).
        plans = [(slice(T + 1, L), slice(0, T + 1))]
        if seg is not None:
            plans.append((slice(2, 6), slice(6, L)))
        for poisoned, kept in plans:
            for name in timed:
                for value in POISON:
                    bad = dict(inputs)
                    arr = np.array(inputs[name])
                    arr[:, poisoned] = value
                    bad[name] = arr
                    out = np.asarray(run(bad, seg), np.float32)
                    where = f"{case}: {name}[{poisoned.start}:{poisoned.stop}] = {value}"
                    assert np.isfinite(out[:, kept]).all(), (
                        f"{where} leaked (seg={seg is not None})"
                    )
                    np.testing.assert_allclose(
                        out[:, kept], clean[:, kept], rtol=1e-4, atol=1e-5, err_msg=where
                    )
