"""Config files, command-line overrides, and clear errors for unknown keys and wrong types."""

import textwrap

import pytest

from lib.train.config import apply_overrides, base_config, load_config


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


def test_apply_overrides_in_place():
    c = base_config()
    apply_overrides(c, ["optimizer.learning_rate=3e-4", "mesh.fsdp=2"])
    assert c.optimizer.learning_rate == pytest.approx(3e-4) and c.mesh.fsdp == 2
