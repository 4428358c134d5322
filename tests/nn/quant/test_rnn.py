"""QuantizedRNN module: float when bits are None, closer to float as bits grow, step form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantizedRNN
from lib.ops.rnn.cells import gru, lstm


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_quantized_rnn_module(cell):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 17, 8))
    none = dict(weight_bits=None, input_bits=None, act_bits=None, state_bits=None)
    m_float = QuantizedRNN(8, cell, **none)
    params = m_float.init(jax.random.PRNGKey(1), x)
    p = params["params"]
    ref = (
        lstm(x, p["w_ih"], p["w_hh"], p["b"])
        if cell == "lstm"
        else (gru(x, p["w_ih"], p["w_hh"], p["b"]))
    )
    np.testing.assert_allclose(m_float.apply(params, x), ref, atol=1e-5)
    errs = []
    for bits in (4, 12):
        m = QuantizedRNN(8, cell, weight_bits=bits, input_bits=bits, act_bits=bits, state_bits=bits)
        errs.append(float(jnp.max(jnp.abs(m.apply(params, x) - ref))))
    assert errs[1] < errs[0] and errs[1] < 0.02
    # streaming: step by step == full sequence (input scales static: input_bits None)
    m = QuantizedRNN(8, cell, input_bits=None, weight_bits=6, act_bits=6, state_bits=6)
    y = m.apply(params, x)
    state = m.apply(params, 2, method="init_state")
    for t in range(4):
        state, yt = m.apply(params, state, x[:, t], method="step")
        np.testing.assert_allclose(yt, y[:, t], atol=1e-6)
    with pytest.raises(ValueError, match="cell must be"):
        QuantizedRNN(8, "rnn").init(jax.random.PRNGKey(1), x)
