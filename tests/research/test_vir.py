"""ViR: Vision Retention Networks (Hatamizadeh et al., 2023): the parallel, chunked and
recurrent forms of one ViR give the same logits; parameter-matched configs are matched; bad
inputs raise; the digits smoke run learns well above chance."""

import jax
import numpy as np
import pytest

from launch.vir import run, variants
from lib.train.config import load_config
from lib.train.state import num_params
from research.vir.configs import digits, mnist
from research.vir.model import ViR, ViT, make_model, patchify

OUTPUTS = ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json")


def _images(b=3, size=8, seed=0):
    return np.random.default_rng(seed).random((b, size, size, 1)).astype(np.float32)


def test_patchify_matches_loop():
    x = _images(2, 8)
    p = np.asarray(patchify(x, 4))
    assert p.shape == (2, 4, 16)
    np.testing.assert_array_equal(p[1, 1], x[1, 0:4, 4:8, 0].reshape(-1))  # row 0, column 1
    np.testing.assert_array_equal(p[0, 2], x[0, 4:8, 0:4, 0].reshape(-1))  # row 1, column 0


@pytest.mark.claim
def test_parallel_chunked_and_recurrent_logits_agree():
    x = _images(2, 8)
    y = x.copy()
    y[:, :2, :2] += 1.0  # only the first patch changes
    kw = dict(dim=8, depth=2, num_heads=2, patch=2, image_size=8)  # 16 patches + class token
    parallel = ViR(method="parallel", **kw)
    chunked = ViR(method="chunked", chunk_size=4, **kw)  # 17 tokens: 5 chunks, the last partial
    params = jax.jit(parallel.init)(jax.random.key(0), x)

    @jax.jit  # one compile for both full-sequence forms
    def full_forms(p):
        return parallel.apply(p, np.concatenate([x, y])), chunked.apply(p, x)

    both, chunk = full_forms(params)
    ref, ref_y = np.asarray(both[:2]), np.asarray(both[2:])
    assert ref.shape == (2, 10) and np.isfinite(ref).all() and np.abs(ref).max() > 0.1
    # Eager on purpose: each op compiles once and every later token reuses it (a jit of the
    # unrolled 17-token loop compiles twice as long).
    rec = parallel.apply(params, x, method="recurrent")
    np.testing.assert_allclose(rec, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(chunk, ref, rtol=1e-4, atol=1e-4)
    # Causal over patches with the class token last: it still sees the first patch.
    assert np.abs(ref_y - ref).max() > 1e-3


def test_vit_baseline_shape_and_bad_inputs():
    x = _images(2, 8)
    vit = ViT(dim=16, depth=1, num_heads=2)
    assert jax.jit(lambda k, x: vit.apply(vit.init(k, x), x))(jax.random.key(0), x).shape == (2, 10)
    with pytest.raises(ValueError, match="divide by patch"):
        patchify(_images(1, 7), 2)
    c = digits.get_config("smoke")
    c.model.name = "mlp"
    with pytest.raises(ValueError, match="unknown model"):
        make_model(c.model)
    with pytest.raises(ValueError, match="config arg"):
        digits.get_config("huge")


@pytest.mark.claim
def test_digits_smoke_study_learns(tmp_path):
    # Claim at tiny scale, through the study launcher and the shared loop: 117 steps of a
    # 1-block, 16-wide ViR classify held-out digits far above chance (0.1); measured 0.65
    # (fit_classifier) and 0.73 (the shared loop, another initialization), 359 test images
    # (one run's standard error ~0.025).
    c = digits.get_config("smoke")
    c.study.models = ("vir",)
    c.train.progress_bar = False
    (row,) = run(c, str(tmp_path))
    assert row["variant"] == "vir" and np.isfinite(row["train_loss"]) and row["num_params"] > 0
    assert row["test_accuracy"] > 0.4 and row["test_count"] == 359
    for name in OUTPUTS:
        assert (tmp_path / "vir" / name).exists(), name
    assert (tmp_path / "results.json").exists() and (tmp_path / "results.md").exists()


def test_epochs_set_the_number_of_steps():
    # 1257 training digits in full batches of 64: 19 per epoch.
    c = load_config("research/vir/configs/digits.py", ["data.epochs=40"])
    assert c.train.num_steps == 40 * 19 and c.optimizer.warmup_steps == 40 * 19 // 10 + 1
    c = load_config("research/vir/configs/mnist.py", ["data.batch_size=100"])
    assert c.train.num_steps == 4 * 100 and c.optimizer.warmup_steps == 50


def test_mnist_configs_and_parameter_matching():
    c = mnist.get_config()
    assert (c.data.name, c.model.image_size, c.model.patch) == ("mnist", 28, 4)
    assert c.train.num_steps == 624  # 4 epochs of 156 full batches of 64
    assert mnist.get_config("fashion_mnist").data.name == "fashion_mnist"
    assert mnist.get_config("smoke").data.train_examples % 8 == 0
    with pytest.raises(ValueError, match="config arg"):
        mnist.get_config("cifar")
    m = mnist.get_config("fashion_mnist,matched")
    assert m.data.name == "fashion_mnist" and m.study.matched_dims
    names = [name for name, _ in variants(m)]
    assert names == ["vir40", "vit48", "vir48", "vit60"]
    x = np.zeros((2, 28, 28, 1), np.float32)
    overrides = dict(variants(m))
    for vir_dim, vit_dim in m.study.matched_dims:  # abstract init (no compile): parameters
        n = {}
        for name, dim in (("vir", vir_dim), ("vit", vit_dim)):
            cfg = m.copy_and_resolve_references().model
            assert overrides[f"{name}{dim}"] == {"model.name": name, "model.dim": dim}
            cfg.name, cfg.dim = name, dim
            params = jax.eval_shape(make_model(cfg).init, jax.random.key(0), x)["params"]
            n[name] = num_params(params)
        assert abs(n["vit"] / n["vir"] - 1) < 0.06, (vir_dim, vit_dim, n)
