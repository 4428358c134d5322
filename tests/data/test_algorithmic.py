"""Tests of the algorithmic string tasks: labels checked by an independent solver, length splits."""

import numpy as np
import pytest

from lib.data import algorithmic as alg

COUNTS = dict(num_train=40, num_validation=8, num_test=8)


def _operand_lengths(task, x):
    sep = int(np.flatnonzero(x == alg.SEP)[0])
    q = x[:sep]
    if task in ("copy", "reverse"):
        return len(q)
    op = alg.PLUS if task == "addition" else alg.TIMES
    i = int(np.flatnonzero(q == op)[0])
    assert i == len(q) - i - 1  # both operands have n digits
    return i


@pytest.mark.parametrize(
    "task,opts",
    [
        ("copy", {}),
        ("reverse", {}),
        ("addition", {"reverse_answer": True}),
        ("multiplication", {}),
    ],
)
def test_labels_and_length_splits(build, task, opts):
    meta, splits = build(f"algorithmic_{task}", train_max_len=5, test_max_len=8, **opts, **COUNTS)
    base = meta["base"]
    assert base == (2 if task == "multiplication" else 10)
    for split, recs in splits.items():
        for ex in recs:
            x, y, m = ex["inputs"], ex["targets"], ex["mask"]
            length = meta["test_seq_len"] if split == "test" else meta["seq_len"]
            assert x.shape == y.shape == m.shape == (length,)
            n = _operand_lengths(task, x)
            assert (6 <= n <= 8) if split == "test" else (1 <= n <= 5)
            # Next-token alignment, and the masked targets are exactly the solver's answer.
            valid = int(np.sum(y != alg.PAD))
            np.testing.assert_array_equal(x[1:valid], y[: valid - 1])
            expected = alg.solve(task, x, base, opts.get("reverse_answer", False))
            assert y[m == 1].tolist() == expected
            assert np.all(np.diff(np.flatnonzero(m)) == 1)  # one contiguous answer span
    seen = [{ex["inputs"].tobytes() for ex in recs} for recs in splits.values()]
    assert sum(map(len, seen)) == 56


def test_solver_matches_python_arithmetic():
    q, a = alg.question_answer("addition", (987, 45), 10, False)
    x = np.array(q + [alg.SEP] + a, np.int32)
    assert alg.detokenize(x) == "987+45=1032"
    assert alg.solve("addition", x, 10) == a + [alg.EOS]
    q, a = alg.question_answer("multiplication", (0b101, 0b111), 2, False)
    assert alg.detokenize(q + [alg.SEP] + a) == "101*111=100011"  # 5 * 7 = 35
