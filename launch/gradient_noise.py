"""Launch the annealed-gradient-noise experiments (Neelakantan et al. 2015).

python -m launch.gradient_noise --config=research/gradient_noise/configs/default.py[:smoke]
    [--workdir=DIR]                                  (20-layer ReLU net from a poor init)
python -m launch.gradient_noise --config=research/gradient_noise/configs/multiplication.py[:smoke]
    [--workdir=DIR]                                  (binary multiplication, Neural GPU)
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Run the config's experiment over seeds; returns table name -> rows."""
    from research.gradient_noise.experiment import Restarts, noise_sweep
    from research.gradient_noise.multiplication import multiplication_sweep

    cfg = c.to_dict()
    experiment = cfg.pop("experiment", "deep_mlp")
    restarts = Restarts.pop_from(cfg)
    if experiment == "multiplication":
        cfg["etas"] = list(cfg["etas"])
        results = {"multiplication": multiplication_sweep(**cfg, restarts=restarts)}
    else:
        cfg["grid"] = {k: list(v) for k, v in cfg["grid"].items()}
        results = {"noise_sweep": noise_sweep(**cfg, restarts=restarts)}
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/gradient_noise/configs/*.py[:smoke]", project="gradient_noise")
