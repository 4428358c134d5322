"""Registry of the data sets in lib/data: names, preparation, metadata and on-disk state.

Each name maps either to a builder class ("module:Class", imported lazily so that listing data
sets stays cheap), prepared once into `data_dir/<name>/<version>/` as array_record files, or to
a *view*: a stored data set read through a transform (e.g. `smnist` reads `mnist` as a pixel
sequence), which shares the stored files of its base.
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
    "shakespeare_bpe": "lib.data.shakespeare:ShakespeareBpe",
    "kjv_char": "lib.data.corpora:KjvChar",
    "kjv_bpe": "lib.data.corpora:KjvBpe",
    "austen_char": "lib.data.corpora:AustenChar",
    "austen_bpe": "lib.data.corpora:AustenBpe",
    "selective_copying": "lib.data.synthetic:SelectiveCopying",
    "induction_heads": "lib.data.synthetic:InductionHeads",
    "mqar": "lib.data.synthetic:Mqar",
    "adding": "lib.data.synthetic:Adding",
    "algorithmic_copy": "lib.data.algorithmic:AlgorithmicCopy",
    "algorithmic_reverse": "lib.data.algorithmic:AlgorithmicReverse",
    "algorithmic_addition": "lib.data.algorithmic:AlgorithmicAddition",
    "algorithmic_multiplication": "lib.data.algorithmic:AlgorithmicMultiplication",
    "digits": "lib.data.images:Digits",
    "mnist": "lib.data.images:Mnist",
    "fashion_mnist": "lib.data.images:FashionMnist",
    "ar_process": "lib.data.dynamics:ArProcess",
    "lorenz96": "lib.data.dynamics:Lorenz96",
    "kuramoto_sivashinsky": "lib.data.dynamics:KuramotoSivashinsky",
    "burgers": "lib.data.dynamics:Burgers",
    "heat": "lib.data.dynamics:Heat",
    "sudoku": "lib.data.puzzles:Sudoku",
    "maze": "lib.data.puzzles:Maze",
    "scan_simple": "lib.data.scan:ScanSimple",
    "scan_length": "lib.data.scan:ScanLength",
    "scan_add_jump": "lib.data.scan:ScanAddJump",
    "moving_digits": "lib.data.video:MovingDigits",
    "sunspots": "lib.data.timeseries:Sunspots",
    "co2": "lib.data.timeseries:Co2",
    "spoken_digits": "lib.data.speech:SpokenDigits",
    "spoken_keywords": "lib.data.speech:SpokenKeywords",
    "speech_mixtures": "lib.data.speech:SpeechMixtures",
    "karate_club": "lib.data.graphs:KarateClub",
    "sbm": "lib.data.graphs:Sbm",
}

_UCR = {
    "ucr_gunpoint": "UcrGunpoint",
    "ucr_italy_power_demand": "UcrItalyPowerDemand",
    "ucr_arrowhead": "UcrArrowhead",
    "ucr_osuleaf": "UcrOsuleaf",
    "ucr_acsf1": "UcrAcsf1",
    "ucr_japanese_vowels": "UcrJapaneseVowels",
    "ucr_basic_motions": "UcrBasicMotions",
}
_BUILDERS.update({name: f"lib.data.timeseries:{cls}" for name, cls in _UCR.items()})

# view name -> (base data set, "module:Class" with `postprocess(example, metadata)` and
# `update_metadata(metadata) -> metadata`).
_VIEWS: dict[str, tuple[str, str]] = {}
for _base in ("digits", "mnist", "fashion_mnist"):
    for _kind, _cls in (
        ("seq", "Sequential"),
        ("perm", "Permuted"),
        ("rate", "RateCoded"),
        ("latency", "LatencyCoded"),
        ("saccade", "Saccades"),
    ):
        _VIEWS[f"{_base}_{_kind}"] = (_base, f"lib.data.image_views:{_cls}")
for _base in ("spoken_digits", "spoken_keywords"):
    _VIEWS[f"{_base}_mel"] = (_base, "lib.data.audio_features:LogMel")
    _VIEWS[f"{_base}_spikes"] = (_base, "lib.data.audio_features:CochlearSpikes")
_VIEWS["smnist"] = ("mnist", "lib.data.image_views:Sequential")
_VIEWS["psmnist"] = ("mnist", "lib.data.image_views:Permuted")


class DatasetNotPreparedError(FileNotFoundError):
    """Raised when a data set is read before `python -m lib.data prepare NAME` has run."""


def register(name: str, target: str) -> None:
    """Adds a builder `"module:Class"` under `name` (for data sets defined outside lib/data)."""
    if name in _BUILDERS and _BUILDERS[name] != target:
        raise ValueError(f"data set {name!r} is already registered as {_BUILDERS[name]}")
    _BUILDERS[name] = target


def register_view(name: str, base: str, target: str) -> None:
    """Adds a view `name` that reads the stored data set `base` through `"module:Class"`."""
    if base not in _BUILDERS:
        raise KeyError(f"unknown base data set {base!r}")
    _VIEWS[name] = (base, target)


def list_datasets() -> list[str]:
    """Names of all registered data sets (builders and views), sorted."""
    return sorted([*_BUILDERS, *_VIEWS])


def default_data_dir() -> Path:
    """$BRAINSEQ_DATA_DIR if set, else ~/.cache/brainseq/data."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "brainseq" / "data"


