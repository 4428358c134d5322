"""Config files, command-line overrides, and clear errors for unknown keys and wrong types."""

import os
import re
import textwrap

import pytest

from lib.train.config import load_config


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text(
        textwrap.dedent(
            """
            from lib.train.config import base_config

            def get_config(arg=None):
                c = base_config()
                c.model.dim = 32
                c.model.kind = arg or "gru"
                c.model.dropout = 0.1
                c.model.use_bias = True
                c.model.widths = (1, 2)
                return c
            """
        )
    )
    return str(path)


def test_overrides_are_parsed_to_the_field_type(config_file):
    c = load_config(
        config_file + ":lstm",
        [
            "--config.model.dim=64",
            "config.model.dropout=0",
            "model.use_bias=false",
            "--config.model.widths=(3, 4, 5)",
            "--config.optimizer.name=sgd",
            "--config.train.num_steps=7",
        ],
    )
    assert c.model.kind == "lstm"
    assert c.model.dim == 64 and isinstance(c.model.dim, int)
    assert c.model.dropout == 0.0 and isinstance(c.model.dropout, float)
    assert c.model.use_bias is False
    assert c.model.widths == (3, 4, 5)
    assert c.optimizer.name == "sgd" and c.train.num_steps == 7


def test_unknown_key_is_rejected_with_a_suggestion(config_file):
    with pytest.raises(
        KeyError, match=r"unknown config key 'model.dimm'.*did you mean 'model.dim'"
    ):
        load_config(config_file, ["--config.model.dimm=3"])
    with pytest.raises(KeyError, match="unknown config key 'nope.x'"):
        load_config(config_file, ["--config.nope.x=3"])


@pytest.mark.parametrize(
    "override, match",
    [
        ("model.dim=abc", "'model.dim' is int"),
        ("model.dim=2.5", "'model.dim' is int"),
        ("model.use_bias=maybe", "'model.use_bias' is a bool"),
        ("model.dropout=[1]", "'model.dropout' is float"),
        ("model=3", "'model' is a section"),
    ],
)
def test_wrong_type_is_rejected(config_file, override, match):
    with pytest.raises(TypeError, match=match):
        load_config(config_file, [override])


def test_malformed_override_and_missing_file(config_file, tmp_path):
    with pytest.raises(ValueError, match="must look like --config.a.b=value"):
        load_config(config_file, ["--config.model.dim"])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(str(tmp_path / "missing.py"))


def test_loaded_config_is_locked(config_file):
    c = load_config(config_file)
    with pytest.raises(AttributeError):
        c.model.new_field = 1


def test_list_and_untyped_none_fields_name_the_fix(tmp_path):
    """config_flags cannot set a list or an untyped None from the command line: the error says
    which key and what to write in the config file instead (a tuple, a typed placeholder)."""
    path = tmp_path / "lists.py"
    path.write_text(
        "import ml_collections\n"
        "def get_config():\n"
        "    return ml_collections.ConfigDict({'orders': [1, 2], 'clip': None, 'seeds': (0,)})\n"
    )
    with pytest.raises(TypeError, match="'orders' holds a list.*make it a tuple"):
        load_config(str(path), ["orders=(3,)"])
    with pytest.raises(TypeError, match="'clip' is None with no type.*placeholder"):
        load_config(str(path), ["clip=1.0"])
    assert load_config(str(path), ["seeds=(3, 4)"]).seeds == (3, 4)


def test_a_bad_config_arg_is_one_clean_line(config_file):
    """get_config's own error, restated with the spec and without config_flags' traceback."""
    bad = config_file.replace("cfg.py", "bad.py")
    with open(bad, "w") as f:
        f.write("def get_config(arg):\n    raise ValueError(f'unknown arg {arg!r}')\n")
    with pytest.raises(ValueError) as e:
        load_config(bad + ":xyz")
    assert str(e.value) == f"config {bad + ':xyz'!r}: unknown arg 'xyz'"


def test_every_project_config_field_can_be_overridden():
    """Each leaf of each project's config (default and smoke) goes through `--config.key=<value>`
    (config_flags rejects lists and untyped None; the configs use tuples and placeholders)."""
    import glob

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in sorted(glob.glob(os.path.join(root, "research/*/configs/*.py"))):
        if path.endswith("__init__.py"):
            continue
        for spec in (path, path + ":smoke"):
            try:
                config = load_config(spec)
            except ValueError:  # a config without a smoke variant
                continue
            leaves = _leaves(config)
            assert leaves, spec
            load_config(spec, [f"{k}={_as_text(v)}" for k, v in leaves])


def _leaves(config, prefix=""):
    out = []
    for key in config.keys():
        value = config[key]
        if hasattr(value, "keys") and hasattr(value, "get_type"):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append((prefix + key, value))
    return out


def _as_text(value):
    if value is None:  # a typed placeholder: any value of its type; check the key resolves
        return "0"
    return repr(value) if isinstance(value, tuple) else str(value)


def test_parse_arg_reads_choices_and_flags_in_any_order():
    from lib.train.config import parse_arg

    choices = {"data": (("lorenz96", "sunspots"), "lorenz96"), "variant": (("gru", "rnn"), "gru")}
    flags = ("matched", "smoke")
    assert parse_arg(None, choices, flags) == {
        "data": "lorenz96", "variant": "gru", "matched": False, "smoke": False,
    }  # fmt: skip
    words = parse_arg("smoke,sunspots,rnn+gru", choices, flags, joined=("variant",))
    assert words == {"data": "sunspots", "variant": "rnn+gru", "matched": False, "smoke": True}
    for bad in ("lstm", "gru,rnn", "rnn+gru", "smoke,smoke", "sunspots,lorenz96"):
        with pytest.raises(ValueError, match=re.escape(f"config arg '{bad}': expected one of")):
            parse_arg(bad, choices, flags)
    with pytest.raises(ValueError, match="smoke and long exclude each other"):
        parse_arg("long,smoke", flags=("smoke", "long"), exclusive=[("smoke", "long")])
    with pytest.raises(ValueError, match=r"expected any of \['smoke'\]"):
        parse_arg("smok", flags=("smoke",))


@pytest.mark.parametrize(
    "spec",
    [
        "ar_net/configs/default.py:full",
        "baselines/configs/copying.py:rnn",
        "deconstructing/configs/forecast.py:lorenz96,gru,gru",
        "hmt/configs/kjv.py:hmt,smoke,long",
        "self_normalizing/configs/default.py:smoke,ucr",
        "universal_transformer/configs/algorithmic.py:reverse,ut,huge",
        "vir/configs/mnist.py:cifar",
    ],
)
def test_a_bad_config_arg_names_what_it_may_be(spec):
    """Configs read `arg` with `parse_arg`: a word they do not know is an error, not ignored."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with pytest.raises(ValueError, match="config arg"):
        load_config(os.path.join(root, "research", spec))
