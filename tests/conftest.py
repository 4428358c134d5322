"""Test-wide setup, before JAX is imported: 8 simulated CPU devices (for sharding tests) and
fast XLA compiles.

Most tests compile small programs once and run them a few times, so compile time dominates the
suite: `--xla_backend_optimization_level=0` skips LLVM's optimizer and halves it (HMT's tests:
146 s -> 71 s), at the cost of slower execution. Either flag already set in `XLA_FLAGS` wins.

Modules with `slow` tests and tests/research are run first (see `pytest_collection_modifyitems`).

The few tests that train for many steps are execution-bound instead (GLA's MQAR claim: 62 s at
level 0, 30 s at level 2): mark them `@pytest.mark.xla_optimized` and they run in a child pytest
process compiled at level 2 (XLA flags are read once per process, so the switch needs a child).
"""

import os
import re
import subprocess
import sys

import pytest

CHILD_ENV = "BRAINSEQ_OPTIMIZED_CHILD"

flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:
    flags += " --xla_force_host_platform_device_count=8"
if "xla_backend_optimization_level" not in flags:
    flags += " --xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = flags.strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "xla_optimized: execution-bound test, run in a child pytest with XLA optimization level 2",
    )


def _run_in_optimized_child(item):
    """Runs `item` alone in a child pytest whose XLA compiles at optimization level 2."""
    env = dict(os.environ, **{CHILD_ENV: "1"})
    level = re.sub(r"--xla_backend_optimization_level=\d+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = (level + " --xla_backend_optimization_level=2").strip()
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", item.nodeid]
    proc = subprocess.run(
        cmd, cwd=str(item.config.rootpath), env=env, capture_output=True, text=True
    )
    print(proc.stdout[-4000:])
    if proc.returncode != 0:  # includes 5: the child collected nothing
        pytest.fail(
            f"{item.nodeid} failed in its optimized child process (exit {proc.returncode}):\n"
            f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )


def _deselect_claims(config, items):
    """Without `-m`, `claim` tests are left out (they run with `bash scripts/test.sh --claims`)."""
    if config.option.markexpr or os.environ.get(CHILD_ENV):  # the child runs one chosen test
        return
    kept = [i for i in items if i.get_closest_marker("claim") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("claim")])
        items[:] = kept


def pytest_collection_modifyitems(config, items):
    """Modules with `slow` tests and the research projects' tests (end-to-end runs, compile
    heavy) run first (order within a module kept), so that under
    `pytest -n 2` the long tests are spread over both workers early and the short ones fill
    the end, instead of a long test finishing alone on one worker (they sat near the end in
    path order: tests/research). Then `xla_optimized` tests are routed to a child process."""
    _deselect_claims(config, items)
    first = {item.module.__name__ for item in items
             if item.get_closest_marker("slow") is not None
             or item.module.__name__.startswith("tests.research.")}  # fmt: skip
    items.sort(key=lambda item: item.module.__name__ not in first)  # stable
    if os.environ.get(CHILD_ENV):
        return
    for item in items:
        if item.get_closest_marker("xla_optimized") is not None:
            item.runtest = lambda item=item: _run_in_optimized_child(item)
