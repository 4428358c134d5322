"""Launch ViR (Vision Retention Networks, Hatamizadeh et al., 2023) vs ViT on sklearn digits.

python -m launch.vir --config=research/vir/configs/digits.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report

_CONFIG = config_flags.DEFINE_config_file("config", None, "research/vir/configs/*.py")
_WORKDIR = flags.DEFINE_string("workdir", None, "where results.json / results.md go")


def run(c, workdir=None) -> dict:
    """Train every model in `c.models`; returns {"digits": rows} (also printed and saved)."""
    from research.vir.model import train_digits

    rows = []
    for name in c.models:
        cfg = c.copy_and_resolve_references()
        cfg.model = name
        r = train_digits(cfg)
        rows.append({k: r[k] for k in ("train_loss", "test_accuracy", "num_params", "seconds")})
        rows[-1] = {"model": name, **rows[-1]}
    results = {"digits": rows}
    report(results, workdir)
    return results


def main(argv):
    del argv
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
