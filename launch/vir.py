"""Launch ViR (Vision Retention Networks, Hatamizadeh et al., 2023) vs ViT on images.

python -m launch.vir --config=research/vir/configs/{digits,mnist}.py[:smoke] [--workdir=DIR]
(`mnist.py:matched`: parameter-matched (ViR dim, ViT dim) pairs, see the config)
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Train every model in `c.models` on `c.data` (or, when `c.matched_dims` is set, ViR and
    ViT at each (ViR dim, ViT dim) pair); returns {table name: rows} (printed, saved)."""
    from lib.train.classify import train_each
    from research.vir.model import train_images

    def train(name, **overrides):
        cfg = c.copy_and_resolve_references()
        cfg.model = name
        cfg.update(overrides)
        return train_images(cfg)

    if c.get("matched_dims"):
        rows = []
        for vir_dim, vit_dim in c.matched_dims:
            for name, dim in (("vir", vir_dim), ("vit", vit_dim)):
                (row,) = train_each([name], lambda n, d=dim: train(n, dim=d))
                rows.append({"model": name, "dim": dim, **row})
        results = {f"{c.data}_matched": rows}
    else:
        results = {c.data: train_each(c.models, train)}
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/vir/configs/*.py", project="vir")
