"""Algorithmic string tasks with length splits (Universal Transformers, Dehghani et al. 2019;
Neural GPUs, Kaiser & Sutskever 2016): copy, reverse, decimal addition, binary multiplication.

An example is one decoder-only sequence `question SEP answer EOS`, as next-token `inputs` /
`targets` with the loss `mask` on the answer and EOS. Train and validation use operand lengths
in [min_len, train_max_len]; test uses (train_max_len, test_max_len] to measure length
generalization. Each split is padded (token 0) to the longest sequence it can hold.
"""

from __future__ import annotations

import numpy as np

from lib.data.base import GeneratedBuilder, sequence_features, split_counts

PAD, SEP, EOS, PLUS, TIMES = 0, 1, 2, 3, 4
DIGIT0 = 5  # token of digit d is DIGIT0 + d
SYMBOLS = {PAD: "_", SEP: "=", EOS: "$", PLUS: "+", TIMES: "*"}
TASKS = ("copy", "reverse", "addition", "multiplication")


def _digits(value: int, base: int) -> list[int]:
    out = []
    while True:
        value, r = divmod(value, base)
        out.append(r)
        if value == 0:
            return out[::-1]


def question_answer(task: str, operands, base: int, reverse_answer: bool):
    """Token lists (question, answer) for one example.

    Args:
      task: one of TASKS.
      operands: a digit list (copy, reverse) or a pair of ints (addition, multiplication).
      base: 10 for addition, 2 for multiplication; the alphabet size for copy / reverse.
      reverse_answer: write the answer least-significant digit first (arithmetic only).
    """
    if task in ("copy", "reverse"):
        q = [DIGIT0 + d for d in operands]
        return q, (q if task == "copy" else q[::-1])
    a, b = operands
    op, result = (PLUS, a + b) if task == "addition" else (TIMES, a * b)
    q = [DIGIT0 + d for d in _digits(a, base)] + [op] + [DIGIT0 + d for d in _digits(b, base)]
    ans = [DIGIT0 + d for d in _digits(result, base)]
    return q, (ans[::-1] if reverse_answer else ans)


def solve(task: str, inputs: np.ndarray, base: int, reverse_answer: bool = False) -> list[int]:
    """Reads the question off `inputs` (up to SEP) and computes the answer tokens + EOS."""
    sep = int(np.flatnonzero(inputs == SEP)[0])
    q = [int(t) for t in inputs[:sep]]
    if task in ("copy", "reverse"):
        ans = q if task == "copy" else q[::-1]
    else:
        op = PLUS if task == "addition" else TIMES
        i = q.index(op)
        a = int("".join(str(t - DIGIT0) for t in q[:i]), base)
        b = int("".join(str(t - DIGIT0) for t in q[i + 1 :]), base)
        value = a + b if op == PLUS else a * b
        ans = [DIGIT0 + d for d in _digits(value, base)]
        ans = ans[::-1] if reverse_answer else ans
    return ans + [EOS]


def detokenize(tokens, base: int = 10) -> str:
    """Human-readable text of tokens (digits as characters, '=' SEP, '$' EOS, '_' PAD)."""
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(
        SYMBOLS.get(int(t), chars[int(t) - DIGIT0] if t >= DIGIT0 else "?") for t in tokens
    )


class _Algorithmic(GeneratedBuilder, skip_registration=True):
    TASK = "copy"
    BASE = 10

    DEFAULTS = {
        "min_len": 1,
        "train_max_len": 10,
        "test_max_len": 20,
        "base": 0,  # 0: the task's default (10 copy/reverse/addition, 2 multiplication)
        "reverse_answer": False,
        **split_counts(10000, 1000, 1000),
    }

    @property
    def base(self) -> int:
        return self.cfg["base"] or self.BASE

    def validate_config(self, cfg):
        if not 1 <= cfg["min_len"] <= cfg["train_max_len"] < cfg["test_max_len"]:
            raise ValueError("need 1 <= min_len <= train_max_len < test_max_len")
        if not 2 <= (cfg["base"] or self.BASE) <= 36:
            raise ValueError("base must be in [2, 36]")

    def max_sequence(self, n: int) -> int:
        """Longest `question SEP answer EOS` for operand length n."""
        if self.TASK in ("copy", "reverse"):
            return 2 * n + 2
        answer = n + 1 if self.TASK == "addition" else 2 * n
        return 2 * n + 1 + 1 + answer + 1

    def split_length(self, split: str) -> int:
        top = self.cfg["test_max_len"] if split == "test" else self.cfg["train_max_len"]
        return self.max_sequence(top) - 1

    def _features(self):
        return sequence_features(None)

    def _metadata(self):
        return {
            "task": "sequence",
            "algorithm": self.TASK,
            "base": self.base,
            "vocab_size": DIGIT0 + self.base,
            "seq_len": self.split_length("train"),
            "test_seq_len": self.split_length("test"),
            "tokens": {
                "pad": PAD,
                "sep": SEP,
                "eos": EOS,
                "plus": PLUS,
                "times": TIMES,
                "digit0": DIGIT0,
            },
        }

    def _operands(self, rng, n):
        base = self.base
        if self.TASK in ("copy", "reverse"):
            return [int(d) for d in rng.integers(0, base, size=n)]

        # Digit by digit (no leading zero unless n == 1), so any length fits in a Python int.
        def number():
            digits = rng.integers(0, base, size=n)
            if n > 1:
                digits[0] = rng.integers(1, base)
            return int("".join("0123456789abcdefghijklmnopqrstuvwxyz"[d] for d in digits), base)

        return (number(), number())

    def example(self, rng, split):
        c = self.cfg
        lo, hi = (
            (c["train_max_len"] + 1, c["test_max_len"])
            if split == "test"
            else (c["min_len"], c["train_max_len"])
        )
        n = int(rng.integers(lo, hi + 1))
        q, ans = question_answer(self.TASK, self._operands(rng, n), self.base, c["reverse_answer"])
        seq = np.array(q + [SEP] + ans + [EOS], np.int32)
        length = self.split_length(split)
        inputs = np.full(length, PAD, np.int32)
        targets = np.full(length, PAD, np.int32)
        mask = np.zeros(length, np.float32)
        inputs[: len(seq) - 1] = seq[:-1]
        targets[: len(seq) - 1] = seq[1:]
        mask[len(q) : len(seq) - 1] = 1  # targets from the first answer token to EOS
        return {"inputs": inputs, "targets": targets, "mask": mask}


class AlgorithmicCopy(_Algorithmic):
    """Copy a random digit string (length splits)."""

    TASK = "copy"


class AlgorithmicReverse(_Algorithmic):
    """Reverse a random digit string (length splits)."""

    TASK = "reverse"


class AlgorithmicAddition(_Algorithmic):
    """Add two n-digit decimal numbers (length splits)."""

    TASK = "addition"


class AlgorithmicMultiplication(_Algorithmic):
    """Multiply two n-bit binary numbers (length splits)."""

    TASK = "multiplication"
    BASE = 2
