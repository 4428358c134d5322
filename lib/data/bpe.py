"""Byte-level byte-pair encoding (Sennrich et al. 2016; byte-level as in GPT-2, Radford et al.
2019), trained on a training split, with exact round trips for any text.

Text is split into chunks (a word with its leading space, runs of digits, punctuation or
whitespace); merges never cross chunk boundaries. Ids 0..255 are bytes; id 256 + i is merge i.
"""

from __future__ import annotations

import collections
import dataclasses
import re

import numpy as np

_CHUNK = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]+|\s+")


def chunks(text: str) -> list[str]:
    """The pre-tokenization: concatenating the chunks gives back `text` exactly."""
    return _CHUNK.findall(text)


def _merge_word(word: tuple[int, ...], pair: tuple[int, int], new: int) -> tuple[int, ...]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class BytePairTokenizer:
    """A trained byte-level BPE: `merges[i]` is the pair of ids that id 256 + i replaces."""

    merges: tuple[tuple[int, int], ...]

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BytePairTokenizer:
        """Learns `vocab_size - 256` merges, most frequent pair first (ties: smallest pair).

        Args:
          text: the training text.
          vocab_size: total ids wanted (>= 256); training stops early when no pair repeats.
        """
        if vocab_size < 256:
            raise ValueError("vocab_size must be >= 256 (the byte alphabet)")
        words = collections.Counter(tuple(c.encode("utf-8")) for c in chunks(text))
        pairs: collections.Counter = collections.Counter()
        for word, n in words.items():
            for p in zip(word, word[1:]):
                pairs[p] += n
        merges = []
        while len(merges) < vocab_size - 256 and pairs:
            best = max(pairs.items(), key=lambda kv: (kv[1], (-kv[0][0], -kv[0][1])))
            if best[1] < 2:
                break
            pair, new = best[0], 256 + len(merges)
            merges.append(pair)
            changed = {}
            for word, n in words.items():
                if len(word) > 1 and pair[0] in word:
                    merged = _merge_word(word, pair, new)
                    if merged != word:
                        changed[word] = (merged, n)
            for word, (merged, n) in changed.items():
                for p in zip(word, word[1:]):
                    pairs[p] -= n
                    if pairs[p] <= 0:
                        del pairs[p]
                for p in zip(merged, merged[1:]):
                    pairs[p] += n
                del words[word]
                words[merged] = words.get(merged, 0) + n
        return cls(tuple(merges))

    @classmethod
    def from_info(cls, info: dict) -> BytePairTokenizer:
        """The tokenizer stored in a prepared data set's `info()` (key `bpe_merges`)."""
        return cls(tuple(tuple(p) for p in info["bpe_merges"]))

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def _ranks(self):
        return {p: i for i, p in enumerate(self.merges)}

    def encode(self, text: str) -> np.ndarray:
        """Token ids int32 [n] of `text`."""
        ranks = self._ranks()
        cache: dict[str, list[int]] = {}
        out: list[int] = []
        for chunk in chunks(text):
            if chunk not in cache:
                word = list(chunk.encode("utf-8"))
                while len(word) > 1:
                    pairs = [
                        (ranks.get(p, len(ranks)), i) for i, p in enumerate(zip(word, word[1:]))
                    ]
                    rank, i = min(pairs)
                    if rank == len(ranks):
                        break
                    word[i : i + 2] = [256 + rank]
                cache[chunk] = word
            out.extend(cache[chunk])
        return np.asarray(out, np.int32)

    def token_bytes(self) -> list[bytes]:
        """The byte string of every id."""
        table = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            table.append(table[a] + table[b])
        return table

    def decode(self, ids) -> str:
        """Text of token ids (invalid UTF-8 from a partial sequence is replaced)."""
        table = self.token_bytes()
        raw = b"".join(table[int(i)] for i in np.asarray(ids).reshape(-1))
        return raw.decode("utf-8", errors="replace")
