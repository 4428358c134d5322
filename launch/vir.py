"""Launch ViR (Vision Retention Networks, Hatamizadeh et al., 2023) vs ViT on images.

python -m launch.vir --config=research/vir/configs/{digits,mnist}.py[:smoke] [--workdir=DIR]
"""

from launch._report import main, report


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


if __name__ == "__main__":
    main(run, "research/vir/configs/*.py")
