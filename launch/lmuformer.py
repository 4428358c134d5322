"""Launch LMUFormer (Liu et al., 2024) vs a Transformer on permuted sequential digits.

python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report

_CONFIG = config_flags.DEFINE_config_file("config", None, "research/lmuformer/configs/*.py")
_WORKDIR = flags.DEFINE_string("workdir", None, "where results.json / results.md go")


def run(c, workdir=None) -> dict:
    """Train every model in `c.models`; returns {"psdigits": rows} (also printed and saved)."""
    from research.lmuformer.model import train_psdigits

    rows = []
    for name in c.models:
        cfg = c.copy_and_resolve_references()
        cfg.model = name
        r = train_psdigits(cfg)
        rows.append({k: r[k] for k in ("train_loss", "test_accuracy", "num_params", "seconds")})
        rows[-1] = {"model": name, **rows[-1]}
    results = {"psdigits": rows}
    report(results, workdir)
    return results


def main(argv):
    del argv
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
