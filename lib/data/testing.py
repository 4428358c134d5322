"""Test helpers for code that must only read data: a snapshot of a data folder to compare.

before = snapshot(data_dir)
build(config)
assert_unchanged(data_dir, before)   # nothing created, removed, resized or rewritten
"""

from __future__ import annotations

import os
from pathlib import Path


def snapshot(root) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root`: relative path -> (size in bytes, mtime in ns);
    folders have size -1. An absent `root` gives {}."""
    root = Path(root)
    out = {}
    if not root.exists():
        return out
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            stat = path.stat()
            size = -1 if path.is_dir() else stat.st_size
            out[str(path.relative_to(root))] = (size, stat.st_mtime_ns)
    return out


def changes(before: dict, after: dict) -> dict[str, list[str]]:
    """The paths `created`, `removed` and `modified` (size or mtime) between two snapshots."""
    return {
        "created": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "modified": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    }


def assert_unchanged(root, before: dict) -> None:
    """Raises AssertionError listing what changed under `root` since `before` was taken."""
    diff = changes(before, snapshot(root))
    if any(diff.values()):
        raise AssertionError(f"the data folder {root} was written to: {diff}")
