"""Base TFDS builder for this codebase: config kwargs recorded in metadata, array_record output.

Every data set in `lib/data` subclasses `Builder`. A builder takes its configuration as plain
keyword arguments (checked against `DEFAULTS`), records them in `info.metadata["config"]` so a
prepared copy says how it was made, and may define `postprocess(example, metadata)` which the
pipeline applies to each example at read time (used to expand compact storage, e.g. a token
window into `inputs`/`targets`/`mask`).
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

FILE_FORMAT = "array_record"


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A `GeneratorBasedBuilder` configured by keyword arguments.

    Subclasses set `VERSION`, `DEFAULTS` (config name -> default value), `SOURCE` (where the
    data come from, one line), and implement `_features()`, `_metadata()` and `_splits()`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "First version."}
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    SOURCE: ClassVar[str] = "generated"
    # Options that say where to read the source (a local file), not what is built.
    LOCATION_KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, data_dir=None, variant: str | None = None, **kwargs):
        unknown = set(kwargs) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; "
                f"known options: {sorted(self.DEFAULTS)}"
            )
        self.config_kwargs = {**self.DEFAULTS, **kwargs}
        for key, value in self.config_kwargs.items():
            default = self.DEFAULTS[key]
            if default is not None and not isinstance(value, type(default)):
                if isinstance(default, float) and isinstance(value, int):
                    self.config_kwargs[key] = float(value)
                else:
                    raise TypeError(
                        f"{type(self).__name__}: option {key}={value!r} should be "
                        f"{type(default).__name__}"
                    )
        self.validate_config(self.config_kwargs)
        # A variant (options other than the defaults, kept beside the default copy) is a TFDS
        # builder config of that name: its files go to data_dir/<name>/<variant>/<version>.
        config = tfds.core.BuilderConfig(name=variant) if variant else None
        super().__init__(data_dir=data_dir, config=config, file_format=FILE_FORMAT)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's own lookup imports `importlib_resources`, which is not installed with it here.
        return epath.Path(inspect.getfile(cls))

    @property
    def cfg(self) -> dict[str, Any]:
        """The full configuration (defaults updated with the constructor's kwargs)."""
        return self.config_kwargs

    def validate_config(self, cfg: dict[str, Any]) -> None:
        """Raises ValueError on a bad configuration. Override to add checks."""

    @abc.abstractmethod
    def _features(self) -> tfds.features.FeaturesDict:
        """The stored features."""

    def _metadata(self) -> dict[str, Any]:
        """Task metadata known before generation (JSON-serializable)."""
        return {}

    @abc.abstractmethod
    def _splits(self) -> dict[str, Any]:
        """Split name -> iterator of (key, example)."""

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = {"config": dict(self.cfg), "source": self.SOURCE, **self._metadata()}
        return tfds.core.DatasetInfo(
            builder=self,
            description=(type(self).__doc__ or "").strip(),
            features=self._features(),
            metadata=tfds.core.MetadataDict(metadata),
            # Records stay in generation order (record i is example i); grain shuffles at read.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing is downloaded by tfds; sources are read in _splits.
        return self._splits()

    def _generate_examples(self, **kwargs):  # pragma: no cover - _splits returns iterators.
        raise NotImplementedError

    def update_metadata(self, **values) -> None:
        """Adds metadata learned while generating (e.g. a vocabulary read from the corpus)."""
        self.info.metadata.update(values)

    @classmethod
    def postprocess(cls, example: dict[str, np.ndarray], metadata: dict) -> dict[str, np.ndarray]:
        """Maps a stored example to what `lib.data.load` yields. Identity by default."""
        del metadata
        return example


def sequence_features(length: int, *, token_dtype=np.int32) -> tfds.features.FeaturesDict:
    """Features of a sequence task: `inputs`, `targets` [length] tokens and `mask` [length]."""
    return tfds.features.FeaturesDict(
        {
            "inputs": tfds.features.Tensor(shape=(length,), dtype=token_dtype),
            "targets": tfds.features.Tensor(shape=(length,), dtype=token_dtype),
            "mask": tfds.features.Tensor(shape=(length,), dtype=np.float32),
        }
    )


def split_rng(seed: int, split: str) -> np.random.Generator:
    """A generator for one split, independent of the others, fixed by (seed, split name)."""
    tag = int.from_bytes(split.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.default_rng([seed, tag])


class UniqueFilter:
    """Remembers example fingerprints so that splits never share an example."""

    def __init__(self):
        self._seen: set[bytes] = set()

    def add(self, *arrays: np.ndarray) -> bool:
        """Returns True (and remembers it) if the example is new, False if seen before."""
        key = b"|".join(np.ascontiguousarray(a).tobytes() for a in arrays)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


SPLITS = ("train", "validation", "test")


def split_counts(train: int, validation: int, test: int, seed: int = 0) -> dict[str, int]:
    """The DEFAULTS entries every generated builder has: examples per split and the seed."""
    return {"num_train": train, "num_validation": validation, "num_test": test, "seed": seed}


class GeneratedBuilder(Builder):
    """A builder whose examples come from a seeded generator, one example at a time.

    Subclasses implement `example(rng, split) -> dict` and may override `fingerprint` (the
    arrays that identify an example; splits never share a fingerprint when `UNIQUE`).
    `DEFAULTS` must include `split_counts(...)`.
    """

    UNIQUE: ClassVar[bool] = True

    @abc.abstractmethod
    def example(self, rng: np.random.Generator, split: str) -> dict[str, np.ndarray]:
        """One example of `split`, drawn with `rng`."""

    def fingerprint(self, example: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return (example["inputs"],)

    def _splits(self):
        # One filter shared by the splits, which TFDS generates in this fixed order.
        unique = UniqueFilter()
        return {
            split: self._generate(split, unique)
            for split in SPLITS
            if self.cfg.get(f"num_{split}", 0) > 0
        }

    def _generate(self, split, unique):
        rng = split_rng(self.cfg["seed"], split)
        wanted = self.cfg[f"num_{split}"]
        count = rejected = 0
        while count < wanted:
            ex = self.example(rng, split)
            if self.UNIQUE and not unique.add(*self.fingerprint(ex)):
                rejected += 1
                if rejected > 10 * wanted + 1000:
                    raise ValueError(
                        f"{type(self).__name__}: could not draw {wanted} distinct {split} "
                        "examples; enlarge the task (length, vocabulary) or ask for fewer"
                    )
                continue
            yield count, ex
            count += 1
