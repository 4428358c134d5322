"""Tests of SCAN: the grammar's size and the standard split sizes from the paper, examples
from the paper, and the decoder-only / encoder-decoder encodings."""

import numpy as np

import lib.data as data
from lib.data import scan as S


def test_grammar_and_split_sizes_match_the_paper():
    cmds = S.commands()
    assert len(cmds) == len(set(cmds)) == 20910
    sizes = {split: tuple(map(len, S.split_commands(split))) for split in S.SPLITS}
    assert sizes == {"simple": (16728, 4182), "length": (16990, 3920), "add_jump": (13204, 7706)}
    assert "jump" in S.split_commands("add_jump")[0]  # the primitive alone is trained on
    lengths = [len(S.interpret(c)) for c in cmds]
    assert max(lengths) == 48 and max(len(c.split()) for c in cmds) == 9


def test_interpretation_examples():
    assert S.interpret("jump thrice") == ["I_JUMP"] * 3
    assert S.interpret("turn left twice") == ["I_TURN_LEFT"] * 2
    assert S.interpret("walk opposite right") == ["I_TURN_RIGHT", "I_TURN_RIGHT", "I_WALK"]
    assert S.interpret("turn around right") == ["I_TURN_RIGHT"] * 4
    assert S.interpret("look and run left") == ["I_LOOK", "I_TURN_LEFT", "I_RUN"]
    # The paper's Figure: "jump opposite left after walk around left".
    assert S.interpret("jump opposite left after walk around left") == (
        ["I_TURN_LEFT", "I_WALK"] * 4 + ["I_TURN_LEFT", "I_TURN_LEFT", "I_JUMP"]
    )


def test_add_jump_prepared_splits(build):
    meta, splits = build("scan_add_jump", max_examples=400)
    assert meta["splits"] == {"train": 400, "validation": 400, "test": 400}
    train_cmds = {S.decode(e["source"]) for e in splits["train"]}
    test_cmds = [S.decode(e["source"]) for e in splits["test"]]
    assert not any("jump" in c.split() for c in train_cmds - {"jump"})
    assert all("jump" in c.split() for c in test_cmds)
    val_cmds = {S.decode(e["source"]) for e in splits["validation"]}
    assert not (train_cmds & val_cmds) and not (train_cmds & set(test_cmds))
    for e in splits["test"][:200]:
        assert S.decode(e["actions"]).split() == S.interpret(S.decode(e["source"]))


def test_length_split_batches(tmp_path):
    data.prepare("scan_length", tmp_path, max_examples=128)
    meta = data.info("scan_length", tmp_path)
    batch = next(data.load("scan_length", "test", batch_size=64, data_dir=tmp_path))
    x, y, m = batch["inputs"], batch["targets"], batch["mask"]
    assert x.shape == y.shape == m.shape == (64, meta["seq_len"])
    assert batch["source"].shape == (64, 9) and batch["target_actions"].shape == (64, 49)
    for i in range(64):
        cmd = S.decode(batch["source"][i])
        actions = [S.TOKEN[a] for a in S.interpret(cmd)] + [S.EOS]
        assert len(actions) - 1 >= 24  # the length split's test side
        assert y[i][m[i] == 1].tolist() == actions
        np.testing.assert_array_equal(batch["target_actions"][i][: len(actions)], actions)
        n = len(cmd.split())
        assert x[i][n] == S.SEP and S.decode(x[i][:n]) == cmd
