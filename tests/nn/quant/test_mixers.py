"""The `quant=` option of the state-space and linear-attention mixers (S4D, S5, RG-LRU,
Griffin, Mamba, Mamba-2, GLA, RetNet, RWKV-6) and the LMU: no new parameters, close to float at 16 bits, error
growing as bits shrink, the state on its fixed grid after every step, step == full, STE
gradients, and a clear error for the parallel forms under a quantized state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.linear_attention import mixers as la
from lib.nn.quant.layers import QuantConfig
from lib.nn.ssm import lmu
from lib.nn.ssm import lti as ssm_lti
from lib.nn.ssm import mamba as ssm

DIM, LENGTH, BATCH = 8, 9, 2
# name: (class, kwargs, a parallel method refused under a quantized state, the quantized state
# leaf of the returned state, its default fixed range)
MIXERS = {
    "s4d": (
        ssm_lti.S4D,
        {"state_dim": 4, "dt_min": 0.1, "dt_max": 1.0},
        "associative",
        lambda s: s.h,
        ssm_lti.S4D_STATE_RANGE,
    ),
    "s5": (ssm_lti.S5, {"state_dim": 4}, "chunked", lambda s: s.h, ssm_lti.S5_STATE_RANGE),
    "rglru": (ssm_lti.RGLRU, {}, "associative", lambda s: s.h, ssm_lti.RGLRU_STATE_RANGE),
    "griffin": (
        ssm_lti.GriffinBlock,
        {"conv_width": 2},
        "associative",
        lambda s: s.rnn,
        ssm_lti.RGLRU_STATE_RANGE,
    ),
    "mamba": (
        ssm.Mamba,
        {"state_dim": 4, "dt_min": 0.1, "dt_max": 1.0},
        "chunked",
        lambda s: s.ssm,
        ssm.MAMBA_STATE_RANGE,
    ),
    "mamba2": (
        ssm.Mamba2,
        {"state_dim": 4, "head_dim": 8, "dt_min": 0.1, "dt_max": 1.0},
        "chunked",
        lambda s: s.ssm,
        ssm.MAMBA_STATE_RANGE,
    ),
    "gla": (
        la.GLA,
        {"num_heads": 2, "gate_rank": 4, "gate_temperature": 2.0},
        "chunked",
        lambda s: s,
        la.GLA_STATE_RANGE,
    ),
    "retnet": (la.RetNet, {"num_heads": 2}, "parallel", lambda s: s.S, la.RETNET_STATE_RANGE),
    "rwkv6": (
        la.RWKV6TimeMix,
        {"num_heads": 2, "mix_rank": 4, "decay_rank": 4},
        "chunked",
        lambda s: s.S,
        la.RWKV6_STATE_RANGE,
    ),
    "lmu": (lmu.LMU, {"order": 4, "theta": 4.0}, "fft", lambda s: s, lmu.LMU_STATE_RANGE),
}
# (larger steps than the defaults for S4D and Mamba: at dt ~ 0.01 a short sequence's inputs
# `dt B u` fall below half an 8-bit step of the state and round away)
NO_QUANT = QuantConfig(weight=None, act=None, gate=None, state=None)
# Every mixer checks: no new parameters, 16 bits close to float, a small nonzero 8-bit error,
# the state on its grid, step == full and the refused parallel form. To keep the file fast,
# the 4-bit ordering err16 < err8 < err4 and the straight-through gradients are split between
# the mixers so that each op (diagonal complex, diagonal real, selective scan, GLA) has both.
# (RWKV-6 is not among GRADIENTS: its zero-initialised `mix_up`, `decay_up` leave `mix_down`,
# `decay_down` without a gradient at init, quantized or not.)
ORDERED = ("s4d", "griffin", "mamba2", "gla", "rwkv6")
GRADIENTS = ("s5", "rglru", "mamba", "retnet", "lmu")
# the 8-bit error bound relative to the output scale: Griffin's state (~0.1 at init) uses few
# steps of its default grid of [-2, 2]; RWKV-6's unscaled k^T v state needs a wide default grid
# ([-32, 32], step 0.25 at 8 bits), whose rounding dominates its 8-bit error (~0.1 of the scale)
ERR8 = {"griffin": 0.3, "rwkv6": 0.25}


def _grid_multiples(state, limit, bits=8):
    """The state's real (and imaginary) parts over the signed narrow-range grid step."""
    k = (2 ** (bits - 1) - 1) / limit
    parts = [jnp.real(state), jnp.imag(state)] if jnp.iscomplexobj(state) else [state]
    return [p * k for p in parts]


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_quantized_mixer_against_float(name):
    cls, kw, parallel, state_leaf, limit = MIXERS[name]
    x = jax.random.normal(jax.random.PRNGKey(0), (BATCH, LENGTH, DIM))
    model = cls(DIM, **kw)
    q8 = cls(DIM, quant=8, **kw)
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    # the option adds no parameters: a float checkpoint loads unchanged
    q_shapes = jax.eval_shape(q8.init, jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, q_shapes) == jax.tree.map(jnp.shape, params)

    @jax.jit
    def run(params):
        y = model.apply(params, x)
        # every spec None: the quantized code path computes the float mixer (RG-LRU's path
        # recomputes the recurrence's terms; the others call the float ops)
        y_none = cls(DIM, quant=NO_QUANT, **kw).apply(params, x) if name == "rglru" else y
        bits = (16, 4) if name in ORDERED else (16,)
        ys = {b: cls(DIM, quant=b, **kw).apply(params, x) for b in bits}

        # the 8-bit output and state, and the gradient of a loss on them, in one trace
        def loss(p):
            y8, final = q8.apply(p, x, return_state=True)
            return jnp.sum(y8**2), (y8, final)

        if name in GRADIENTS:
            grads, (ys[8], final) = jax.grad(loss, has_aux=True)(params)
        else:
            grads, (ys[8], final) = None, loss(params)[1]
        s0 = q8.apply(params, BATCH, method="init_state")
        step = lambda s, x_t: q8.apply(params, s, x_t, method="step")
        final_step, y_step = jax.lax.scan(step, s0, jnp.swapaxes(x, 0, 1))
        return y, y_none, ys, final, final_step, jnp.swapaxes(y_step, 0, 1), grads

    y, y_none, ys, final, final_step, y_step, grads = run(params)
    np.testing.assert_allclose(y_none, y, atol=2e-5, rtol=1e-5)
    errs = [float(jnp.max(jnp.abs(ys[b] - y))) for b in sorted(ys, reverse=True)]
    scale = float(jnp.max(jnp.abs(y)))
    assert errs[0] < 1e-3 * max(scale, 1.0), (errs, scale)
    assert 0 < errs[0] < errs[1], errs
    assert errs[1] < ERR8.get(name, 0.1) * scale, (errs, scale)
    if name in ORDERED:
        assert errs[1] < errs[2], errs
    # the returned state lies on the 8-bit fixed grid of [-limit, limit], and is not all zeros
    for m in _grid_multiples(state_leaf(final), limit):
        np.testing.assert_allclose(m, jnp.round(m), atol=2e-3)
        assert float(jnp.max(jnp.abs(m))) >= 1
    # streaming: step by step from init_state equals the full quantized sequence
    np.testing.assert_allclose(y_step, ys[8], atol=1e-5)
    np.testing.assert_allclose(state_leaf(final_step), state_leaf(final), atol=1e-5)
    if name in GRADIENTS:  # straight-through: finite everywhere, nonzero on every parameter
        leaves = jax.tree_util.tree_leaves_with_path(grads)
        assert all(bool(jnp.all(jnp.isfinite(g))) for _, g in leaves)
        dead = [jax.tree_util.keystr(p) for p, g in leaves if not float(jnp.abs(g).sum()) > 0]
        assert not dead, dead
    # a quantized state has no parallel form: a clear error; "auto" resolved to sequential
    with pytest.raises(ValueError, match="nonlinear"):
        jax.eval_shape(lambda p: cls(DIM, quant=8, method=parallel, **kw).apply(p, x), params)
