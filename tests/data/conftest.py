"""Fixtures for data tests: prepare a small data set into a temporary folder and read it."""

import pytest

import lib.data as data
from lib.data.pipeline import data_source


def read_split(name, split, root):
    """All examples of one split as a list of dicts of numpy arrays, in stored order."""
    src = data_source(name, split, data_dir=root)
    return [src[i] for i in range(len(src))]


@pytest.fixture
def build(tmp_path):
    """build(name, **options) -> (info, {split: [examples]}) for a freshly prepared data set."""

    def _build(name, subdir="d", **options):
        root = tmp_path / subdir
        data.prepare(name, root, **options)
        meta = data.info(name, root)
        return meta, {s: read_split(name, s, root) for s in meta["splits"]}

    return _build
