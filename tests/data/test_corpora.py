"""Tests of the text corpora: byte-level BPE, the KJV and Austen readers on small files in the
real formats (and on the Debian packages when installed), and the char/BPE data sets."""

import gzip
import os
import shutil
import struct
import zlib

import numpy as np
import pytest

import lib.data as data
from lib.data import corpora
from lib.data.bpe import BytePairTokenizer, chunks

TEXT = "the cat sat on the mat. the cat ate the rat! 123 + 45\n" * 20


def test_bpe_round_trip_and_merges():
    tok = BytePairTokenizer.train(TEXT, 300)
    assert 256 < tok.vocab_size <= 300
    # The first merge is the most frequent adjacent byte pair within chunks.
    counts = {}
    for c in chunks(TEXT):
        b = c.encode()
        for p in zip(b, b[1:]):
            counts[p] = counts.get(p, 0) + 1
    assert tok.merges[0] == max(counts, key=lambda p: (counts[p], (-p[0], -p[1])))
    ids = tok.encode(TEXT)
    assert len(ids) < len(TEXT.encode()) / 3 and tok.decode(ids) == TEXT
    other = "Ünïcödé, emoji 🙂 and\ttabs  — never seen in training\n"
    assert tok.decode(tok.encode(other)) == other
    assert "".join(chunks(other)) == other
    assert BytePairTokenizer.from_info({"bpe_merges": [list(m) for m in tok.merges]}) == tok


def test_bible_output_parser():
    out = "Ge1:1 In the beginning God created.\nGe1:2 And the earth.\n1Sm1:1 Now there was.\n"
    out += "SSol1:1 The song of songs.\nnoise line\n"
    books = corpora.parse_bible_output(out)
    assert books == {
        "Ge": "In the beginning God created.\nAnd the earth.",
        "1Sm": "Now there was.",
        "SSol": "The song of songs.",
    }
    with pytest.raises(ValueError, match="no verses"):
        corpora.parse_bible_output("nothing here")
    with pytest.raises(FileNotFoundError, match="apt-get install bible-kjv"):
        corpora.read_kjv("no-such-bible-program")


def _fake_austen_db(folder):
    """An R lazy-load database in the real format (gzip'd .rdx index, zlib'd .rdb blobs)."""
    rdata = pytest.importorskip("rdata")
    novels = {
        "emma": ["EMMA", "", "By Jane Austen", "Emma Woodhouse, handsome."],
        "persuasion": ["PERSUASION", "Sir Walter Elliot."],
    }
    blobs, index = b"", {}
    for name, lines in novels.items():
        path = folder / f"{name}.rds"
        rdata.write_rds(path, np.array(lines), compression=None)
        raw = path.read_bytes()
        blob = struct.pack(">I", len(raw)) + zlib.compress(raw)
        index[name] = np.array([len(blobs), len(blob)], np.int32)
        blobs += blob
    rdata.write_rds(
        folder / "index.rds",
        {"variables": index, "references": {}, "compressed": True},
        compression=None,
    )
    (folder / "Rdata.rdx").write_bytes(gzip.compress((folder / "index.rds").read_bytes()))
    (folder / "Rdata.rdb").write_bytes(blobs)
    return novels


def test_austen_reader_on_fake_lazyload_db(tmp_path):
    novels = _fake_austen_db(tmp_path)
    books = corpora.read_austen(tmp_path)
    assert list(books) == ["emma", "persuasion"]  # publication order
    assert books["emma"] == "\n".join(novels["emma"])
    with pytest.raises(FileNotFoundError, match="apt-get install r-cran-janeaustenr"):
        corpora.read_austen(tmp_path / "absent")


def test_austen_bpe_data_set(tmp_path):
    _fake_austen_db(tmp_path)
    data.prepare(
        "austen_bpe",
        tmp_path,
        root=str(tmp_path),
        seq_len=4,
        bpe_vocab_size=270,
        validation_fraction=0.25,
        test_fraction=0.25,
    )
    meta = data.info("austen_bpe", tmp_path)
    tok = data.tokenizer("austen_bpe", tmp_path)
    assert meta["tokenizer"] == "bpe" and tok.vocab_size == meta["vocab_size"] <= 270
    corpus = "EMMA\n\nBy Jane Austen\nEmma Woodhouse, handsome.\n\nPERSUASION\nSir Walter Elliot.\n"
    start, stop = meta["split_ranges"]["train"]
    # The tokenizer was trained on the train range only: retraining on it gives the same merges.
    assert BytePairTokenizer.train(corpus[start:stop], 270) == tok
    batch = next(data.load("austen_bpe", "test", batch_size=1, shuffle=False, data_dir=tmp_path))
    a, b = meta["split_ranges"]["test"]
    assert data.decode("austen_bpe", batch["inputs"][0], tmp_path) in corpus[a:b]


@pytest.mark.skipif(shutil.which("bible") is None, reason="Debian package bible-kjv not installed")
def test_real_kjv():
    books = corpora.read_kjv()
    assert len(books) == 66
    assert sum(t.count("\n") + 1 for t in books.values()) == 31102  # verses in the KJV
    assert books["Ge"].startswith("In the beginning God created the heaven and the earth.")


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir(corpora.AUSTEN_DIR), reason="Debian package r-cran-janeaustenr not installed"
)
def test_real_austen():
    pytest.importorskip("rdata")
    books = corpora.read_austen()
    assert list(books) == list(corpora.AUSTEN_NOVELS)
    assert books["prideprejudice"].startswith("PRIDE AND PREJUDICE")
    assert "It is a truth universally acknowledged" in books["prideprejudice"]
    assert 3_500_000 < sum(map(len, books.values())) < 4_500_000
