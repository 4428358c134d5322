"""In-memory batches of generated tasks (`lib.data.stream`): the tasks' own examples, resumable,
fixed evaluation sets; stored windows cut shorter."""

import numpy as np
import pytest

from lib.data.stream import Rechunk, TaskBatches, finite_batches, task_builder, vocab_size
from lib.data.synthetic import solve_induction_heads, solve_selective_copying


def test_batches_are_the_tasks_examples():
    b = task_builder("selective_copying", seq_len=32, num_tokens=4, vocab=6)
    assert vocab_size(b) == 8  # blank, 6 data tokens, marker
    batch = next(TaskBatches(b, "train", 5, seed=1))
    assert batch["inputs"].shape == (5, 36) and batch["mask"].sum() == 5 * 4
    for x, y in zip(batch["inputs"], batch["targets"]):
        np.testing.assert_array_equal(y[-4:], solve_selective_copying(x, 6))
    ind = task_builder("induction_heads", seq_len=20, vocab=5)
    batch = next(TaskBatches(ind, "test", 3, seed=0))
    for x, y in zip(batch["inputs"], batch["targets"]):
        assert y[-1] == solve_induction_heads(x, trigger=6)


def test_stream_resumes_and_batches_split_examples_evenly():
    b = task_builder("mqar", seq_len=16, num_pairs=2, num_keys=4, num_values=4)
    it = TaskBatches(b, "train", 4, seed=3)
    next(it)
    state = it.get_state()
    want = [next(it) for _ in range(2)]
    again = TaskBatches(b, "train", 4, seed=3)
    again.set_state(state)
    for w in want:
        np.testing.assert_array_equal(next(again)["inputs"], w["inputs"])
    # One batch of 8 holds the examples of two batches of 4 (eval sets can be resized).
    big = next(TaskBatches(b, "train", 8, seed=3))["inputs"]
    small = TaskBatches(b, "train", 4, seed=3)
    np.testing.assert_array_equal(big, np.concatenate([next(small)["inputs"] for _ in range(2)]))
    other = next(TaskBatches(b, "validation", 4, seed=3))["inputs"]
    assert not np.array_equal(other, big[:4])  # splits draw different examples


def test_finite_batches_are_the_same_each_call():
    b = task_builder("copying", copy_len=5, lag=2, num_symbols=8)
    make = finite_batches(lambda: TaskBatches(b, "test", 2, seed=0), 3)
    first, second = list(make()), list(make())
    assert len(first) == 3
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x["inputs"], y["inputs"])


def test_rechunk_cuts_windows_and_keeps_the_position():
    class Stored:
        position = 0

        def __next__(self):
            self.position += 1
            x = np.arange(2 * 8).reshape(2, 8) + 100 * self.position
            return {"inputs": x, "targets": x + 1}

        def get_state(self):
            return self.position

        def set_state(self, s):
            self.position = s

    it = Rechunk(Stored(), 4, batch_size=3)
    batch = next(it)
    np.testing.assert_array_equal(batch["inputs"], [[100, 101, 102, 103], [104, 105, 106, 107],
                                                    [108, 109, 110, 111]])  # fmt: skip
    assert it.get_state() == 1
    with pytest.raises(ValueError, match="multiple of seq_len=3"):
        next(Rechunk(Stored(), 3))


def test_bad_tasks_are_errors():
    with pytest.raises(ValueError, match="unknown task"):
        task_builder("nope")
    with pytest.raises(ValueError, match="stored data set"):
        task_builder("shakespeare_char")
    with pytest.raises(TypeError, match="unknown option"):
        task_builder("mqar", length=3)
    with pytest.raises(ValueError, match="split"):
        TaskBatches(task_builder("mqar"), "dev", 2)
