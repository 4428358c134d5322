"""Launch the annealed-gradient-noise experiments (Neelakantan et al. 2015).

python -m launch.gradient_noise --config=research/gradient_noise/configs/default.py[:smoke]
    [--workdir=DIR]                                  (20-layer ReLU net from a poor init)
python -m launch.gradient_noise --config=research/gradient_noise/configs/multiplication.py[:smoke]
    [--workdir=DIR]                                  (binary multiplication, Neural GPU)
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report
from research.gradient_noise.experiment import Restarts, noise_sweep
from research.gradient_noise.multiplication import multiplication_sweep


def run(c, workdir=None) -> dict:
    """Run the config's experiment over seeds; returns table name -> rows."""
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


def main():
    """Command-line entry: flags are defined here, not at import, so tests (and other scripts)
    can import `run` without absl flag clashes."""
    config = config_flags.DEFINE_config_file("config", None, "research/gradient_noise/configs/*.py")
    workdir = flags.DEFINE_string("workdir", None, "where results.json / results.md go")
    flags.mark_flags_as_required(["config"])
    app.run(lambda argv: run(config.value, workdir.value))


if __name__ == "__main__":
    main()
