"""Synthetic memory tasks: selective copying and induction heads (Mamba, Gu & Dao 2023),
multi-query associative recall (Zoology, Arora et al. 2023) and the adding problem
(Hochreiter & Schmidhuber 1997).

Token conventions: 0 is the blank / filler token; task tokens follow. Every example has a
solver here (`solve_*`) that reads the answer off the inputs; tests check labels with it.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import GeneratedBuilder, sequence_features, split_counts


def _length(cfg, split):
    """Sequence length of a split: `test_seq_len` (if > 0) for test, `seq_len` otherwise."""
    return cfg["test_seq_len"] if split == "test" and cfg.get("test_seq_len", 0) else cfg["seq_len"]


# ----------------------------------------------------------------------------- selective copying
class SelectiveCopying(GeneratedBuilder):
    """Selective copying: `num_tokens` data tokens scattered among `seq_len` blanks, then
    `num_tokens` marker tokens during which the data tokens must be output in order.

    Tokens: 0 blank, 1..vocab data, vocab + 1 marker. Length = seq_len + num_tokens.
    """

    DEFAULTS = {"seq_len": 256, "num_tokens": 16, "vocab": 16, **split_counts(10000, 1000, 1000)}

    def validate_config(self, cfg):
        if cfg["num_tokens"] > cfg["seq_len"]:
            raise ValueError("num_tokens must be <= seq_len")

    def _features(self):
        return sequence_features(self.cfg["seq_len"] + self.cfg["num_tokens"])

    def _metadata(self):
        c = self.cfg
        return {
            "seq_len": c["seq_len"] + c["num_tokens"],
            "vocab_size": c["vocab"] + 2,
            "marker_token": c["vocab"] + 1,
            "task": "sequence",
        }

    def example(self, rng, split):
        c = self.cfg
        n, length = c["num_tokens"], c["seq_len"]
        tokens = rng.integers(1, c["vocab"] + 1, size=n)
        positions = np.sort(rng.choice(length, size=n, replace=False))
        inputs = np.zeros(length + n, np.int32)
        inputs[positions] = tokens
        inputs[length:] = c["vocab"] + 1
        targets = np.zeros(length + n, np.int32)
        targets[length:] = tokens
        mask = np.zeros(length + n, np.float32)
        mask[length:] = 1
        return {"inputs": inputs, "targets": targets, "mask": mask}


def solve_selective_copying(inputs: np.ndarray, vocab: int) -> np.ndarray:
    """The data tokens of one example's inputs [L + n], in order: what must be output."""
    marker = vocab + 1
    body = inputs[inputs != marker]
    return body[body != 0]


# ----------------------------------------------------------------------------- induction heads
class InductionHeads(GeneratedBuilder):
    """Induction heads: random tokens in which a trigger token appears once, followed by an
    answer token; the sequence ends with the trigger, and the target there is the answer.

    Tokens: 1..vocab random tokens, vocab + 1 trigger (0 unused). The loss is on the last
    position only. `test_seq_len` > 0 makes the test split longer (length extrapolation).
    """

    DEFAULTS = {"seq_len": 256, "test_seq_len": 0, "vocab": 16, **split_counts(10000, 1000, 1000)}

    def validate_config(self, cfg):
        if cfg["seq_len"] < 4 or (cfg["test_seq_len"] and cfg["test_seq_len"] < 4):
            raise ValueError("sequence lengths must be >= 4")

    def _features(self):
        variable = bool(self.cfg["test_seq_len"])
        return sequence_features(None if variable else self.cfg["seq_len"])

    def _metadata(self):
        c = self.cfg
        return {
            "seq_len": c["seq_len"],
            "test_seq_len": c["test_seq_len"] or c["seq_len"],
            "vocab_size": c["vocab"] + 2,
            "trigger_token": c["vocab"] + 1,
            "task": "sequence",
        }

    def example(self, rng, split):
        c = self.cfg
        length, trigger = _length(c, split), c["vocab"] + 1
        inputs = rng.integers(1, c["vocab"] + 1, size=length).astype(np.int32)
        position = rng.integers(0, length - 2)
        inputs[position] = trigger
        inputs[-1] = trigger
        targets = np.zeros(length, np.int32)
        targets[-1] = inputs[position + 1]
        mask = np.zeros(length, np.float32)
        mask[-1] = 1
        return {"inputs": inputs, "targets": targets, "mask": mask}


