"""Train HMT (He et al., 2024) and its no-memory baselines on long character sequences and
compare test bits per character, overall and per segment position; see research/hmt/README.md.

  python -m lib.data prepare kjv_char
  python -m launch.hmt --config=research/hmt/configs/kjv.py:all --workdir=workdirs/hmt

Each variant trains with lib.train (`train_and_evaluate`) in `<workdir>/<variant>` (resumable);
the table goes to `<workdir>/results.md` and `results.json`. One variant alone also runs with
`python -m launch.train --config=research/hmt/configs/kjv.py:hmt --workdir=DIR`.
"""

import copy
import os
import time

from absl import flags

from launch._common import main
from launch._report import report

ALL = ("segment", "sensory", "hmt", "full")


def variant_config(config, name: str):
    """A copy of `config` set to variant `name`; from an "all" config, the variant keeps that
    config's widths, segment length, memory count and sensory length (where it uses them)."""
    from research.hmt.configs.kjv import VARIANTS

    if name not in ALL:
        raise ValueError(f"unknown variant {name!r}; expected one of {ALL}")
    c = copy.deepcopy(config)
    with c.unlocked():
        c.variant = name
        if config.variant == "all":
            m = config.model
            full = config.data.segment_len * config.data.num_segments
            c.model.segment_len = full if name == "full" else m.segment_len
            c.model.num_memories = m.num_memories if VARIANTS[name]["num_memories"] else 0
            c.model.sensory_len = m.sensory_len if VARIANTS[name]["sensory_len"] else 0
    return c


def run_variant(config, workdir: str) -> dict:
    """Train one variant; returns its result row (test bits/char overall and per segment)."""
    import jax

    from lib.train.loop import train_and_evaluate
    from lib.train.state import num_params
    from research.hmt.model import build

    start = time.time()
    built = build(config)
    result = train_and_evaluate(config, os.path.join(workdir, config.variant), **built)
    seconds = time.time() - start
    tokens = jax.numpy.zeros((1, config.data.segment_len * config.data.num_segments), "int32")
    shapes = jax.eval_shape(built["model"].init, jax.random.key(0), tokens)
    row = {
        "variant": config.variant,
        "segment_len": config.model.segment_len,
        "num_memories": config.model.num_memories,
        "sensory_len": config.model.sensory_len,
        "params": num_params(shapes),
        "steps": int(result["step"]),
        "seconds": round(seconds, 1),
        "test_bits": float(result["test_bits_per_token"]),
    }
    for n in range(config.data.num_segments):
        row[f"seg{n}"] = float(result[f"test_bits_seg{n}"])
    return row


def run(config, workdir: str, variants=None) -> list[dict]:
    """Run `config.variant` (or, for "all", each of `variants`, default `ALL`); report a table."""
    names = (variants or ALL) if config.variant == "all" else (config.variant,)
    rows = []
    for name in names:
        rows.append(run_variant(variant_config(config, name), workdir))
        print(rows[-1], flush=True)
        report({f"hmt_{config.data.name}": rows}, workdir)
    return rows


if __name__ == "__main__":
    _VARIANTS = flags.DEFINE_list(
        "variants", None, "with variant `all`: which ones (default all four)"
    )
    main(
        lambda config, workdir: run(config, workdir, _VARIANTS.value),
        "research/hmt/configs/kjv.py:<variant>",
        workdir_help="output folder (one subfolder per variant)",
        workdir_required=True,
        project="hmt",
    )
