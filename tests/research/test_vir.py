"""ViR: Vision Retention Networks (Hatamizadeh et al., 2023): the parallel, chunked and
recurrent forms of one ViR give the same logits; bad inputs raise; a digits smoke run."""

import jax
import numpy as np
import pytest

from launch.vir import run
from research.vir.configs import digits, mnist
from research.vir.model import ViR, ViT, make_model, patchify


def _images(b=3, size=8, seed=0):
    return np.random.default_rng(seed).random((b, size, size, 1)).astype(np.float32)


def test_patchify_matches_loop():
    x = _images(2, 8)
    p = np.asarray(patchify(x, 4))
    assert p.shape == (2, 4, 16)
    np.testing.assert_array_equal(p[1, 1], x[1, 0:4, 4:8, 0].reshape(-1))  # row 0, column 1
    np.testing.assert_array_equal(p[0, 2], x[0, 4:8, 0:4, 0].reshape(-1))  # row 1, column 0


@pytest.mark.slow  # ~20 s CPU (the recurrent form is unrolled over 17 tokens)
@pytest.mark.parametrize("image_size,patch", [(8, 2)])
def test_parallel_chunked_and_recurrent_logits_agree(image_size, patch):
    x = _images(3, image_size)
    kw = dict(dim=16, depth=2, num_heads=2, patch=patch, image_size=image_size)
    parallel = ViR(method="parallel", **kw)
    params = parallel.init(jax.random.key(0), x)
    ref = np.asarray(jax.jit(parallel.apply)(params, x))
    assert ref.shape == (3, 10) and np.isfinite(ref).all() and np.abs(ref).max() > 0.1
    rec = jax.jit(lambda p, x: parallel.apply(p, x, method="recurrent"))(params, x)
    np.testing.assert_allclose(rec, ref, rtol=1e-4, atol=1e-4)
    chunked = ViR(method="chunked", **kw)
    np.testing.assert_allclose(jax.jit(chunked.apply)(params, x), ref, rtol=1e-4, atol=1e-4)
    # The recurrent form is causal: the class token (last) sees every patch, so changing the
    # first patch changes the logits.
    y = x.copy()
    y[:, :patch, :patch] += 1.0
    assert np.abs(np.asarray(parallel.apply(params, y)) - ref).max() > 1e-3


def test_vit_baseline_shape_and_bad_inputs():
    x = _images(2, 8)
    vit = ViT(dim=16, depth=1, num_heads=2)
    assert vit.apply(vit.init(jax.random.key(0), x), x).shape == (2, 10)
    with pytest.raises(ValueError, match="divide by patch"):
        patchify(_images(1, 7), 2)
    c = digits.get_config("smoke")
    c.model = "mlp"
    with pytest.raises(ValueError, match="unknown model"):
        make_model(c)
    with pytest.raises(ValueError, match="unknown config"):
        digits.get_config("huge")


def test_digits_launch_smoke():
    c = digits.get_config("smoke")
    c.models = ("vir",)
    (row,) = run(c)["digits"]
    assert row["model"] == "vir" and np.isfinite(row["train_loss"])
    assert 0.0 <= row["test_accuracy"] <= 1.0 and row["num_params"] > 0


def test_mnist_configs():
    c = mnist.get_config()
    assert (c.data, c.image_size, c.patch) == ("mnist", 28, 4) and c.image_size % c.patch == 0
    assert mnist.get_config("fashion_mnist").data == "fashion_mnist"
    assert mnist.get_config("smoke").train_examples % 8 == 0
    with pytest.raises(ValueError, match="unknown config"):
        mnist.get_config("cifar")
