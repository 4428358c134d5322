"""The `quant=` option of the recurrent cells (lib.nn.rnn.mixers): float when off, close to float at
16 bits, error growing as bits shrink, carry on its grid, step == full, STE gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantConfig, QuantSpec
from lib.nn.rnn import mixers as rnn
from lib.nn.sequence_model import SequenceModel
from lib.ops.rnn import cells as rnn_ops
from lib.ops.rnn import egru as egru_ops
from lib.ops.rnn import minimal as min_ops

DIM, LENGTH, BATCH = 8, 13, 2
CELLS = {
    "lstm": (rnn.LSTM, {}),
    "gru": (rnn.GRU, {"hidden_dim": 6}),  # with a (quantized) read-out Dense
    "mingru": (rnn.MinGRU, {"hidden_dim": 12}),
    "minlstm": (rnn.MinLSTM, {}),
    "egru": (rnn.EGRU, {"threshold_init": 0.05}),
}
# every cell checks float identity, its 8-bit error, the carry grid and step == full; these
# also check the error ordering 16 < 8 < 4 bits and the straight-through gradients (kept to a
# gated cell and a min cell so the file stays fast)
ORDERED, GRADIENTS = ("lstm", "mingru"), ("lstm", "minlstm")


def _x():
    return jax.random.normal(jax.random.PRNGKey(0), (BATCH, LENGTH, DIM))


@pytest.fixture(scope="module")
def cell_params():
    """`name -> params` of `CELLS[name]`, each initialised once for the module's tests."""
    cache = {}

    def get(name):
        if name not in cache:
            cls, kw = CELLS[name]
            cache[name] = jax.jit(cls(DIM, **kw).init)(jax.random.PRNGKey(1), _x())
        return cache[name]

    return get


def _float_by_ops(name, p, x):
    """The float cell computed from its parameters with the lib.ops functions directly."""
    if name == "lstm":
        return rnn_ops.lstm(x, p["w_ih"], p["w_hh"], p["b_ih"])
    if name == "gru":
        h = rnn_ops.gru(x, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
        return h @ p["out_proj"]["kernel"] + p["out_proj"]["bias"]
    if name == "egru":
        thr = jnp.clip(p["threshold"], 0.01, 1.0)
        y = egru_ops.egru(x, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], thr)
        return y @ p["out_proj"]["kernel"] + p["out_proj"]["bias"]
    z = x @ p["in_proj"]["kernel"] + p["in_proj"]["bias"]
    if name == "mingru":
        k, ht = jnp.split(z, 2, axis=-1)
        h = min_ops.min_gru(k, min_ops.g(ht))
        return h @ p["out_proj"]["kernel"] + p["out_proj"]["bias"]
    kf, ki, ht = jnp.split(z, 3, axis=-1)
    return min_ops.min_lstm(kf, ki, min_ops.g(ht))


def _carry_grid_multiples(name, state):
    """The final carry divided by its 8-bit grid step (integers when on the grid)."""
    q = 127.0  # signed narrow-range int8: k / 127 of the range
    if name == "lstm":
        return [state.h * q, state.c * q / 4.0]
    if name == "egru":
        return [state.c * q, state.y * q]
    if name in ("mingru", "minlstm"):
        return [state * q / rnn.MIN_STATE_RANGE]
    return [state * q]


