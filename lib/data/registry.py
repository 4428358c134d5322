"""Registry of the data sets in lib/data: names, preparation, metadata and on-disk state.

Each name maps to a builder class, imported lazily so that listing data sets stays cheap.
A builder is prepared once into `data_dir/<name>/<version>/` as array_record files.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

ENV_DATA_DIR = "BRAINSEQ_DATA_DIR"

# name -> "module:Class". Names equal the TFDS builder names (snake_case of the class name).
_BUILDERS: dict[str, str] = {
    "copying": "lib.data.copying:Copying",
    "shakespeare_char": "lib.data.shakespeare:ShakespeareChar",
    "selective_copying": "lib.data.synthetic:SelectiveCopying",
    "induction_heads": "lib.data.synthetic:InductionHeads",
    "mqar": "lib.data.synthetic:Mqar",
    "adding": "lib.data.synthetic:Adding",
    "algorithmic_copy": "lib.data.algorithmic:AlgorithmicCopy",
    "algorithmic_reverse": "lib.data.algorithmic:AlgorithmicReverse",
    "algorithmic_addition": "lib.data.algorithmic:AlgorithmicAddition",
    "algorithmic_multiplication": "lib.data.algorithmic:AlgorithmicMultiplication",
}


class DatasetNotPreparedError(FileNotFoundError):
    """Raised when a data set is read before `python -m lib.data prepare NAME` has run."""


def register(name: str, target: str) -> None:
    """Adds a builder `"module:Class"` under `name` (for data sets defined outside lib/data)."""
    if name in _BUILDERS and _BUILDERS[name] != target:
        raise ValueError(f"data set {name!r} is already registered as {_BUILDERS[name]}")
    _BUILDERS[name] = target


def list_datasets() -> list[str]:
    """Names of all registered data sets, sorted."""
    return sorted(_BUILDERS)


def default_data_dir() -> Path:
    """$BRAINSEQ_DATA_DIR if set, else ~/.cache/brainseq/data."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "brainseq" / "data"


def resolve_data_dir(data_dir=None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def builder_class(name: str):
    """The builder class registered under `name` (imports its module)."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown data set {name!r}; known data sets: {', '.join(list_datasets())}")
    module, cls = _BUILDERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def _version_dir(name: str, data_dir) -> Path:
    cls = builder_class(name)
    return resolve_data_dir(data_dir) / name / str(cls.VERSION)


def prepare_command(name: str, data_dir=None) -> str:
    """The shell command that prepares `name` (into `data_dir` when one is given)."""
    cmd = f"python -m lib.data prepare {name}"
    if data_dir is not None:
        cmd += f" --data_dir {resolve_data_dir(data_dir)}"
    return cmd


def is_prepared(name: str, data_dir=None) -> bool:
    """True when the array_record files and dataset_info.json of `name` exist."""
    path = _version_dir(name, data_dir)
    return (path / "dataset_info.json").exists() and any(path.glob("*.array_record*"))


def size_bytes(name: str, data_dir=None) -> int:
    """Bytes on disk of the prepared data set (0 when not prepared)."""
    path = _version_dir(name, data_dir)
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _stored_metadata(name: str, data_dir) -> dict[str, Any]:
    path = _version_dir(name, data_dir) / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def check_prepared(name: str, data_dir=None) -> None:
    """Raises DatasetNotPreparedError, naming the exact command, when `name` is not prepared."""
    builder_class(name)  # Unknown names raise KeyError first.
    if not is_prepared(name, data_dir):
        raise DatasetNotPreparedError(
            f"data set {name!r} is not prepared in {resolve_data_dir(data_dir)}. "
            f"Prepare it with:\n    {prepare_command(name, data_dir)}"
        )


def prepare(name: str, data_dir=None, *, overwrite: bool = False, **builder_kwargs) -> Path:
    """Builds the array_record files of `name`.

    Args:
      name: a registered data set name (see `list_datasets()`).
      data_dir: root folder; defaults to `default_data_dir()`.
      overwrite: rebuild even if a prepared copy exists (needed to change its options).
      **builder_kwargs: the builder's options (e.g. `seq_len=256`); see its `DEFAULTS`.

    Returns:
      The folder holding the prepared version.
    """
    cls = builder_class(name)
    root = resolve_data_dir(data_dir)
    builder = cls(data_dir=str(root), **builder_kwargs)
    path = _version_dir(name, root)
    if is_prepared(name, root) and not overwrite:
        stored = _stored_metadata(name, root).get("config")
        ignore = set(getattr(cls, "LOCATION_KEYS", ()))
        changed = {
            k: (stored.get(k), v)
            for k, v in builder.cfg.items()
            if stored is not None and k not in ignore and stored.get(k) != v
        }
        if changed:
            raise ValueError(
                f"data set {name!r} in {root} was prepared with other options "
                f"(stored, requested): {changed}. Pass overwrite=True (--overwrite) to rebuild, "
                "or use another data_dir."
            )
        return path
    if path.exists():
        shutil.rmtree(path)
    builder.download_and_prepare()
    return path


def info(name: str, data_dir=None) -> dict[str, Any]:
    """Task metadata of a prepared data set.

    Returns:
      A dict with the builder's metadata (e.g. `vocab_size`, `seq_len`, `num_classes`,
      `config`, `source`) plus `splits` (split name -> number of examples), `name`, `version`.
    """
    check_prepared(name, data_dir)
    path = _version_dir(name, data_dir)
    stored = json.loads((path / "dataset_info.json").read_text())
    splits = {
        s["name"]: int(sum(int(n) for n in s.get("shardLengths", ["0"])))
        for s in stored.get("splits", [])
    }
    meta = _stored_metadata(name, data_dir)
    return {**meta, "name": name, "version": str(builder_class(name).VERSION), "splits": splits}


def format_size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""
