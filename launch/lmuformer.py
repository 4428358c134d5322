"""Launch LMUFormer (Liu et al., 2024): compare models (with the spiking twin), sweep sizes.

python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py[:smoke] [--workdir=DIR]
(configs: psdigits.py, sweep.py, keywords.py[:sweep]; `c.experiment` is "compare", "sweep" or
"keywords")
"""

from launch._common import main
from launch._report import report

_KEYS = ("num_params", "test_accuracy", "spike_rate", "train_loss", "seconds")


def run(c, workdir=None) -> dict:
    """Train every model in `c.models` (at every width in `c.dims` for a sweep); returns
    {table name: rows} (also printed and saved)."""
    from lib.train.classify import train_each
    from research.lmuformer.model import train_model

    def train(name, **overrides):
        cfg = c.copy_and_resolve_references()
        cfg.model = name
        cfg.update(overrides)
        return train_model(cfg)

    if c.experiment == "sweep":
        rows = []
        for name in c.models:
            for dim in c.dims:
                (row,) = train_each([name], lambda n, d=dim: train(n, dim=d), _KEYS)
                rows.append({"model": name, "dim": dim, **row})
        results = {f"{c.get('data', 'psdigits')}_sweep": rows}
    elif c.experiment in ("compare", "keywords"):
        results = {c.get("data", "psdigits"): train_each(c.models, train, _KEYS)}
    else:
        raise ValueError(f"unknown experiment {c.experiment!r}; expected compare, sweep, keywords")
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/lmuformer/configs/*.py", project="lmuformer")