@pytest.mark.parametrize("name", sorted(CELLS))
def test_quantized_cell_against_float(name, cell_params):
    cls, kw = CELLS[name]
    x = _x()
    model = cls(DIM, **kw)
    params = cell_params(name)
    q8 = cls(DIM, quant=8, **kw)
    # the option adds no parameters: a float checkpoint loads unchanged
    q_shapes = jax.eval_shape(q8.init, jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, q_shapes) == jax.tree.map(jnp.shape, params)

    @jax.jit
    def run(params, x):
        y = model.apply(params, x)
        y_ops = _float_by_ops(name, params["params"], x)
        ys = {16: cls(DIM, quant=16, **kw).apply(params, x)} if name in ORDERED else {}
        ys[8], final = q8.apply(params, x, return_state=True)
        s0 = q8.apply(params, BATCH, method="init_state")
        step = lambda s, x_t: q8.apply(params, s, x_t, method="step")
        final_step, y_step = jax.lax.scan(step, s0, jnp.swapaxes(x, 0, 1))
        grads, q4 = None, cls(DIM, quant=4, **kw)
        if name in GRADIENTS:  # the 4-bit output comes from the gradient's forward pass

            def loss4(p):
                y4 = q4.apply(p, x)
                return jnp.sum(y4**2), y4

            grads, ys[4] = jax.grad(loss4, has_aux=True)(params)
        elif name in ORDERED:
            ys[4] = q4.apply(params, x)
        return y, y_ops, ys, final, final_step, jnp.swapaxes(y_step, 0, 1), grads

    y, y_ops, ys, final, final_step, y_step, grads = run(params, x)
    # quant=None is the float path itself: bit-identical to the ops on the same parameters
    np.testing.assert_array_equal(y, y_ops)
    # 8 bits: a small nonzero error; 16 bits: float within a tight tolerance, and the error
    # grows as the bits shrink
    scale = float(jnp.max(jnp.abs(y)))
    err8 = float(jnp.max(jnp.abs(ys[8] - y)))
    assert 0 < err8 < 0.05 * scale, (err8, scale)
    if name in ORDERED:
        errs = [float(jnp.max(jnp.abs(ys[b] - y))) for b in (16, 8, 4)]
        assert errs[0] < 3e-4 * max(scale, 1.0), errs
        assert 0 < errs[0] < errs[1] < errs[2], errs
    # the returned carry lies on the 8-bit fixed grid (and is not all zeros)
    for m in _carry_grid_multiples(name, final):
        np.testing.assert_allclose(m, jnp.round(m), atol=2e-3)
        assert float(jnp.max(jnp.abs(m))) >= 1
    # streaming: step by step from init_state equals the full quantized sequence
    np.testing.assert_allclose(y_step, ys[8], atol=1e-5)
    for a, b in zip(jax.tree.leaves(final_step), jax.tree.leaves(final)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    if grads is not None:  # 4-bit straight-through gradients: finite, nonzero on the weights
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
        g = grads["params"]
        weights = [g["in_proj"]["kernel"]] if "in_proj" in g else [g["w_ih"], g["w_hh"]]
        assert all(float(jnp.abs(w).sum()) > 0 for w in weights)


def test_min_rnn_method_resolution(cell_params):
    x = _x()
    params = cell_params("mingru")
    cfg = QuantConfig.int_bits(8, state=None)  # float carry, quantized gates and weights
    kw = CELLS["mingru"][1]
    apply = lambda p, method, quant: rnn.MinGRU(DIM, quant=quant, method=method, **kw).apply(p, x)
    y_auto, y_ref, yf_auto, yf_ref = jax.jit(
        lambda p: [apply(p, m, q) for q in (8, cfg) for m in ("auto", "ref")]
    )(params)
    # a quantized carry: "auto" is the sequential form
    np.testing.assert_array_equal(y_auto, y_ref)
    # a float carry: the parallel scan ("auto") stays available and agrees with "ref"
    np.testing.assert_allclose(yf_auto, yf_ref, atol=1e-5)
    with pytest.raises(ValueError, match="nonlinear in h"):
        jax.eval_shape(lambda p: apply(p, "scan", 8), params)
    with pytest.raises(ValueError, match="method='log'"):
        jax.eval_shape(lambda p: apply(p, "log", 8), params)


def test_fp_and_mixed_specs_run(cell_params):
    x = _x()
    cfg = QuantConfig(
        weight=QuantSpec("fp", exponent_bits=4, mantissa_bits=3, axis=-1),
        act=QuantSpec("mx", mx_format="mxfp8_e4m3", block_size=8),
        gate=QuantSpec("fp", exponent_bits=2, mantissa_bits=3),
        state=QuantSpec("fp", exponent_bits=4, mantissa_bits=3),
    )
    model = rnn.LSTM(DIM, quant=cfg)
    params = cell_params("lstm")  # rnn.LSTM(DIM)'s
    y, y_float = jax.jit(lambda p: (model.apply(p, x), rnn.LSTM(DIM).apply(p, x)))(params)
    err = float(jnp.max(jnp.abs(y - y_float)))
    assert 0 < err < 0.2 * float(jnp.max(jnp.abs(y_float)))  # FP8: 3 mantissa bits


def test_sequence_model_with_quantized_mixer():
    tokens = jnp.arange(16).reshape(8, 2) % 11
    kwargs = dict(dim=16, depth=1, vocab_size=11, mixer="lstm")
    model = SequenceModel(**kwargs, mixer_kwargs={"quant": QuantConfig.int_bits(8)})
    float_model = SequenceModel(**kwargs)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens)

    @jax.jit
    def run(params):
        state = model.apply(params, 8, method="init_state")
        _, logits_0 = model.apply(params, state, tokens[:, 0], method="step")
        return model.apply(params, tokens), float_model.apply(params, tokens), logits_0

    logits, logits_float, logits_0 = run(params)
    assert logits.shape == (8, 2, 11) and bool(jnp.all(jnp.isfinite(logits)))
    err = float(jnp.max(jnp.abs(logits - logits_float)))
    assert 0 < err < 0.1 * float(jnp.max(jnp.abs(logits_float)))
    np.testing.assert_allclose(logits_0, logits[:, 0], atol=1e-5)


def test_bad_quant_specs():
    x = _x()
    with pytest.raises(ValueError, match="fixed grid"):
        QuantConfig(state=QuantSpec("mx"))
    with pytest.raises(ValueError, match="fixed grid"):
        QuantConfig(gate=QuantSpec("binary"))
    with pytest.raises(ValueError, match="lsq"):
        QuantConfig(weight=QuantSpec("lsq"))
    with pytest.raises(ValueError, match="per token"):
        QuantConfig(act=QuantSpec("int", bits=8, axis=-1))
    with pytest.raises(ValueError, match="positive"):
        QuantConfig(state_range=0.0)
    with pytest.raises(TypeError, match="QuantSpec"):
        QuantConfig(weight="int8")
    with pytest.raises(TypeError, match="quant must be"):
        rnn.GRU(DIM, quant="8").init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="unsupported bits"):
        rnn.GRU(DIM, quant=1).init(jax.random.PRNGKey(0), x)
    assert isinstance(rnn.LSTM(DIM, quant=4).quant, int)  # ints are resolved lazily
