"""Launch the AR-Net experiments (Triebe et al. 2019); see research/ar_net/README.md.

python -m launch.ar_net --config=research/ar_net/configs/default.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report
from research.ar_net import experiment
from research.ar_net.model import FitConfig


def run(c, workdir=None) -> dict:
    """Run all three experiments of config `c`; returns table name -> rows."""
    fit = FitConfig(**c.fit.to_dict())
    results = {
        "recovery": experiment.recovery(c.recovery_orders, c.seeds, c.length, fit, "l1"),
        "recovery_near_unit_root": experiment.recovery(
            c.hard_orders, c.seeds, c.length, fit, "roots"
        ),
        "order_selection": experiment.order_selection(
            c.true_p, c.model_p, c.sparsities, c.seeds, c.length, fit, c.order_tol, c.min_abs
        ),
        "fit_time": experiment.fit_time(c.timing_orders, c.timing_true_p, c.length, fit),
    }
    report(results, workdir)
    return results


def main():
    """Command-line entry: flags are defined here, not at import, so tests (and other scripts)
    can import `run` without absl flag clashes."""
    config = config_flags.DEFINE_config_file("config", None, "research/ar_net/configs/*.py")
    workdir = flags.DEFINE_string("workdir", None, "where results.json / results.md go")
    flags.mark_flags_as_required(["config"])
    app.run(lambda argv: run(config.value, workdir.value))


if __name__ == "__main__":
    main()
