"""Launch ViR (Vision Retention Networks, Hatamizadeh et al., 2023) vs ViT on images.

python -m launch.vir --config=research/vir/configs/{digits,mnist}.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report

_CONFIG = config_flags.DEFINE_config_file("config", None, "research/vir/configs/*.py")
_WORKDIR = flags.DEFINE_string("workdir", None, "where results.json / results.md go")


def run(c, workdir=None) -> dict:
    """Train every model in `c.models` on `c.data`; returns {c.data: rows} (printed, saved)."""
    from lib.train.classify import train_each
    from research.vir.model import train_images

    def train(name):
        cfg = c.copy_and_resolve_references()
        cfg.model = name
        return train_images(cfg)

    results = {c.data: train_each(c.models, train)}
    report(results, workdir)
    return results


def main(argv):
    del argv
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
