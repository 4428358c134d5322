#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test]"
export JAX_PLATFORMS=cpu
python3 -m pytest -n 2 -q tests "$@"
