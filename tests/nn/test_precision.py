"""Mixed precision in lib.nn: every registered mixer and every module with parameters, run with
`dtype=bfloat16`, keeps float32 parameters and float32 states, returns bfloat16 activations
(float32 logits) and stays close to its float32 output (same parameters)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn import precision
from lib.nn.blocks import GatedMLP, RMSNorm
from lib.nn.lowrank.layers import LowRankDense
from lib.nn.quant.layers import QuantDense, QuantizedRNN, QuantSpec
from lib.nn.registry import MIXERS, get_mixer
from lib.nn.sequence_model import SequenceModel
from lib.nn.sparse.layers import DeltaActivation, DSFormerDense, NMSparseDense
from lib.nn.spiking.delays import DelayedDense
from lib.nn.spiking.layers import (
    LIFNeuron,
    SpikingConv,
    SpikingDense,
    SpikingMLP,
    SpikingResidualBlock,
)

BF16 = jnp.bfloat16
# bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9): a few layers of rounded
# activations stay within a few percent of the float32 output.
RTOL = 5e-2
DIM, LENGTH = 16, 9

# small settings where a mixer's defaults are large
MIXER_KWARGS = {
    "spiking": {"mixer": "gla"},
    "long_conv": {"max_len": 16},
    "attention": {"max_len": 16},
    "local_attention": {"max_len": 16, "window": 4},
}


def _all_mixers():
    """The mixers lib registers (not those other test modules register in the same worker,
    which exist or not depending on what ran first)."""
    get_mixer("gla")  # imports every module that registers one
    return sorted(
        name for name in MIXERS if getattr(MIXERS[name], "__module__", "").startswith("lib.")
    )


def _rel_err(y, ref):
    y, ref = np.asarray(y, np.float32), np.asarray(ref, np.float32)
    return np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-6)


def _param_dtypes(params):
    return {leaf.dtype for leaf in jax.tree.leaves(params)}


def _assert_float32_state(state, what):
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert leaf.dtype in (jnp.float32, jnp.complex64), f"{what}: {leaf.dtype}"


@pytest.fixture(scope="module")
def inputs():
    return jax.random.normal(jax.random.key(0), (2, LENGTH, DIM), jnp.float32)


def _mixer_run(m32, m16, x):
    """Everything a mixer test looks at, in one compiled function (one compile per mixer)."""
    params = m16.init(jax.random.key(1), x)
    y32 = m32.apply(params, x)
    y16, state = m16.apply(params, x, return_state=True)
    s0 = m16.apply(params, x.shape[0], BF16, method="init_state")
    s1, y_t = m16.apply(params, s0, x[:, 0], method="step")
    return params, y32, y16, state, s0, s1, y_t


@pytest.mark.parametrize("name", _all_mixers())
def test_mixer_bfloat16(name, inputs):
    cls, kw = get_mixer(name), MIXER_KWARGS.get(name, {})
    m32, m16 = cls(dim=DIM, **kw), cls(dim=DIM, dtype=BF16, **kw)
    run = jax.jit(lambda x: _mixer_run(m32, m16, x))
    params, y32, y16, state, s0, s1, y_t = run(inputs)
    assert _param_dtypes(params) == {jnp.dtype(jnp.float32)}
    assert y16.dtype == BF16
    assert np.isfinite(np.asarray(y16, np.float32)).all()
    assert _rel_err(y16, y32) < RTOL
    _assert_float32_state(state, f"{name} final state")
    _assert_float32_state(s0, f"{name} init_state")
    assert y_t.dtype == BF16
    _assert_float32_state(s1, f"{name} step state")
    assert _rel_err(y_t, y32[:, 0]) < RTOL  # step-by-step agrees with the full pass


def test_sequence_model_bfloat16():
    """An LM in bfloat16: float32 parameters, float32 logits close to the float32 model's,
    in the full pass and token by token."""
    tokens = jax.random.randint(jax.random.key(0), (2, LENGTH), 0, 11)
    kw = dict(dim=DIM, depth=2, mixer="mingru", vocab_size=11, mlp_hidden_dim=32)
    m32, m16 = SequenceModel(**kw), SequenceModel(**kw, dtype=BF16)

    @jax.jit
    def run(tokens):
        params = m16.init(jax.random.key(1), tokens)
        state = m16.apply(params, 2, method="init_state")
        state, step_logits = m16.apply(params, state, tokens[:, 0], method="step")
        return params, m32.apply(params, tokens), m16.apply(params, tokens), state, step_logits

    params, logits32, logits16, state, step_logits = run(tokens)
    assert _param_dtypes(params) == {jnp.dtype(jnp.float32)}
    assert logits16.dtype == jnp.float32
    assert _rel_err(logits16, logits32) < RTOL
    assert step_logits.dtype == jnp.float32
    _assert_float32_state(state, "SequenceModel state")
    assert _rel_err(step_logits, logits32[:, 0]) < RTOL


def test_mixer_kwargs_can_set_precision():
    """A `dtype` in `mixer_kwargs` wins over the model's (per-mixer precision)."""
    tokens = jnp.zeros((1, 4), jnp.int32)
    model = SequenceModel(
        dim=DIM, depth=1, mixer="gru", vocab_size=11, mixer_kwargs={"dtype": jnp.float32},
        dtype=BF16,
    )  # fmt: skip
    variables = jax.eval_shape(model.init, jax.random.key(0), tokens)
    _, inter = jax.eval_shape(
        lambda v: model.apply(v, tokens, capture_intermediates=True), variables
    )
    mix_out = inter["intermediates"]["block_0"]["mix"]["__call__"][0]
    assert mix_out.dtype == jnp.float32


