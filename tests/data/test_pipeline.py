"""Tests of the data registry, the grain pipeline and the copying task."""

import numpy as np
import pytest

import lib.data as data
from lib.data import registry
from lib.data.__main__ import main as cli_main
from lib.data.pipeline import data_source

SMALL = dict(copy_len=5, lag=7, num_symbols=4, num_train=64, num_validation=16, num_test=16)


@pytest.fixture(scope="module")
def copying_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("copying")
    data.prepare("copying", root, **SMALL)
    return root


def _records(name, split, root):
    src = data_source(name, split, data_dir=root)
    return [src[i] for i in range(len(src))]


def test_copying_examples_are_correct(copying_dir):
    meta = data.info("copying", copying_dir)
    assert meta["seq_len"] == 2 * 5 + 7 and meta["vocab_size"] == 4 + 2
    assert meta["splits"] == {"train": 64, "validation": 16, "test": 16}
    for ex in _records("copying", "train", copying_dir):
        x, y, m = ex["inputs"], ex["targets"], ex["mask"]
        assert x.shape == y.shape == m.shape == (17,)
        symbols = x[:5]
        assert np.all((symbols >= 1) & (symbols <= 4))
        # Blanks then the delimiter at the end of the lag, blanks during recall.
        np.testing.assert_array_equal(x[5:11], 0)
        assert x[11] == 5
        np.testing.assert_array_equal(x[12:], 0)
        np.testing.assert_array_equal(y[:12], 0)
        np.testing.assert_array_equal(y[12:], symbols)
        np.testing.assert_array_equal(m, (np.arange(17) >= 12).astype(np.float32))


def test_copying_splits_disjoint_and_deterministic(copying_dir, tmp_path):
    splits = {s: _records("copying", s, copying_dir) for s in ("train", "validation", "test")}
    keys = {s: {r["inputs"][:5].tobytes() for r in recs} for s, recs in splits.items()}
    assert sum(len(k) for k in keys.values()) == 64 + 16 + 16  # unique within and across
    data.prepare("copying", tmp_path / "again", **SMALL)
    again = _records("copying", "train", tmp_path / "again")
    for a, b in zip(splits["train"], again):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
    data.prepare("copying", tmp_path / "other", **{**SMALL, "seed": 1})
    other = {r["inputs"][:5].tobytes() for r in _records("copying", "train", tmp_path / "other")}
    assert other != keys["train"]


def test_load_batches_and_seeded_order(copying_dir):
    def first(seed, n=3):
        it = data.load("copying", "train", batch_size=8, seed=seed, data_dir=copying_dir)
        return [next(it)["inputs"] for _ in range(n)]

    batch = next(data.load("copying", "train", batch_size=8, data_dir=copying_dir))
    assert batch["inputs"].shape == (8, 17) and batch["inputs"].dtype == np.int32
    assert batch["mask"].dtype == np.float32
    a, b, c = first(0), first(0), first(1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_one_epoch_covers_every_example_once(copying_dir):
    it = data.load(
        "copying",
        "validation",
        batch_size=5,
        shuffle=False,
        num_epochs=1,
        drop_remainder=False,
        data_dir=copying_dir,
    )
    rows = np.concatenate([b["inputs"] for b in it])
    assert rows.shape == (16, 17)
    expected = np.stack([r["inputs"] for r in _records("copying", "validation", copying_dir)])
    np.testing.assert_array_equal(rows, expected)


def test_resume_from_state_matches_uninterrupted(copying_dir):
    kwargs = dict(batch_size=8, seed=3, data_dir=copying_dir)
    full = data.load("copying", "train", **kwargs)
    reference = [next(full)["inputs"] for _ in range(20)]  # crosses epoch boundaries (8/epoch)
    part = data.load("copying", "train", **kwargs)
    for _ in range(11):
        next(part)
    state = part.get_state()
    resumed = data.load("copying", "train", **kwargs)
    resumed.set_state(state)
    for i in range(11, 20):
        np.testing.assert_array_equal(next(resumed)["inputs"], reference[i])


def test_shards_are_disjoint(copying_dir):
    seen = []
    for index in range(2):
        it = data.load(
            "copying",
            "train",
            batch_size=4,
            num_epochs=1,
            shard_index=index,
            shard_count=2,
            data_dir=copying_dir,
        )
        seen.append({r.tobytes() for b in it for r in b["inputs"]})
    assert len(seen[0]) == len(seen[1]) == 32 and not seen[0] & seen[1]


def test_errors_are_clear(copying_dir, tmp_path):
    with pytest.raises(KeyError, match="known data sets"):
        data.info("no_such_set")
    with pytest.raises(data.DatasetNotPreparedError, match="python -m lib.data prepare copying"):
        data.load("copying", "train", batch_size=2, data_dir=tmp_path)
    with pytest.raises(TypeError, match="unknown option"):
        data.prepare("copying", tmp_path, bogus=1)
    with pytest.raises(TypeError, match="should be int"):
        data.prepare("copying", tmp_path, lag="7")
    with pytest.raises(ValueError, match="other options"):
        data.prepare("copying", copying_dir, **{**SMALL, "lag": 9})
    with pytest.raises(ValueError, match="no split"):
        data.load("copying", "dev", batch_size=2, data_dir=copying_dir)
    with pytest.raises(ValueError, match="fewer than one batch"):
        data.load("copying", "test", batch_size=64, data_dir=copying_dir)
    with pytest.raises(ValueError, match="distinct examples"):
        data.prepare("copying", tmp_path, copy_len=2, num_symbols=2)


def test_overwrite_rebuilds(tmp_path):
    data.prepare("copying", tmp_path, **SMALL)
    data.prepare("copying", tmp_path, overwrite=True, **{**SMALL, "lag": 3, "num_train": 32})
    meta = data.info("copying", tmp_path)
    assert meta["seq_len"] == 13 and meta["splits"]["train"] == 32


def test_cli_list_and_prepare(tmp_path, capsys):
    assert cli_main(["list", "--data_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in data.list_datasets():
        assert name in out
    assert "not prepared" in out
    args = ["prepare", "copying", "--data_dir", str(tmp_path)]
    args += ["--set", "num_train=16", "--set", "num_validation=4", "--set", "num_test=4"]
    assert cli_main(args) == 0
    assert registry.is_prepared("copying", tmp_path)
    capsys.readouterr()
    cli_main(["list", "--data_dir", str(tmp_path)])
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("copying "))
    assert "prepared" in line and "not" not in line and "KB" in line


def test_state_from_other_settings_is_rejected(copying_dir):
    a = data.load("copying", "train", batch_size=8, seed=0, data_dir=copying_dir)
    next(a)
    b = data.load("copying", "train", batch_size=8, seed=1, data_dir=copying_dir)
    with pytest.raises(ValueError, match="other settings"):
        b.set_state(a.get_state())
    c = data.load("copying", "train", batch_size=8, seed=0, data_dir=copying_dir)
    c.set_state(a.get_state().decode())  # str and dict states are accepted too
    np.testing.assert_array_equal(next(c)["inputs"], next(a)["inputs"])


def test_views_share_their_base(tmp_path):
    data.prepare("digits_seq", tmp_path)  # prepares its base, digits
    assert registry.is_prepared("digits", tmp_path) and registry.is_prepared(
        "digits_perm", tmp_path
    )
    meta = data.info("digits_seq", tmp_path)
    assert meta["view_of"] == "digits" and meta["seq_len"] == 64
    assert not list((tmp_path).glob("digits_seq*"))  # nothing stored under the view's name
