"""lib.data.arrays.EpochBatches: epochs of seeded permutations, a finite ordered pass with a
partial last batch, a position that resumes exactly, and clear errors."""

import numpy as np
import pytest

from lib.data.arrays import EpochBatches


def _arrays(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return {"inputs": x, "label": np.arange(n, dtype=np.int32)}


def test_epochs_are_fresh_permutations_of_one_seeded_generator():
    it = EpochBatches(_arrays(10), 3, seed=7)
    assert len(it) == 3  # 10 // 3 full batches; the last example of each epoch is skipped
    rng = np.random.default_rng(7)
    want = []
    for _ in range(3):
        order = rng.permutation(10)
        want += [order[i * 3 : (i + 1) * 3] for i in range(3)]
    got = [next(it) for _ in range(9)]
    for batch, idx in zip(got, want, strict=True):
        np.testing.assert_array_equal(batch["label"], idx)
        np.testing.assert_array_equal(batch["inputs"][:, 0], 2 * idx)  # fields stay aligned
    assert len({tuple(b["label"]) for b in got[:3]}) == 3  # epoch 0: disjoint batches


def test_one_ordered_pass_keeps_the_partial_last_batch():
    it = EpochBatches(_arrays(10), 4, shuffle=False, num_epochs=1, drop_remainder=False)
    labels = [b["label"].tolist() for b in it]
    assert labels == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    whole = list(EpochBatches(_arrays(5), 64, shuffle=False, num_epochs=1, drop_remainder=False))
    assert len(whole) == 1 and whole[0]["label"].tolist() == [0, 1, 2, 3, 4]


def test_resume_reads_the_same_batches_as_an_uninterrupted_run():
    straight = EpochBatches(_arrays(10), 3, seed=1)
    expected = [next(straight)["label"] for _ in range(8)]
    first = EpochBatches(_arrays(10), 3, seed=1)
    for _ in range(4):  # into the second epoch
        next(first)
    resumed = EpochBatches(_arrays(10), 3, seed=1)
    resumed.set_state(first.get_state())
    for want in expected[4:]:
        np.testing.assert_array_equal(next(resumed)["label"], want)
    with pytest.raises(ValueError, match="other settings"):
        EpochBatches(_arrays(10), 2, seed=1).set_state(first.get_state())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="same length"):
        EpochBatches({"a": np.zeros(3), "b": np.zeros(4)}, 1)
    with pytest.raises(ValueError, match="batch_size"):
        EpochBatches(_arrays(10), 11)
    with pytest.raises(ValueError, match="num_epochs"):
        EpochBatches(_arrays(10), 2, num_epochs=0)