def resolve_data_dir(data_dir=None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def _import(target: str):
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def storage_name(name: str) -> str:
    """The data set whose files `name` reads: its base for a view, else `name` itself."""
    if name in _VIEWS:
        return _VIEWS[name][0]
    if name not in _BUILDERS:
        raise KeyError(f"unknown data set {name!r}; known data sets: {', '.join(list_datasets())}")
    return name


def builder_class(name: str):
    """The builder class that stores `name` (a view's base builder; imports its module)."""
    return _import(_BUILDERS[storage_name(name)])


def view_class(name: str):
    """The view class of `name`, or None when `name` is a plain builder."""
    return _import(_VIEWS[name][1]) if name in _VIEWS else None


def _version_dir(name: str, data_dir) -> Path:
    base = storage_name(name)
    return resolve_data_dir(data_dir) / base / str(builder_class(base).VERSION)


def version_dir(name: str, data_dir=None) -> Path:
    """The folder of the prepared files that `name` reads."""
    return _version_dir(name, data_dir)


def prepare_command(name: str, data_dir=None) -> str:
    """The shell command that prepares `name` (into `data_dir` when one is given)."""
    cmd = f"python -m lib.data prepare {name}"
    if data_dir is not None:
        cmd += f" --data_dir {resolve_data_dir(data_dir)}"
    return cmd


def is_prepared(name: str, data_dir=None) -> bool:
    """True when the array_record files and dataset_info.json that `name` reads exist."""
    path = _version_dir(name, data_dir)
    return (path / "dataset_info.json").exists() and any(path.glob("*.array_record*"))


def size_bytes(name: str, data_dir=None) -> int:
    """Bytes on disk of the prepared files (0 when not prepared)."""
    path = _version_dir(name, data_dir)
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _stored_metadata(name: str, data_dir) -> dict[str, Any]:
    path = _version_dir(name, data_dir) / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def check_prepared(name: str, data_dir=None) -> None:
    """Raises DatasetNotPreparedError, naming the exact command, when `name` is not prepared."""
    storage_name(name)  # Unknown names raise KeyError first.
    if not is_prepared(name, data_dir):
        raise DatasetNotPreparedError(
            f"data set {name!r} is not prepared in {resolve_data_dir(data_dir)}. "
            f"Prepare it with:\n    {prepare_command(name, data_dir)}"
        )


def prepare(name: str, data_dir=None, *, overwrite: bool = False, **builder_kwargs) -> Path:
    """Builds the array_record files of `name` (of its base, for a view).

    Args:
      name: a registered data set name (see `list_datasets()`).
      data_dir: root folder; defaults to `default_data_dir()`.
      overwrite: rebuild even if a prepared copy exists (needed to change its options).
      **builder_kwargs: the builder's options (e.g. `seq_len=256`); see its `DEFAULTS`.

    Returns:
      The folder holding the prepared version.
    """
    base = storage_name(name)
    cls = builder_class(base)
    root = resolve_data_dir(data_dir)
    builder = cls(data_dir=str(root), **builder_kwargs)
    path = _version_dir(base, root)
    if is_prepared(base, root) and not overwrite:
        stored = _stored_metadata(base, root).get("config")
        ignore = set(getattr(cls, "LOCATION_KEYS", ()))
        changed = {
            k: (stored.get(k), v)
            for k, v in builder.cfg.items()
            # A key added to a builder after a copy was prepared counts as its default.
            if stored is not None and k not in ignore and stored.get(k, cls.DEFAULTS.get(k)) != v
        }
        if changed:
            raise ValueError(
                f"data set {base!r} in {root} was prepared with other options "
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
      `config`, `source`) plus `splits` (split name -> number of examples), `name`, `version`;
      a view updates it (e.g. `seq_len`) and adds `view_of`.
    """
    check_prepared(name, data_dir)
    path = _version_dir(name, data_dir)
    stored = json.loads((path / "dataset_info.json").read_text())
    splits = {
        s["name"]: int(sum(int(n) for n in s.get("shardLengths", ["0"])))
        for s in stored.get("splits", [])
    }
    base = storage_name(name)
    meta = {
        **_stored_metadata(name, data_dir),
        "name": name,
        "version": str(builder_class(base).VERSION),
        "splits": splits,
    }
    view = view_class(name)
    if view is not None:
        meta = {**view.update_metadata(meta), "view_of": base}
    return meta


def format_size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""
