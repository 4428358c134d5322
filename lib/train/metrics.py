"""Metric logging: a JSON-lines log and TensorBoard event files in the workdir, and a PNG plot.

Rows of `metrics.jsonl` look like `{"step": 100, "split": "train", "loss": 1.9, ...}`; splits
are `train`, `eval` and `test`. TensorBoard files go to `<workdir>/tensorboard` (tensorboardX,
which needs no TensorFlow): `tensorboard --logdir <workdir>/tensorboard`.
"""

import json
import math
import os

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "curves.png"


class MetricsWriter:
    """Append metric rows to `metrics.jsonl` and TensorBoard (process 0 only; others no-op).

    Args:
      workdir: the run's directory.
      tensorboard: also write TensorBoard event files.
      truncate_after: drop rows with `step` greater than this (rows a killed run logged after
        its last checkpoint), so a resumed run's log has each step once.
    """

    def __init__(
        self, workdir: str, *, tensorboard: bool = True, truncate_after: int | None = None
    ):
        self.active = jax.process_index() == 0
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        if not self.active:
            return
        os.makedirs(workdir, exist_ok=True)
        if truncate_after is not None and os.path.exists(self.path):
            rows = [r for r in read_metrics(workdir) if r.get("step", 0) <= truncate_after]
            with open(self.path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
            except ImportError:  # optional: the JSON log is the record of truth
                self._tb = None

    def write(self, step: int, split: str, metrics: dict) -> None:
        """Log scalar `metrics` for `split` at `step`."""
        if not self.active:
            return
        row = {"step": int(step), "split": split}
        row.update({k: _scalar(v) for k, v in metrics.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("step", "split") and isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(f"{split}/{k}", v, int(step))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def _scalar(v):
    v = np.asarray(v)
    return float(v) if v.dtype.kind == "f" else int(v) if v.dtype.kind in "iub" else str(v)


def read_metrics(workdir: str, split: str | None = None) -> list[dict]:
    """The rows of `<workdir>/metrics.jsonl`, optionally only those of one split."""
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
    return [r for r in rows if split is None or r.get("split") == split]


def plot_curves(workdir: str, keys=("loss", "accuracy")) -> str | None:
    """Plot train/eval curves from `metrics.jsonl` to `<workdir>/curves.png` (matplotlib Agg).

    Returns:
      The PNG's path, or None when there is nothing to plot.
    """
    rows = read_metrics(workdir)
    keys = [k for k in keys if any(k in r for r in rows)]
    if not rows or not keys or jax.process_index() != 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        # Named evaluation sets are splits `eval_<name>` / `test_<name>` (lib.train.loop).
        styles = {"train": "-", "eval": "o-", "test": "s"}
        kind = lambda split: str(split).split("_")[0]  # noqa: E731
        splits = {r.get("split") for r in rows if key in r and kind(r.get("split")) in styles}
        for split in sorted(splits, key=lambda s: (list(styles).index(kind(s)), s)):
            pts = [(r["step"], r[key]) for r in rows if r.get("split") == split and key in r]
            x, y = zip(*pts)
            ax.plot(x, y, styles[kind(split)], label=split, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(workdir, PLOT_FILE)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
