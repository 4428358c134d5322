"""The run directory's config: a resumed run must be the same run, or say how to start over.

`<workdir>/config.json` keeps the config of the run in a workdir. Running again there with a
config that differs in what shapes the run (model, optimizer, data, seed, project) stops with
the differing keys named; changing how long to train, how often to log, evaluate and save, the
display or the device mesh resumes. `train.start_over=True` moves the old run's files aside into
a new folder (never overwriting one) and starts from step 0.
"""

import json
import os
import shutil

import jax

from lib.train import sharding as sharding_lib


class ConfigChangedError(ValueError):
    """The workdir holds a run made with another config; resuming it would mix the two."""


CONFIG_FILE = "config.json"
PREVIOUS_RUN = "previous_run"
# Config keys a resumed run may change: how long to train (extending a run), how often to log,
# evaluate and save, the display, the device mesh, and where the data lies. Anything else
# (model, optimizer, data, seed, project) stops the run. Entries ending in "." are prefixes.
RESUMABLE_KEYS = (
    "train.num_steps", "train.log_every", "train.eval_every", "train.eval_batches",
    "train.checkpoint_every", "train.keep_checkpoints", "train.async_checkpointing",
    "train.progress_bar", "train.plot", "train.start_over", "mesh.", "data.data_dir",
)  # fmt: skip


def config_dict(config) -> dict:
    """A ConfigDict (or dict) as the plain JSON-safe dict stored in `<workdir>/config.json`."""
    plain = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.loads(json.dumps(plain, default=str))


def write_config(workdir: str, config) -> None:
    """Write `<workdir>/config.json` (process 0; atomically, so no reader sees half a file)."""
    if jax.process_index() != 0:
        return
    path = os.path.join(workdir, CONFIG_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(config_dict(config), f, indent=2)
    os.replace(path + ".tmp", path)


def config_changes(stored: dict, current: dict) -> dict:
    """`{"a.b": (stored, current)}` for the keys outside `RESUMABLE_KEYS` that differ."""
    old, new = _flatten(stored), _flatten(current)
    missing = "<absent>"
    return {
        k: (old.get(k, missing), new.get(k, missing))
        for k in sorted(old.keys() | new.keys())
        if old.get(k, missing) != new.get(k, missing)
        and not any(k == r or (r.endswith(".") and k.startswith(r)) for r in RESUMABLE_KEYS)
    }


def check_config(workdir: str, config, *, start_over: bool = False) -> str | None:
    """Stop if `workdir` holds a run made with another config, or move that run aside.

    Args:
      workdir: the run's directory; its `config.json` is the config of the run there.
      config: the config about to be trained.
      start_over: when the configs differ, move every file of the old run into a new folder
        `<workdir>/previous_run_<n>` (a name never used before) instead of stopping.

    Returns:
      The folder the old run was moved to, or None.

    Raises:
      ConfigChangedError: the configs differ (outside `RESUMABLE_KEYS`) and not `start_over`.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        changes = config_changes(json.load(f), config_dict(config))
    if not changes:
        return None
    if not start_over:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in
                          [(k, *v) for k, v in list(changes.items())[:10]])  # fmt: skip
        raise ConfigChangedError(
            f"{workdir} holds a run with another config ({len(changes)} key(s) differ, "
            f"stored -> now: {shown}). Its checkpoints are left as they are. To resume it, "
            "rerun with its config; to start a new run, use a new --workdir, or pass "
            "--config.train.start_over=true to move the old run's files into "
            f"{workdir}/{PREVIOUS_RUN}_<n> and start from step 0."
        )
    return move_run_aside(workdir)


def move_run_aside(workdir: str) -> str:
    """Move every entry of `workdir` (earlier `previous_run_*` folders stay) into a new folder.

    Returns:
      The new folder, `<workdir>/previous_run_<n>` with the smallest unused `n`.
    """
    n = 1
    while os.path.exists(os.path.join(workdir, f"{PREVIOUS_RUN}_{n}")):
        n += 1
    dst = os.path.join(workdir, f"{PREVIOUS_RUN}_{n}")
    sharding_lib.sync_processes("move_run_aside_start")  # every process has read config.json
    if jax.process_index() == 0:
        os.makedirs(dst)  # raises rather than merge into a folder made meanwhile
        for name in sorted(os.listdir(workdir)):
            if not name.startswith(PREVIOUS_RUN + "_"):
                shutil.move(os.path.join(workdir, name), os.path.join(dst, name))
    sharding_lib.sync_processes("move_run_aside_done")
    return dst


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
