"""The restart sweeps of Neelakantan et al. 2015 (Adding Gradient Noise...): which models and
noise levels train from which seeds, and the success counts over restarts.

A 20-layer ReLU net trained by plain SGD from a poor init (`configs/default.py`), and a small
Neural GPU on binary multiplication (`configs/multiplication.py`), each with and without
annealed gradient noise. `launch/gradient_noise.py` trains the variants through
`lib.train.fit.fit_study` (every noise level through one compiled fit, its restarts vmapped).
"""

import jax.numpy as jnp
import numpy as np

from research.gradient_noise.model import load_data, make_study_fit


def restart_summary(accuracy, final_loss, success_accuracy: float, name: str) -> dict:
    """Success count over restarts: `success_rate`, `successes` ("k/n"), the mean, best and
    std of `accuracy` (keys `{name}_mean`, ...), and `diverged` (non-finite final losses).

    Args:
      accuracy, final_loss: one value per restart.
    """
    acc, loss = np.asarray(accuracy, np.float64), np.asarray(final_loss)
    ok = acc >= success_accuracy
    return {
        "success_rate": float(ok.mean()),
        "successes": f"{int(ok.sum())}/{ok.size}",
        f"{name}_mean": float(acc.mean()),
        f"{name}_best": float(acc.max()),
        f"{name}_std": float(acc.std()),
        "diverged": int((~np.isfinite(loss)).sum()),
    }


def seeds(config) -> range:
    """The restarts: seeds `first_seed, ..., first_seed + seeds - 1` of `config.study`."""
    return range(config.study.first_seed, config.study.first_seed + config.study.seeds)


def variants(config) -> list:
    """One `lib.train.fit.Variant` per (init, eta) of `config.study.grid` (the deep net) or per
    eta of `config.study.etas` (the Neural GPU); `eta = 0` is no noise."""
    from lib.train.fit import Variant

    splits = load_data(config)
    if config.model.kind == "neural_gpu":
        fit = make_study_fit(config, splits)
        return [Variant(f"eta{eta:g}", fit, splits, {"eta": jnp.float32(eta)}, {"eta": eta})
                for eta in config.study.etas]  # fmt: skip
    out = []
    for init, etas in config.study.grid.items():
        c = config.copy_and_resolve_references()
        c.model.init_scheme = init
        fit = make_study_fit(c, splits)  # one compile per init, shared by its noise levels
        out += [Variant(f"{init}_eta{eta:g}", fit, splits, {"eta": jnp.float32(eta)},
                        {"init": init, "eta": float(eta)}) for eta in etas]  # fmt: skip
    return out


def _groups(rows, keys):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def sweep_table(config, rows: list[dict]) -> list[dict]:
    """The deep net's table: per (init, eta) the success rate (test accuracy >=
    `success_accuracy`), mean / best / std of test accuracy and the diverged restarts."""
    out = []
    for (init, eta), group in _groups(rows, ("init", "eta")).items():
        acc = [r["test_accuracy"] for r in group]
        loss = [r["final_loss"] for r in group]
        out.append({"dataset": config.data.name, "init": init, "eta": eta,
                    **restart_summary(acc, loss, config.study.success_accuracy, "test_acc")})  # fmt: skip
    return out


def multiplication_table(config, rows: list[dict]) -> list[dict]:
    """The Neural GPU's table: per eta, successes on the held-out (validation) pairs and on
    the training pairs (whole-tape accuracy >= `success_accuracy`), mean / best accuracies,
    the test (longer operands) success rate, and each restart's validation accuracy."""
    ok = config.study.success_accuracy
    out = []
    for (eta,), group in _groups(rows, ("eta",)).items():
        val = np.array([r["validation_sequence_accuracy"] for r in group])
        train = np.array([r["train_sequence_accuracy"] for r in group])
        test = np.array([r["test_sequence_accuracy"] for r in group])
        out.append({
            "eta": float(eta),
            **restart_summary(val, [r["final_loss"] for r in group], ok, "val_seq_acc"),
            "val_cell_acc_mean": float(np.mean([r["validation_cell_accuracy"] for r in group])),
            "train_seq_acc_mean": float(train.mean()),
            "train_seq_acc_best": float(train.max()),
            "train_successes": int(np.sum(train >= ok)),
            "test_success_rate": float(np.mean(test >= ok)),
            "test_seq_acc_mean": float(test.mean()),
            "test_seq_acc_best": float(test.max()),
            "per_seed_val_seq_acc": [round(float(v), 3) for v in val],
        })  # fmt: skip
    return out
