"""Tests of the synthetic memory tasks: shapes, solver-checked labels, disjoint splits, seeds."""

import numpy as np
import pytest

from lib.data import synthetic

COUNTS = dict(num_train=48, num_validation=8, num_test=8)


def _assert_disjoint(splits, key="inputs"):
    seen = [{ex[key].tobytes() for ex in recs} for recs in splits.values()]
    assert sum(len(s) for s in seen) == sum(len(r) for r in splits.values())


def test_selective_copying(build):
    meta, splits = build("selective_copying", seq_len=40, num_tokens=6, vocab=5, **COUNTS)
    assert meta["seq_len"] == 46 and meta["vocab_size"] == 7
    for ex in splits["train"]:
        x, y, m = ex["inputs"], ex["targets"], ex["mask"]
        assert x.shape == (46,) and np.all(x[40:] == 6) and np.sum(x[:40] != 0) == 6
        np.testing.assert_array_equal(y[40:], synthetic.solve_selective_copying(x, 5))
        assert np.all(m[:40] == 0) and np.all(m[40:] == 1)
    _assert_disjoint(splits)


def test_induction_heads_with_length_extrapolation(build):
    meta, splits = build("induction_heads", seq_len=32, test_seq_len=96, vocab=8, **COUNTS)
    trigger = meta["trigger_token"]
    assert trigger == 9 and meta["test_seq_len"] == 96
    for split, recs in splits.items():
        for ex in recs:
            x, y, m = ex["inputs"], ex["targets"], ex["mask"]
            assert len(x) == (96 if split == "test" else 32)
            assert np.sum(x == trigger) == 2 and x[-1] == trigger
            assert y[-1] == synthetic.solve_induction_heads(x, trigger)
            assert m.sum() == 1 and m[-1] == 1
    _assert_disjoint(splits)


def test_mqar(build):
    meta, splits = build("mqar", seq_len=40, num_pairs=6, num_keys=20, num_values=20, **COUNTS)
    assert meta["vocab_size"] == 41
    for ex in splits["train"] + splits["test"]:
        x, y, m = ex["inputs"], ex["targets"], ex["mask"]
        keys = x[0:12:2]
        assert len(set(keys.tolist())) == 6 and np.all(keys <= 20) and np.all(x[1:12:2] > 20)
        np.testing.assert_array_equal(y, synthetic.solve_mqar(x, 6))
        assert m.sum() == 6 and np.all((m == 1) == (y != 0))
        assert sorted(x[m == 1].tolist()) == sorted(keys.tolist())
    _assert_disjoint(splits)


def test_adding(build):
    meta, splits = build("adding", seq_len=30, **COUNTS)
    assert meta["task"] == "regression"
    targets = []
    for ex in splits["train"]:
        x = ex["inputs"]
        assert x.shape == (30, 2) and x.dtype == np.float32
        marks = np.flatnonzero(x[:, 1])
        assert len(marks) == 2 and marks[0] < 15 <= marks[1]
        np.testing.assert_allclose(ex["target"], synthetic.solve_adding(x), rtol=1e-6)
        targets.append(float(ex["target"]))
    assert 0.5 < np.mean(targets) < 1.5


@pytest.mark.parametrize("name", ["selective_copying", "mqar"])
def test_seed_determines_data(build, name):
    opts = dict(seq_len=40, **COUNTS)
    _, a = build(name, subdir="a", **opts)
    _, b = build(name, subdir="b", **opts)
    _, c = build(name, subdir="c", seed=7, **opts)
    for x, y in zip(a["train"], b["train"]):
        np.testing.assert_array_equal(x["inputs"], y["inputs"])
    assert any(not np.array_equal(x["inputs"], y["inputs"]) for x, y in zip(a["train"], c["train"]))


def test_bad_options(tmp_path):
    import lib.data as data

    with pytest.raises(ValueError, match="num_pairs"):
        data.prepare("mqar", tmp_path, num_pairs=30, num_keys=10)
    with pytest.raises(ValueError, match="distinct"):
        data.prepare("induction_heads", tmp_path, seq_len=4, vocab=1, **COUNTS)
