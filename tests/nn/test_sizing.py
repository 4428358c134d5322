"""Language models of registered mixers and widths matched in parameter count (`lib.nn.sizing`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.sizing import count_params, language_model, sized_language_model, width_for_params


def test_count_params_equals_the_initialised_models():
    model = language_model("attention", 16, 1, 11, {"num_heads": 2})
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, 5), jnp.int32))
    assert count_params(model) == sum(np.size(x) for x in jax.tree.leaves(variables))


def test_mamba_blocks_have_no_mlp_and_others_do():
    def has_mlp(mixer):
        shapes = jax.eval_shape(
            language_model(mixer, 16, 1, 8).init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32)
        )
        return "mlp" in str(jax.tree_util.tree_structure(shapes)).lower()

    assert not has_mlp("mamba") and has_mlp("attention")


def test_width_for_params_matches_sizes():
    counts = {}
    for mixer in ("mamba", "attention", "gru"):
        make = lambda dim, mixer=mixer: language_model(mixer, dim, 1, 32)  # noqa: E731
        dim = width_for_params(make, 40_000)
        assert dim % 8 == 0
        counts[mixer] = count_params(make(dim))
        # The next width up or down is no closer to the target.
        for other in (dim - 8, dim + 8):
            if other > 0:
                assert abs(count_params(make(other)) - 40_000) >= abs(counts[mixer] - 40_000)
    assert max(counts.values()) / min(counts.values()) < 1.2, counts
    with pytest.raises(ValueError, match="target"):
        width_for_params(lambda d: language_model("gru", d, 1, 8), 0)


def test_sized_language_model_takes_a_width_or_a_target():
    model, dim = sized_language_model("gru", 1, 16, dim=24)
    assert dim == 24 and model.dim == 24
    model, dim = sized_language_model("gru", 1, 16, target_params=5_000)
    assert dim == width_for_params(lambda d: language_model("gru", d, 1, 16), 5_000)
    with pytest.raises(ValueError, match="dim > 0 or target_params > 0"):
        sized_language_model("gru", 1, 16)