def solve_induction_heads(inputs: np.ndarray, trigger: int) -> int:
    """The token after the first trigger: the answer at the last position."""
    first = int(np.flatnonzero(inputs == trigger)[0])
    return int(inputs[first + 1])


# ----------------------------------------------------------------------------- MQAR
class Mqar(GeneratedBuilder):
    """Multi-query associative recall: `num_pairs` key-value pairs, then queries of the keys
    at random later positions; the target at a query is its key's value.

    Tokens: 0 filler, keys 1..num_keys, values num_keys + 1..num_keys + num_values. Keys in a
    sequence are distinct; each key is queried once, in random order.
    """

    DEFAULTS = {
        "seq_len": 128,
        "num_pairs": 8,
        "num_keys": 64,
        "num_values": 64,
        **split_counts(10000, 1000, 1000),
    }

    def validate_config(self, cfg):
        if cfg["num_pairs"] > cfg["num_keys"]:
            raise ValueError("num_pairs must be <= num_keys (keys are distinct)")
        if 3 * cfg["num_pairs"] > cfg["seq_len"]:
            raise ValueError("seq_len must be >= 3 * num_pairs (pairs + queries)")

    def _features(self):
        return sequence_features(self.cfg["seq_len"])

    def _metadata(self):
        c = self.cfg
        return {
            "seq_len": c["seq_len"],
            "vocab_size": 1 + c["num_keys"] + c["num_values"],
            "num_pairs": c["num_pairs"],
            "task": "sequence",
        }

    def example(self, rng, split):
        c = self.cfg
        n, length = c["num_pairs"], c["seq_len"]
        keys = rng.choice(np.arange(1, c["num_keys"] + 1), size=n, replace=False)
        values = rng.integers(c["num_keys"] + 1, c["num_keys"] + c["num_values"] + 1, size=n)
        inputs = np.zeros(length, np.int32)
        inputs[0 : 2 * n : 2] = keys
        inputs[1 : 2 * n : 2] = values
        query_positions = np.sort(rng.choice(np.arange(2 * n, length), size=n, replace=False))
        order = rng.permutation(n)
        inputs[query_positions] = keys[order]
        targets = np.zeros(length, np.int32)
        targets[query_positions] = values[order]
        mask = np.zeros(length, np.float32)
        mask[query_positions] = 1
        return {"inputs": inputs, "targets": targets, "mask": mask}


def solve_mqar(inputs: np.ndarray, num_pairs: int) -> np.ndarray:
    """Targets [L] from inputs by looking each query up in the key-value prefix (0 elsewhere)."""
    table = dict(zip(inputs[0 : 2 * num_pairs : 2], inputs[1 : 2 * num_pairs : 2]))
    out = np.zeros_like(inputs)
    for t in range(2 * num_pairs, len(inputs)):
        if inputs[t] != 0:
            out[t] = table[inputs[t]]
    return out


# ----------------------------------------------------------------------------- adding problem
class Adding(GeneratedBuilder):
    """The adding problem: `inputs` [L, 2] with random values in [0, 1) (channel 0) and two
    markers (channel 1), one in each half; `target` (float32 scalar) is the sum of the two
    marked values. The constant predictor 1.0 has mean squared error 1/6.
    """

    DEFAULTS = {"seq_len": 200, **split_counts(10000, 1000, 1000)}

    def validate_config(self, cfg):
        if cfg["seq_len"] < 2:
            raise ValueError("seq_len must be >= 2")

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "inputs": tfds.features.Tensor(shape=(self.cfg["seq_len"], 2), dtype=np.float32),
                "target": tfds.features.Tensor(shape=(), dtype=np.float32),
            }
        )

    def _metadata(self):
        return {
            "seq_len": self.cfg["seq_len"],
            "input_dim": 2,
            "task": "regression",
            "baseline_mse": 1 / 6,
        }

    def example(self, rng, split):
        length = self.cfg["seq_len"]
        values = rng.random(length, dtype=np.float32)
        half = length // 2
        first, second = rng.integers(0, half), rng.integers(half, length)
        markers = np.zeros(length, np.float32)
        markers[[first, second]] = 1
        inputs = np.stack([values, markers], axis=-1)
        return {"inputs": inputs, "target": np.float32(values[first] + values[second])}


def solve_adding(inputs: np.ndarray) -> float:
    """Sum of the marked values of one example's inputs [L, 2]."""
    return float(np.sum(inputs[:, 0] * inputs[:, 1]))
