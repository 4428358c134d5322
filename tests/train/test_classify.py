"""lib.train.classify: the in-memory classification fit learns a separable problem, its batched
evaluation matches a NumPy forward pass, bad arguments raise, train_each builds rows."""

import flax.linen as nn
import numpy as np
import pytest

from lib.train.classify import fit_classifier, load_arrays, num_params, predict, train_each


def _blobs(n, seed, dim=5, classes=3):
    """Three Gaussian blobs with well-separated means: a linear classifier reaches ~100%."""
    rng = np.random.default_rng(seed)
    means = 4.0 * np.eye(classes, dim)
    y = rng.integers(0, classes, n).astype(np.int32)
    x = (means[y] + rng.normal(size=(n, dim))).astype(np.float32)
    return x, y


def test_fit_learns_separable_blobs():
    model = nn.Dense(3)
    r = fit_classifier(model, _blobs(256, 0), _blobs(200, 1), epochs=15, batch_size=32, lr=0.05)
    assert r["num_params"] == 5 * 3 + 3
    assert r["test_accuracy"] >= 0.95  # Bayes accuracy of these blobs is ~0.99
    assert r["train_loss"] < 0.3  # chance level is ln 3 = 1.10
    assert r["seconds"] > 0


def test_batched_predict_matches_numpy_forward():
    model = nn.Dense(3)
    train, test = _blobs(64, 0), _blobs(70, 1)
    r = fit_classifier(model, train, test, epochs=1, batch_size=64, lr=0.1, eval_batch_size=32)
    w, b = (np.asarray(r["params"]["params"][k]) for k in ("kernel", "bias"))
    want = test[0] @ w + b
    got = predict(model, r["params"], test[0], batch_size=32)  # 70 = 32 + 32 + 6
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert r["test_accuracy"] == pytest.approx(float((want.argmax(-1) == test[1]).mean()))
    assert num_params(r["params"]) == w.size + b.size


def test_bad_arguments_raise():
    model = nn.Dense(3)
    x, y = _blobs(16, 0)
    with pytest.raises(ValueError, match="labels"):
        fit_classifier(model, (x, y[:-1]), (x, y), epochs=1, batch_size=8, lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        fit_classifier(model, (x, y), (x, y), epochs=1, batch_size=32, lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        fit_classifier(model, (x, y), (x, y), epochs=0, batch_size=8, lr=0.1)


def test_train_each_rows():
    rows = train_each(["a", "bb"], lambda n: {"test_accuracy": len(n) / 4, "seconds": 1.0, "x": 0})
    assert rows == [
        {"model": "a", "test_accuracy": 0.25, "seconds": 1.0},
        {"model": "bb", "test_accuracy": 0.5, "seconds": 1.0},
    ]


def test_load_arrays_reads_prepared_digits(tmp_path):
    import lib.data as data
    from lib.data.images import sklearn_digits_splits

    data.prepare("digits", tmp_path)
    x, y = load_arrays("digits", "test", limit=100, data_dir=tmp_path)
    want_x, want_y = sklearn_digits_splits()["test"]
    assert x.shape == (100, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(x[..., 0] * 16.0, want_x[:100], atol=1e-5)
    np.testing.assert_array_equal(y, want_y[:100])
