"""The copying memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016, uRNN).

Input:  `copy_len` random symbols, `lag` blanks with a delimiter at the last of them, then
`copy_len` blanks. Target: blanks everywhere except the last `copy_len` positions, which hold
the symbols. The loss mask is 1 on those last positions only (or everywhere with
`mask_all=True`). Tokens: 0 = blank, 1..num_symbols = symbols, num_symbols + 1 = delimiter.
"""

from __future__ import annotations

import numpy as np

from lib.data.base import GeneratedBuilder, sequence_features, split_counts


def copying_example(symbols: np.ndarray, lag: int, num_symbols: int, mask_all: bool = False):
    """One copying example from its symbols.

    Args:
      symbols: int array [copy_len] with values in 1..num_symbols.
      lag: blanks between the symbols and the recall phase (the delimiter is the last one).
      num_symbols: alphabet size (the delimiter token is num_symbols + 1).
      mask_all: count the loss at every position instead of only the recall phase.

    Returns:
      dict with `inputs`, `targets` int32 [2 * copy_len + lag] and `mask` float32.
    """
    n = len(symbols)
    length = 2 * n + lag
    inputs = np.zeros(length, np.int32)
    inputs[:n] = symbols
    inputs[n + lag - 1] = num_symbols + 1
    targets = np.zeros(length, np.int32)
    targets[n + lag :] = symbols
    mask = np.ones(length, np.float32) if mask_all else np.zeros(length, np.float32)
    mask[n + lag :] = 1.0
    return {"inputs": inputs, "targets": targets, "mask": mask}


class Copying(GeneratedBuilder):
    """Copying memory task: remember `copy_len` symbols across `lag` blank steps."""

    DEFAULTS = {
        "copy_len": 10,
        "lag": 100,
        "num_symbols": 8,
        "mask_all": False,
        **split_counts(10000, 1000, 1000),
    }
    SOURCE = "generated (seeded numpy)"

    def validate_config(self, cfg):
        if cfg["copy_len"] < 1 or cfg["lag"] < 1 or cfg["num_symbols"] < 1:
            raise ValueError(f"copy_len, lag and num_symbols must be >= 1: {cfg}")
        total = cfg["num_train"] + cfg["num_validation"] + cfg["num_test"]
        if total > cfg["num_symbols"] ** cfg["copy_len"]:
            raise ValueError(
                f"{total} distinct examples requested but only "
                f"{cfg['num_symbols']}**{cfg['copy_len']} exist"
            )

    @property
    def seq_len(self) -> int:
        return 2 * self.cfg["copy_len"] + self.cfg["lag"]

    def _features(self):
        return sequence_features(self.seq_len)

    def _metadata(self):
        c = self.cfg
        return {
            "seq_len": self.seq_len,
            "vocab_size": c["num_symbols"] + 2,
            "blank_token": 0,
            "delimiter_token": c["num_symbols"] + 1,
            "task": "sequence",
        }

    def example(self, rng, split):
        c = self.cfg
        symbols = rng.integers(1, c["num_symbols"] + 1, size=c["copy_len"]).astype(np.int32)
        return copying_example(symbols, c["lag"], c["num_symbols"], c["mask_all"])
