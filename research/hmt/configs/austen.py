"""HMT (He et al., 2024) on Jane Austen's six novels at character level (austen_char, 81
symbols, 3.6M training characters): the KJV configs (research/hmt/configs/kjv.py) on a second
corpus, so the no-memory comparison is not a property of one text.

  python -m lib.data prepare austen_char     # needs the Debian package r-cran-janeaustenr
  python -m launch.hmt --config=research/hmt/configs/austen.py:all,long --variants=hmt,segment \
      --workdir=workdirs/hmt/austen

`arg` as in kjv.py ("<variant>[,smoke|,long]"). Measured: research/hmt/README.md.
"""

import ml_collections

from research.hmt.configs import kjv


def get_config(arg: str = "hmt") -> ml_collections.ConfigDict:
    """kjv.get_config(arg) on austen_char."""
    return kjv.get_config(f"{arg or 'hmt'},austen")
