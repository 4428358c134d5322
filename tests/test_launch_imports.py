"""Every launch script can be imported next to every other in one process.

Tests import launch modules' `run` functions, and pytest-xdist puts arbitrary test files in
one worker; absl raises DuplicateFlagError if two modules define `--config` at import time.
"""

import importlib
import pathlib

LAUNCH = pathlib.Path(__file__).resolve().parents[1] / "launch"


def test_all_launch_modules_import_together():
    names = sorted(p.stem for p in LAUNCH.glob("*.py") if p.stem != "__init__")
    assert "train" in names and len(names) > 5
    for name in names:
        module = importlib.import_module(f"launch.{name}")
        assert module.__doc__, f"launch/{name}.py needs a docstring with its command"
