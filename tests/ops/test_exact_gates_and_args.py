"""Exact zero decays, integer inputs, length 0 and argument rules of the public ops (issue 27).

Zero decays are checked against closed forms that need no recurrence (with gamma = 0 or
A = -inf a position sees only itself), and every form against the scan reference.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.kernels.gla import gla_pallas
from lib.ops.attention.softmax import causal_attention
from lib.ops.conv.causal import causal_conv1d
from lib.ops.conv.long import fft_conv
from lib.ops.conv.tcn import dilated_causal_conv, tcn
from lib.ops.linear_attention.gated import gla, gla_ref
from lib.ops.linear_attention.retention import retention
from lib.ops.linear_attention.rwkv import rwkv6
from lib.ops.quant.formats import fake_quant, int_scale, quantize_fp, quantize_int
from lib.ops.rnn.cells import gru, lstm
from lib.ops.rnn.minimal import min_gru
from lib.ops.scan.linear import linear_recurrence
from lib.ops.spiking.core import lif
from lib.ops.ssm.lmu import lmu_discretize, lmu_memory
from lib.ops.ssm.selective import selective_scan
from lib.ops.ssm.ssd import ssd


def _normal(seed, *shape):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("scalar", [False, True])
def test_gla_minus_inf_gates_equal_reference(scalar):
    b, l, h, dk, dv = 1, 37, 2, 4, 3
    q, k, v = _normal(0, b, l, h, dk), _normal(1, b, l, h, dk), _normal(2, b, l, h, dv)
    g = np.array(jax.nn.log_sigmoid(_normal(3, *((b, l, h) if scalar else (b, l, h, dk)))))
    g[:, [3, 9, 10, 20]] = -np.inf  # exact zero decays, two in a row, several per chunk
    s0 = _normal(4, b, h, dk, dv)
    want, want_s = gla_ref(q, k, v, g, initial_state=s0)
    assert np.isfinite(want).all()
    forms = {
        m: gla(q, k, v, g, initial_state=s0, method=m, chunk_size=16, return_final_state=True)
        for m in ("chunked", "auto", "pallas")
    }
    forms["kernel"] = gla_pallas(
        q, k, v, g, initial_state=s0, chunk_size=16, return_final_state=True, interpret=True
    )
    for name, (o, s) in forms.items():
        assert np.isfinite(o).all() and np.isfinite(s).all(), name
        np.testing.assert_allclose(o, want, rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(s, want_s, rtol=1e-4, atol=1e-4, err_msg=name)
    # right after a zero decay the state holds only the current token: o_t = scale q_t k_t^T v_t
    t = 10
    direct = dk**-0.5 * np.einsum("bhk,bhk,bhv->bhv", q[:, t], k[:, t], v[:, t])
    np.testing.assert_allclose(forms["chunked"][0][:, t], direct, rtol=1e-5, atol=1e-5)


def test_gla_minus_inf_gate_gradients_are_finite():
    q, k, v = _normal(0, 1, 20, 1, 4), _normal(1, 1, 20, 1, 4), _normal(2, 1, 20, 1, 4)
    g = np.full((1, 20, 1), -0.1, np.float32)
    g[:, 7] = -np.inf
    loss = lambda q, k, v: jnp.sum(gla(q, k, v, g, method="chunked", chunk_size=8) ** 2)
    for grad in jax.grad(loss, argnums=(0, 1, 2))(q, k, v):
        assert np.isfinite(grad).all()


@pytest.mark.parametrize("method", ["ref", "parallel", "chunked"])
def test_retention_gamma_zero_sees_only_the_current_token(method):
    b, l, h, dk, dv = 1, 9, 2, 4, 3
    q, k, v = _normal(0, b, l, h, dk), _normal(1, b, l, h, dk), _normal(2, b, l, h, dv)
    gamma = np.array([0.0, 0.5], np.float32)
    s0 = _normal(3, b, h, dk, dv)
    o, s = retention(q, k, v, gamma=gamma, method=method, initial_state=s0, chunk_size=4,
                     return_final_state=True)  # fmt: skip
    assert np.isfinite(o).all() and np.isfinite(s).all()
    direct = dk**-0.5 * np.einsum("blk,blk,blv->blv", q[:, :, 0], k[:, :, 0], v[:, :, 0])
    np.testing.assert_allclose(o[:, :, 0], direct, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s[:, 0], np.einsum("bk,bv->bkv", k[:, -1, 0], v[:, -1, 0]), 1e-5)
    ref = retention(q, k, v, gamma=gamma, method="ref", initial_state=s0)
    np.testing.assert_allclose(o, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["scan", "chunked"])
def test_ssd_exact_zero_decay(method):
    b, l, h, p, n = 1, 11, 2, 3, 4
    x, dt = _normal(0, b, l, h, p), np.abs(_normal(1, b, l, h)) + 0.1
    B, C = _normal(2, b, l, 1, n), _normal(3, b, l, 1, n)
    A = np.array([-np.inf, -0.5], np.float32)  # head 0: exp(dt A) = 0 exactly
    s0 = _normal(4, b, h, p, n)
    y = ssd(x, dt, A, B, C, method=method, initial_state=s0, chunk_size=4)
    assert np.isfinite(y).all()
    direct = np.einsum("bln,bln,bl,blp->blp", C[:, :, 0], B[:, :, 0], dt[:, :, 0], x[:, :, 0])
    np.testing.assert_allclose(y[:, :, 0], direct, rtol=1e-5, atol=1e-5)
    ref = ssd(x, dt, A, B, C, method="scan", initial_state=s0)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def _int(seed, *shape):
    return np.round(_normal(seed, *shape) * 3).astype(np.int32)


_f, _i = _normal, _int
INTEGER_CALLS = {
    "x": lambda: gru(_i(0, 1, 4, 3), _f(1, 3, 6), _f(2, 2, 6)),
    "x ": lambda: lstm(_i(0, 1, 4, 3), _f(1, 3, 8), _f(2, 2, 8)),
    "u": lambda: selective_scan(_i(0, 1, 4, 3), _f(1, 1, 4, 3), _f(2, 3, 2), _f(3, 1, 4, 2),
                                _f(4, 1, 4, 2)),
    "q": lambda: gla(_i(0, 1, 4, 1, 2), _f(1, 1, 4, 1, 2), _f(2, 1, 4, 1, 2), _f(3, 1, 4, 1)),
    "q ": lambda: causal_attention(_i(0, 1, 4, 1, 2), _f(1, 1, 4, 1, 2), _f(2, 1, 4, 1, 2)),
    "x  ": lambda: causal_conv1d(_i(0, 1, 4, 3), _f(1, 2, 3)),
    "x   ": lambda: fake_quant(_i(0, 5), 8, scale=0.1),
    "b": lambda: linear_recurrence(_f(0, 1, 4, 3), _i(1, 1, 4, 3)),
    "x    ": lambda: ssd(_i(0, 1, 4, 1, 2), _f(1, 1, 4, 1), _f(2, 1), _f(3, 1, 4, 1, 2),
                         _f(4, 1, 4, 1, 2)),
    "v": lambda: retention(_f(0, 1, 4, 1, 2), _f(1, 1, 4, 1, 2), _i(2, 1, 4, 1, 2)),
    "g": lambda: rwkv6(*(_f(s, 1, 4, 1, 2) for s in range(3)), _i(3, 1, 4, 1, 2), _f(4, 1, 2)),
    "u ": lambda: lmu_memory(_i(0, 1, 4, 2), *lmu_discretize(3, 4.0)),
    "u  ": lambda: fft_conv(_i(0, 1, 4, 2), _f(1, 4, 2)),
    "w": lambda: dilated_causal_conv(_f(0, 1, 4, 2), _i(1, 2, 2)),
    "h_tilde": lambda: min_gru(_f(0, 1, 4, 2), _i(1, 1, 4, 2)),
    "current": lambda: lif(_i(0, 1, 4, 2), beta=0.9),
    "x     ": lambda: quantize_fp(_i(0, 4), 4, 3),
}  # fmt: skip


@pytest.mark.parametrize("arg", sorted(INTEGER_CALLS))
def test_integer_inputs_are_rejected_by_name(arg):
    with pytest.raises(TypeError, match=f"`{arg.strip()}`"):
        INTEGER_CALLS[arg]()


CHUNKED = {
    "linear_recurrence": lambda c: linear_recurrence(
        _f(0, 1, 5, 2), _f(1, 1, 5, 2), method="chunked", chunk_size=c
    ),
    "selective_scan": lambda c: selective_scan(
        _f(0, 1, 5, 3), _f(1, 1, 5, 3), -np.ones((3, 2), np.float32), _f(3, 1, 5, 2),
        _f(4, 1, 5, 2), method="chunked", chunk_size=c,
    ),
    "ssd": lambda c: ssd(_f(0, 1, 5, 1, 2), _f(1, 1, 5, 1), -np.ones(1, np.float32),
                         _f(3, 1, 5, 1, 2), _f(4, 1, 5, 1, 2), chunk_size=c),
    "gla": lambda c: gla(*(_f(s, 1, 5, 1, 2) for s in range(3)), -np.ones((1, 5, 1), np.float32),
                         method="chunked", chunk_size=c),
    "retention": lambda c: retention(*(_f(s, 1, 5, 1, 2) for s in range(3)), chunk_size=c),
    "min_gru": lambda c: min_gru(_f(0, 1, 5, 2), np.exp(_f(1, 1, 5, 2)), method="log", chunk_size=c),
}  # fmt: skip


@pytest.mark.parametrize("op", sorted(CHUNKED))
def test_chunk_size_rule(op):
    ref = CHUNKED[op](5)
    np.testing.assert_allclose(CHUNKED[op](np.int64(2)), ref, rtol=1e-4, atol=1e-5)
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="chunk_size"):
            CHUNKED[op](bad)


STATEFUL = {
    "linear_recurrence": lambda l, s0: linear_recurrence(
        _f(0, 2, l, 3), _f(1, 2, l, 3), s0, return_final_state=True),
    "selective_scan": lambda l, s0: selective_scan(
        _f(0, 2, l, 3), _f(1, 2, l, 3), -np.ones((3, 4), np.float32), _f(3, 2, l, 4),
        _f(4, 2, l, 4), initial_state=s0, return_final_state=True),
    "ssd": lambda l, s0: ssd(_f(0, 2, l, 3, 2), _f(1, 2, l, 3), -np.ones(3, np.float32),
                             _f(3, 2, l, 1, 4), _f(4, 2, l, 1, 4), initial_state=s0,
                             return_final_state=True),
    "gla": lambda l, s0: gla(*(_f(s, 2, l, 3, 2) for s in range(3)), -np.ones((2, l, 3), np.float32),
                             initial_state=s0, return_final_state=True, method="chunked"),
    "retention": lambda l, s0: retention(*(_f(s, 2, l, 3, 2) for s in range(3)),
                                         initial_state=s0, return_final_state=True),
    "rwkv6": lambda l, s0: rwkv6(*(_f(s, 2, l, 3, 2) for s in range(3)), -np.ones((2, l, 3, 2), np.float32),
                                 _f(4, 3, 2), initial_state=s0, return_final_state=True, method="chunked"),
    "lmu_memory": lambda l, s0: lmu_memory(_f(0, 2, l, 3), *lmu_discretize(4, 4.0), method="direct",
                                           initial_state=s0, return_final_state=True),
    "min_gru": lambda l, s0: min_gru(_f(0, 2, l, 3), np.exp(_f(1, 2, l, 3)), method="log",
                                     initial_state=np.abs(s0), return_final_state=True),
}  # fmt: skip
STATE_SHAPES = {"linear_recurrence": (2, 3), "selective_scan": (2, 3, 4), "ssd": (2, 3, 2, 4),
                "gla": (2, 3, 2, 2), "retention": (2, 3, 2, 2), "rwkv6": (2, 3, 2, 2),
                "lmu_memory": (2, 3, 4), "min_gru": (2, 3)}  # fmt: skip


@pytest.mark.parametrize("op", sorted(STATEFUL))
def test_length_zero_gives_empty_outputs_and_the_initial_state(op):
    s0 = _normal(9, *STATE_SHAPES[op])
    out, final = STATEFUL[op](0, s0)
    assert out.shape[:2] == (2, 0)
    assert out.shape[2:] == STATEFUL[op](3, s0)[0].shape[2:]
    np.testing.assert_array_equal(final, np.abs(s0) if op == "min_gru" else s0)


BAD_ARGS = {
    "weight": lambda: causal_conv1d(_f(0, 1, 4, 2), np.zeros((0, 2), np.float32)),
    "w": lambda: dilated_causal_conv(_f(0, 1, 4, 2), np.zeros((0, 2), np.float32)),
    "dilation": lambda: dilated_causal_conv(_f(0, 1, 4, 2), _f(1, 2, 2), dilation=1.5),
    "dilation ": lambda: tcn(_f(0, 1, 4, 2), [_f(1, 2, 2)], dilations=[0]),
    "k": lambda: fft_conv(_f(0, 1, 4, 2), np.zeros((0, 2), np.float32)),
    "q": lambda: causal_attention(_f(0, 1, 4, 1, 2), _f(1, 1, 6, 1, 2), _f(2, 1, 6, 1, 2)),
    "scale": lambda: quantize_int(_f(0, 4), 8, scale=0.0),
    "max_value": lambda: quantize_fp(_f(0, 4), 4, 3, max_value=-1.0),
    "axis": lambda: int_scale(_f(0, 2, 3), 8, axis=5),
    "x": lambda: quantize_int(np.array([1.0, np.nan], np.float32), 8, scale=0.5),
}


@pytest.mark.parametrize("arg", sorted(BAD_ARGS))
def test_bad_arguments_raise_value_errors_naming_them(arg):
    with pytest.raises(ValueError, match=f"`{arg.strip()}`"):
        BAD_ARGS[arg]()


def test_nan_propagates_through_fake_quant_and_lif():
    x = np.array([0.3, np.nan, -0.2], np.float32)
    out = np.asarray(fake_quant(x, 8, scale=0.1))
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    current = np.full((1, 6, 1), 0.6, np.float32)
    current[0, 2] = np.nan
    spikes = np.asarray(lif(current, beta=0.9))[0, :, 0]
    assert np.isfinite(spikes[:2]).all() and np.isnan(spikes[2:]).all()


STATELESS = {
    "dilated_causal_conv": lambda l: dilated_causal_conv(_f(0, 2, l, 3), _f(1, 3, 3), method="ref"),
    "tcn": lambda l: tcn(_f(0, 2, l, 3), [_f(1, 2, 3, 3)], method="ref"),
    "fft_conv": lambda l: fft_conv(_f(0, 2, l, 3), _f(1, 4, 3), method="ref"),
    "causal_conv1d": lambda l: causal_conv1d(_f(0, 2, l, 3), _f(1, 4, 3)),
    "causal_attention": lambda l: causal_attention(*(_f(s, 2, l, 1, 3) for s in range(3))),
    "gru": lambda l: gru(_f(0, 2, l, 3), _f(1, 3, 9), _f(2, 3, 9)),
}


@pytest.mark.parametrize("op", sorted(STATELESS))
def test_length_zero_and_numpy_inputs_eagerly(op):
    assert STATELESS[op](0).shape[:2] == (2, 0)
    assert STATELESS[op](3).shape[:2] == (2, 3)


def test_attention_nonfinite_values_follow_ieee_over_visible_keys():
    """With inf/-inf/NaN in `v`, each output is the plain float sum over visible keys only."""
    from lib.ops.attention.softmax import attention_ref, position_mask

    q, k, v = _normal(0, 1, 6, 1, 2), _normal(1, 1, 6, 1, 2), _normal(2, 1, 6, 1, 2)
    v[0, 2, 0, 0], v[0, 3, 0, 0], v[0, 4, 0, 1] = np.inf, -np.inf, np.nan
    pos = jnp.arange(6)
    out = np.asarray(attention_ref(q, k, v, mask=position_mask(pos, pos)))
    logits = np.einsum("bqhd,bkhd->bhqk", q, k)[0, 0] * 2**-0.5
    want = np.zeros((6, 2), np.float32)
    for t in range(6):
        p = np.exp(logits[t, : t + 1] - logits[t, : t + 1].max())
        p /= p.sum()
        with np.errstate(invalid="ignore"):
            want[t] = (p[:, None] * v[0, : t + 1, 0]).sum(0)
    np.testing.assert_allclose(out[0, :, 0], want, rtol=1e-5, atol=1e-6)
