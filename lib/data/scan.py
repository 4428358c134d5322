"""SCAN (Lake & Baroni 2018): navigation commands to action sequences, generated from the
task's grammar and interpretation, with the standard simple / length / add-jump splits.

All 20,910 commands are enumerated. Splits: `simple` (random 80/20), `length` (train on
action sequences of at most 22 actions, test on 24-48), `add_jump` (train on commands
without "jump" plus the primitive "jump", test on every other command with "jump").
Validation is a seeded 10 % of the training commands. An example is one decoder-only
sequence `command SEP actions EOS` (`inputs`/`targets`/`mask` on the actions), plus `source`
(command, padded) and `target_actions` (actions + EOS, padded) for encoder-decoder models.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import Builder

PAD, SEP, EOS = 0, 1, 2
WORDS = (
    "walk",
    "look",
    "run",
    "jump",
    "turn",
    "left",
    "right",
    "opposite",
    "around",
    "twice",
    "thrice",
    "and",
    "after",
)
ACTIONS = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")
VOCAB = ("<pad>", "<sep>", "<eos>", *WORDS, *ACTIONS)
TOKEN = {w: i for i, w in enumerate(VOCAB)}
MAX_COMMAND, MAX_ACTIONS = 9, 48
SPLITS = ("simple", "length", "add_jump")


def commands() -> list[str]:
    """Every command of the SCAN grammar, in a fixed order."""
    primitives = ["walk", "look", "run", "jump"]
    directions = ["left", "right"]
    verbs = (
        [f"{u} {d}" for u in primitives + ["turn"] for d in directions]
        + [
            f"{u} {m} {d}"
            for u in primitives + ["turn"]
            for m in ("opposite", "around")
            for d in directions
        ]
        + primitives
    )
    phrases = verbs + [f"{v} {r}" for v in verbs for r in ("twice", "thrice")]
    joined = [
        f"{a} {c} {b}" for a, b in itertools.product(phrases, phrases) for c in ("and", "after")
    ]
    return phrases + joined


def interpret(command: str) -> list[str]:
    """The action sequence of a command (SCAN's interpretation function)."""
    words = command.split()
    for conj in ("and", "after"):
        if conj in words:
            i = words.index(conj)
            a, b = interpret(" ".join(words[:i])), interpret(" ".join(words[i + 1 :]))
            return a + b if conj == "and" else b + a
    if words[-1] in ("twice", "thrice"):
        return interpret(" ".join(words[:-1])) * (2 if words[-1] == "twice" else 3)
    verb = words[0]
    act = [] if verb == "turn" else [f"I_{verb.upper()}"]
    if len(words) == 1:
        return act
    turn = [f"I_TURN_{words[-1].upper()}"]
    if len(words) == 2:
        return turn + act
    if words[1] == "opposite":
        return turn + turn + act
    return (turn + act) * 4  # around


def split_commands(split: str, seed: int = 0):
    """(train, test) command lists of a standard SCAN split."""
    cmds = commands()
    if split == "simple":
        order = np.random.default_rng([seed, 1]).permutation(len(cmds))
        cut = int(round(0.8 * len(cmds)))
        return [cmds[i] for i in order[:cut]], [cmds[i] for i in order[cut:]]
    if split == "length":
        lengths = {c: len(interpret(c)) for c in cmds}
        return [c for c in cmds if lengths[c] <= 22], [c for c in cmds if lengths[c] >= 24]
    if split == "add_jump":
        has_jump = lambda c: "jump" in c.split()
        return [c for c in cmds if not has_jump(c) or c == "jump"], [
            c for c in cmds if has_jump(c) and c != "jump"
        ]
    raise ValueError(f"unknown SCAN split {split!r}; choose from {SPLITS}")


def encode_example(command: str) -> dict[str, np.ndarray]:
    source = [TOKEN[w] for w in command.split()]
    actions = [TOKEN[a] for a in interpret(command)] + [EOS]
    return {"source": np.array(source, np.int32), "actions": np.array(actions, np.int32)}


class _Scan(Builder, skip_registration=True):
    SPLIT = "simple"
    DEFAULTS = {"validation_fraction": 0.1, "seed": 0, "max_examples": 0}
    SOURCE = "generated from the SCAN grammar (Lake & Baroni 2018)"

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "source": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                "actions": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            }
        )

    def _metadata(self):
        return {
            "task": "sequence",
            "scan_split": self.SPLIT,
            "vocab": list(VOCAB),
            "vocab_size": len(VOCAB),
            "seq_len": MAX_COMMAND + MAX_ACTIONS + 1,
            "max_command": MAX_COMMAND,
            "max_actions": MAX_ACTIONS + 1,
        }

    def _splits(self):
        train, test = split_commands(self.SPLIT, self.cfg["seed"])
        order = np.random.default_rng([self.cfg["seed"], 2]).permutation(len(train))
        n_val = int(round(self.cfg["validation_fraction"] * len(train)))
        if self.SPLIT == "add_jump":  # keep the one "jump" example in training
            order = [i for i in order if train[i] != "jump"] + [train.index("jump")]
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]]
        return {
            "train": self._examples(train),
            "validation": self._examples(val),
            "test": self._examples(test),
        }

    def _examples(self, cmds):
        limit = self.cfg["max_examples"]  # > 0: only the first examples (quick tests)
        for i, c in enumerate(cmds[:limit] if limit else cmds):
            yield i, encode_example(c)

    @classmethod
    def postprocess(cls, example, metadata):
        src, act = np.asarray(example["source"]), np.asarray(example["actions"])
        seq = np.concatenate([src, [SEP], act]).astype(np.int32)
        length = MAX_COMMAND + MAX_ACTIONS + 1  # inputs/targets: seq minus one token
        inputs = np.zeros(length, np.int32)
        targets = np.zeros(length, np.int32)
        mask = np.zeros(length, np.float32)
        inputs[: len(seq) - 1], targets[: len(seq) - 1] = seq[:-1], seq[1:]
        mask[len(src) : len(seq) - 1] = 1
        source = np.zeros(MAX_COMMAND, np.int32)
        source[: len(src)] = src
        target_actions = np.zeros(MAX_ACTIONS + 1, np.int32)
        target_actions[: len(act)] = act
        return {
            "inputs": inputs,
            "targets": targets,
            "mask": mask,
            "source": source,
            "target_actions": target_actions,
        }


class ScanSimple(_Scan):
    """SCAN, simple split (random 80 / 20 of all commands)."""

    SPLIT = "simple"


class ScanLength(_Scan):
    """SCAN, length split (train <= 22 actions, test >= 24)."""

    SPLIT = "length"


class ScanAddJump(_Scan):
    """SCAN, add-primitive-jump split (jump only as a primitive in training)."""

    SPLIT = "add_jump"


def decode(tokens) -> str:
    """Words / actions of token ids, stopping at EOS, skipping PAD."""
    out = []
    for t in np.asarray(tokens).reshape(-1):
        if t == EOS:
            break
        if t != PAD:
            out.append(VOCAB[int(t)])
    return " ".join(out)
