"""The `quant=` option of the LRU mixer (lib.nn.ssm.lti): a quantized complex state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantConfig
from lib.nn.ssm.lti import LRU, LRU_STATE_RANGE
from lib.ops.ssm import lti as ops

DIM, P, LENGTH, BATCH = 8, 6, 13, 2


def test_quantized_lru_against_float():
    x = jax.random.normal(jax.random.PRNGKey(0), (BATCH, LENGTH, DIM))
    model = LRU(DIM, state_dim=P, r_min=0.5)
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    q8 = LRU(DIM, state_dim=P, r_min=0.5, quant=8)
    q_float_state = LRU(DIM, state_dim=P, r_min=0.5, quant=QuantConfig.int_bits(8, state=None))

    @jax.jit
    def run(params):
        y = model.apply(params, x)
        p = params["params"]
        y_ops = ops.ssm_lru(
            x, p["ring"][0], p["ring"][1], p["B"][0] + 1j * p["B"][1],
            p["C"][0] + 1j * p["C"][1], p["D"], p["ring"][2],
        )  # fmt: skip
        ys = {b: LRU(DIM, state_dim=P, r_min=0.5, quant=b).apply(params, x) for b in (16, 4)}

        def loss8(t):  # the 8-bit output and state come from the gradient's forward pass
            y8, final = q8.apply(t, x, return_state=True)
            return jnp.sum(y8**2), (y8, final)

        grads, (ys[8], final) = jax.grad(loss8, has_aux=True)(params)
        s0 = q8.apply(params, BATCH, method="init_state")
        step = lambda s, x_t: q8.apply(params, s, x_t, method="step")
        final_step, y_step = jax.lax.scan(step, s0, jnp.swapaxes(x, 0, 1))
        # a float state with quantized weights/inputs: parallel and sequential forms agree
        y_par = q_float_state.apply(params, x)
        y_seq = LRU(DIM, state_dim=P, r_min=0.5, quant=q_float_state.quant, method="scan")
        return (
            y,
            y_ops,
            ys,
            final.h,
            final_step.h,
            jnp.swapaxes(y_step, 0, 1),
            grads,
            (y_par, y_seq.apply(params, x)),
        )

    y, y_ops, ys, final, final_step, y_step, grads, (y_par, y_seq) = run(params)
    np.testing.assert_array_equal(y, y_ops)  # quant=None: the float op itself
    errs = [float(jnp.max(jnp.abs(ys[b] - y))) for b in (16, 8, 4)]
    scale = float(jnp.max(jnp.abs(y)))
    assert errs[0] < 3e-4 * max(scale, 1.0) and 0 < errs[0] < errs[1] < errs[2], errs
    assert errs[1] < 0.05 * scale, (errs, scale)
    # real and imaginary parts of the returned state on the 8-bit grid of [-4, 4]
    for part in (jnp.real(final), jnp.imag(final)):
        k = part * 127 / LRU_STATE_RANGE
        np.testing.assert_allclose(k, jnp.round(k), atol=2e-3)
        assert float(jnp.max(jnp.abs(k))) >= 1
    np.testing.assert_allclose(y_step, ys[8], atol=1e-5)
    np.testing.assert_allclose(final_step, final, atol=1e-5)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    g = grads["params"]
    assert float(jnp.abs(g["B"]).sum()) > 0 and float(jnp.abs(g["ring"]).sum()) > 0
    np.testing.assert_allclose(y_par, y_seq, atol=1e-5)
    with pytest.raises(ValueError, match="nonlinear"):
        LRU(DIM, state_dim=P, quant=8, method="associative").apply(params, x)
