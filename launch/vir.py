"""Launch ViR (Vision Retention Networks, Hatamizadeh et al., 2023) vs ViT on images.

python -m launch.vir --config=research/vir/configs/{digits,mnist}.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report


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


def main():
    """Command-line entry: flags are defined here, not at import, so tests (and other launch
    scripts) can import `run` without absl flag clashes."""
    config = config_flags.DEFINE_config_file("config", None, "research/vir/configs/*.py")
    workdir = flags.DEFINE_string("workdir", None, "where results.json / results.md go")
    flags.mark_flags_as_required(["config"])

    def _main(argv):
        del argv
        run(config.value, workdir.value)  # returns the tables; app.run would exit with them

    app.run(_main)


if __name__ == "__main__":
    main()
