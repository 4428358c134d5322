"""The command line of every launcher: one config parser (`--config` with overrides, also from
a `--flagfile`), `--list`, `--dry_run`, usage errors without tracebacks, and exit codes.

Each test runs a launcher in a subprocess, as a user would; all but two stop before training
(under a second each).
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPYING = "research/baselines/configs/copying.py:gru,smoke"
AR_NET = "research/ar_net/configs/default.py:smoke"


def launch(module: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", f"launch.{module}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def usage_error(result) -> str:
    """The last line of a usage error: exit status 1, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_list_names_every_config_and_its_arg():
    result = launch("train", "--list")
    assert result.returncode == 0, result.stderr
    configs = [
        f"research/{p}/configs/{f}"
        for p in sorted(os.listdir(os.path.join(ROOT, "research")))
        if os.path.isdir(os.path.join(ROOT, "research", p, "configs"))
        for f in sorted(os.listdir(os.path.join(ROOT, "research", p, "configs")))
        if f.endswith(".py") and f != "__init__.py"
    ]
    assert len(configs) > 20
    for path in configs:
        assert path in result.stdout
    assert '`arg` is "<task>[,<model>][,smoke]"' in result.stdout  # hrm's documented arg


def test_dry_run_prints_the_resolved_config_and_trains_nothing(tmp_path):
    workdir = tmp_path / "run"
    result = launch(
        "train", f"--config={COPYING}", f"--workdir={workdir}", "--dry_run",
        "--config.model.dim=48", "--config.optimizer.learning_rate=3e-4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["model"]["dim"] == 48 and config["model"]["kind"] == "gru"
    assert config["optimizer"]["learning_rate"] == pytest.approx(3e-4)
    assert config["train"]["num_steps"] == 4  # the smoke config's value, not overridden
    assert not workdir.exists()


def test_flagfile_and_command_line_overrides_combine(tmp_path):
    flagfile = tmp_path / "run.flags"
    flagfile.write_text(f"--config={COPYING}\n--config.model.dim=40\n--config.train.num_steps=9\n")
    result = launch("train", f"--flagfile={flagfile}", "--config.train.num_steps=2", "--dry_run")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["model"]["dim"] == 40  # from the file
    assert config["train"]["num_steps"] == 2  # the command line comes after the file


def test_tuple_fields_are_overridden_from_the_command_line(tmp_path):
    """Sequences in configs are tuples (config_flags refuses to set a `list`: the AR-Net and
    self-normalizing configs' lists could not be overridden); tests/train/test_config.py sets
    every field of every project config this way."""
    config = tmp_path / "orders.py"
    config.write_text(
        "import ml_collections\n"
        "def get_config():\n"
        "    return ml_collections.ConfigDict({'orders': (3, 7), 'names': ('a',)})\n"
    )
    result = launch(
        "train", f"--config={config}", "--config.orders=(1, 2, 5)", "--config.names=('x', 'y')",
        "--dry_run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"orders": [1, 2, 5], "names": ["x", "y"]}


def test_unknown_key_names_the_nearest_one():
    result = launch("train", f"--config={COPYING}", "--config.model.dimm=3", "--dry_run")
    line = usage_error(result)
    assert "unknown config key 'model.dimm'" in line and "did you mean 'model.dim'" in line


def test_wrong_type_names_the_key_and_the_type():
    result = launch("train", f"--config={COPYING}", "--config.train.num_steps=2.5", "--dry_run")
    assert usage_error(result) == "config key 'train.num_steps' is int; cannot parse '2.5'"


def test_missing_workdir_and_unknown_flag_are_usage_errors():
    assert "--workdir is required" in usage_error(launch("train", f"--config={COPYING}"))
    line = usage_error(launch("train", f"--config={COPYING}", "--wokdir=/tmp/x"))
    assert "Unknown command line flag 'wokdir'" in line and "workdir" in line
    assert "config file 'missing.py' not found" in usage_error(
        launch("train", "--config=missing.py", "--workdir=/tmp/x")
    )


def test_a_successful_run_exits_0():
    """`app.run` used to hand `run`'s results dict to `sys.exit`: status 1 after success."""
    result = launch(
        "ar_net", f"--config={AR_NET}", "--config.train.num_steps=10", "--config.data.length=300",
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "### fit_time" in result.stdout


def test_missing_data_fails_with_the_prepare_command(tmp_path):
    """A data set that is not prepared: exit 1, the exact prepare command, no traceback."""
    empty = tmp_path / "data"
    result = launch(
        "train", f"--config={COPYING}", f"--workdir={tmp_path / 'run'}",
        f"--config.data.data_dir={empty}", timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"python -m lib.data prepare copying --data_dir {empty}" in result.stderr


def test_every_launcher_uses_the_shared_command_line():
    """Each launch/<name>.py ends in `launch._common.main` (one parser, --dry_run, --list, exit
    codes) and defines no config flag of its own."""
    import ast

    names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "launch")) if f.endswith(".py"))
    launchers = [n for n in names if not n.startswith("_")]
    assert len(launchers) >= 15
    for name in launchers:
        source = open(os.path.join(ROOT, "launch", f"{name}.py")).read()
        assert "from launch._common import main" in source, name
        assert "DEFINE_config_file" not in source and "app.run(" not in source, name
        calls = [
            n
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "main"
        ]
        assert len(calls) == 1, name


def test_changed_config_in_a_used_workdir_is_one_clear_error(tmp_path):
    """A workdir whose config.json differs in a model key: exit 1, the key and the way out
    named, no traceback, and the stored config left as it was."""
    from lib.train.config import load_config
    from lib.train.workdir import write_config

    stored = load_config(AR_NET)
    with stored.unlocked():
        stored.seed = stored.seed + 7
    write_config(str(tmp_path), stored)
    before = (tmp_path / "config.json").read_text()
    result = launch("train", f"--config={AR_NET}", f"--workdir={tmp_path}", timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "seed" in result.stderr and "start_over" in result.stderr, result.stderr[-2000:]
    assert (tmp_path / "config.json").read_text() == before
