"""Test-wide setup, before JAX is imported: 8 simulated CPU devices (for sharding tests) and
fast XLA compiles.

Most tests compile small programs once and run them a few times, so compile time dominates the
suite: `--xla_backend_optimization_level=0` skips LLVM's optimizer and halves it (HMT's tests:
146 s -> 71 s), at the cost of slower execution (training-heavy claim tests run ~30% longer).
Either flag already set in `XLA_FLAGS` wins.
"""

import os

flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:
    flags += " --xla_force_host_platform_device_count=8"
if "xla_backend_optimization_level" not in flags:
    flags += " --xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = flags.strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
