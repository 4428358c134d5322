"""Studies: many runs of one config (models x seeds x settings), each on the one training path.

A study is a list of variants, each a name and config overrides. Every variant, and every seed
of it, is trained by the caller's `run(config, workdir) -> final metrics` (the launcher's
`launch.train.run`: build the project, then `lib.train.loop.train_and_evaluate`) in its own
sub-workdir, so each run has the same outputs as a single run (progress bar, `metrics.jsonl`,
TensorBoard, `curves.png`, checkpoints) and a stopped study resumes run by run. The study
writes one row per run and one summary row per variant (mean, spread over seeds) to
`<workdir>/results.json` and `results.md`, and prints the table.

  rows = run_study(config, workdir, variants=[("gla", {"model.mixer": "gla"}),
                                              ("retnet", {"model.mixer": "retnet"})],
                   seeds=(0, 1, 2), run=launch.train.run, keys=("eval_accuracy",))
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence

import numpy as np


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a Markdown table (columns: all keys in first-seen order; a row missing
    a key gets an empty cell), floats to 3 significant digits."""
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def report(results: dict[str, list[dict]], workdir: str | None = None) -> str:
    """Print each named table; with `workdir`, also write `results.json` and `results.md` there.

    Args:
      results: table name -> rows.
      workdir: output folder (created), or None to only print.

    Returns:
      The Markdown text printed.
    """
    text = "\n\n".join(f"### {name}\n\n{markdown_table(rows)}" for name, rows in results.items())
    print(text, flush=True)
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=2, default=_jsonable)
        with open(os.path.join(workdir, "results.md"), "w") as f:
            f.write(text + "\n")
    return text


def summarize(rows: list[dict], keys: Sequence[str], by: str = "variant") -> list[dict]:
    """One row per value of `rows[i][by]`: the number of seeds and, for each of `keys`, the
    mean, the sample standard deviation (0 for one seed), the minimum and the maximum."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    out = []
    for name, group in groups.items():
        row = {by: name, "seeds": len(group)}
        for k in keys:
            vals = np.array([g[k] for g in group if _is_number(g.get(k))], dtype=np.float64)
            if vals.size == 0:
                continue
            row[f"{k}_mean"] = float(vals.mean())
            row[f"{k}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
            row[f"{k}_min"] = float(vals.min())
            row[f"{k}_max"] = float(vals.max())
        out.append(row)
    return out


def run_study(
    config,
    workdir: str,
    *,
    variants: Sequence[tuple[str, dict]],
    run: Callable[..., dict],
    seeds: Sequence[int] | None = None,
    keys: Sequence[str] = (),
    name: str = "study",
) -> list[dict]:
    """Train every variant (and seed) through `run`, each in `<workdir>/<variant>[/seed<s>]`.

    Args:
      config: the base ConfigDict; it is copied, never changed.
      workdir: the study's folder; `results.json` / `results.md` are written there.
      variants: `(name, overrides)` pairs; `overrides` maps dotted config keys to values
        (e.g. `{"model.mixer": "gla"}`). A name must be a valid folder name.
      run: `run(config, workdir) -> dict` of final metrics (e.g. `launch.train.run`).
      seeds: seeds to run each variant with (sets `config.seed`); None: the config's own seed.
      keys: metric keys summarized over seeds (mean, std, min, max) in the `summary` table.
      name: the name of the table of runs.

    Returns:
      One row per run: `variant`, `seed`, and the run's final metrics.
    """
    if not variants:
        raise ValueError("run_study: `variants` is empty")
    names = [v for v, _ in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"run_study: variant names repeat: {names}")
    for v in names:
        if not v or os.sep in v or v.startswith("."):
            raise ValueError(f"run_study: variant name {v!r} is not a folder name")
    rows = []
    for variant, overrides in variants:
        for seed in seeds if seeds is not None else (None,):
            c = config.copy_and_resolve_references()
            for key, value in overrides.items():
                set_field(c, key, value)
            sub = os.path.join(workdir, variant)
            if seed is not None:
                c.seed = int(seed)
                sub = os.path.join(sub, f"seed{seed}")
            metrics = run(c, sub)
            row = {"variant": variant, "seed": int(c.seed)}
            row.update({k: v for k, v in metrics.items() if _is_number(v) or isinstance(v, str)})
            rows.append(row)
            print(f"[{variant} seed {c.seed}] " + _brief(row, keys), flush=True)
    tables = {name: rows}
    if keys:
        tables["summary"] = summarize(rows, keys)
    report(tables, workdir)
    return rows


def set_field(config, key: str, value) -> None:
    """Set the dotted `key` (e.g. "model.mixer") of a ConfigDict to a Python value.

    Raises:
      KeyError: a part of `key` is not a field (the message names the field and the options).
      TypeError: the value's type does not fit the field (ConfigDict's own check).
    """
    *parents, leaf = key.split(".")
    node = config
    for i, part in enumerate(parents):
        if part not in node:
            raise KeyError(
                f"{'.'.join(parents[: i + 1])!r} is not a config field; has {sorted(node)}"
            )
        node = node[part]
    if leaf not in node:
        raise KeyError(
            f"{key!r} is not a config field; {'.'.join(parents) or 'the config'} has {sorted(node)}"
        )
    node[leaf] = value


def _brief(row: dict, keys: Sequence[str]) -> str:
    shown = keys or [k for k in row if k.startswith(("eval_", "test_"))][:4]
    return "  ".join(f"{k}={row[k]:.4g}" for k in shown if _is_number(row.get(k)))


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool) and math.isfinite(v)


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