def _spikes(shape, key=2):
    return (jax.random.uniform(jax.random.key(key), shape) < 0.3).astype(jnp.float32)


# (module factory taking precision kwargs, input, expected output dtype, tolerance)
LAYERS = {
    "rms_norm": (lambda **p: RMSNorm(**p), (2, LENGTH, DIM), BF16),
    "gated_mlp": (lambda **p: GatedMLP(DIM, 32, **p), (2, LENGTH, DIM), BF16),
    "quant_dense": (
        lambda **p: QuantDense(8, QuantSpec("int", bits=8, axis=-1), **p),
        (2, LENGTH, DIM),
        BF16,
    ),  # fmt: skip
    "quantized_rnn": (lambda **p: QuantizedRNN(DIM, "gru", **p), (2, LENGTH, DIM), BF16),
    "lowrank_dense": (lambda **p: LowRankDense(8, rank=4, **p), (2, LENGTH, DIM), BF16),
    "nm_sparse_dense": (lambda **p: NMSparseDense(8, **p), (2, LENGTH, DIM), BF16),
    "dsformer_dense": (lambda **p: DSFormerDense(8, inner=8, **p), (2, LENGTH, DIM), BF16),
    "delta_activation": (lambda **p: DeltaActivation(**p), (2, LENGTH, DIM), BF16),
    "delayed_dense": (lambda **p: DelayedDense(8, max_delay=3, **p), (2, LENGTH, DIM), BF16),
    "lif_neuron": (lambda **p: LIFNeuron(learn_beta=True, **p), (2, LENGTH, DIM), BF16),
    "spiking_dense": (lambda **p: SpikingDense(8, learn_beta=True, **p), (2, LENGTH, DIM), BF16),
    "spiking_conv": (lambda **p: SpikingConv(4, (3, 3), **p), (2, 3, 5, 5, 2), BF16),
    "spiking_mlp": (lambda **p: SpikingMLP((8,), 3, **p), (2, LENGTH, DIM), jnp.float32),
    "sew_block": (lambda **p: SpikingResidualBlock(**p), (2, LENGTH, DIM), BF16),
}
SPIKING = {"lif_neuron", "spiking_dense", "spiking_conv", "sew_block"}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_bfloat16(name):
    make, shape, out_dtype = LAYERS[name]
    x = 2.0 * jax.random.normal(jax.random.key(0), shape)
    if name == "sew_block":
        x = _spikes(shape)
    m32, m16 = make(), make(dtype=BF16)

    @jax.jit
    def run(x):
        variables = m16.init(jax.random.key(1), x)
        return variables, m32.apply(variables, x), m16.apply(variables, x)

    variables, y32, y16 = run(x)
    assert _param_dtypes(variables) <= {jnp.dtype(jnp.float32)}
    assert y16.dtype == out_dtype
    assert np.isfinite(np.asarray(y16, np.float32)).all()
    if name in SPIKING:  # a rounded current may cross the threshold: few spikes may flip
        assert np.mean(np.asarray(y16, np.float32) != np.asarray(y32)) < 0.02
    else:
        assert _rel_err(y16, y32) < RTOL


def test_recurrent_layers_keep_float32_state():
    x = jax.random.normal(jax.random.key(0), (2, LENGTH, DIM))
    for module, state in [
        (LIFNeuron(dtype=BF16), None),
        (QuantizedRNN(DIM, "lstm", dtype=BF16), None),
        (DeltaActivation(dtype=BF16), None),
    ]:
        variables = jax.eval_shape(module.init, jax.random.key(1), x)
        y, final = jax.eval_shape(
            lambda v, m=module, s=state: m.apply(v, x, s, return_state=True), variables
        )
        assert y.dtype == BF16
        _assert_float32_state(final, type(module).__name__)


def test_compute_dtype_names():
    assert precision.compute_dtype("bfloat16") == jnp.bfloat16
    assert precision.compute_dtype(None) == jnp.float32
    with pytest.raises(ValueError, match="compute_dtype"):
        precision.compute_dtype("float16")


def test_param_dtype_is_honoured():
    """`param_dtype` reaches every parameter, including the module's own `self.param`s."""
    x = jnp.ones((1, 4, DIM))
    for name in ("mamba", "rwkv6", "gru", "s4d", "tcn"):
        module = get_mixer(name)(dim=DIM, param_dtype=BF16)
        params = jax.eval_shape(module.init, jax.random.key(0), x)
        assert _param_dtypes(params) == {jnp.dtype(BF16)}, name


def test_dense_helper_follows_module():
    class M(nn.Module):
        dtype: object = None
        param_dtype: object = jnp.float32

        @nn.compact
        def __call__(self, x):
            return precision.dense(self, 3)(x)

    x = jnp.ones((2, 4))
    v = jax.eval_shape(M(dtype=BF16).init, jax.random.key(0), x)
    assert jax.eval_shape(M(dtype=BF16).apply, v, x).dtype == BF16
    assert _param_dtypes(v) == {jnp.dtype(jnp.float32)}


class _NoPrecision(nn.Module):
    """A mixer registered without the precision fields (as one outside lib.nn may be)."""

    dim: int

    def __call__(self, x, state=None, return_state=False):
        return x


def test_mixer_without_precision_fields():
    from lib.nn.blocks import make_mixer
    from lib.nn.registry import register_mixer

    register_mixer("_test_no_precision")(_NoPrecision)
    assert isinstance(make_mixer("_test_no_precision", DIM), _NoPrecision)  # defaults: fine
    with pytest.raises(ValueError, match="no `dtype`/`param_dtype` fields"):
        make_mixer("_test_no_precision", DIM, dtype=BF16)
