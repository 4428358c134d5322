"""Launch the AR-Net experiments (Triebe et al. 2019); see research/ar_net/README.md.

python -m launch.ar_net --config=research/ar_net/configs/default.py[:smoke] [--workdir=DIR]
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Run all three experiments of config `c`; returns table name -> rows."""
    from research.ar_net import experiment
    from research.ar_net.model import FitConfig

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


if __name__ == "__main__":
    main(run, "research/ar_net/configs/*.py[:smoke]", project="ar_net")
