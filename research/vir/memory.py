"""ViR (Hatamizadeh et al., 2023): compiled memory and forward time vs image resolution.

Compares ViR's parallel (quadratic) and chunked (linear) retention with a ViT on random images
of growing size (patch 2, so `(size/2)^2 + 1` tokens), forward pass only, tiny width.
`python -m research.vir.memory` prints a Markdown table.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from research.vir.model import ViR, ViT


def measure(model, images, repeats=3) -> dict:
    """Compiled temp memory (bytes, XLA `memory_analysis`) and mean forward seconds."""
    params = model.init(jax.random.key(0), images)
    fn = jax.jit(model.apply)
    compiled = fn.lower(params, images).compile()
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
    compiled(params, images).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        compiled(params, images).block_until_ready()
    return {"temp_MiB": None if temp is None else temp / 2**20,
            "ms": 1e3 * (time.perf_counter() - start) / repeats}  # fmt: skip


def table(sizes=(8, 16, 32), batch=2, dim=32, depth=1, heads=2) -> list[dict]:
    """Rows `{size, tokens, model, temp_MiB, ms}` for ViR parallel, ViR chunked and ViT."""
    rows = []
    for size in sizes:
        x = np.random.default_rng(0).random((batch, size, size, 1)).astype(np.float32)
        kw = dict(dim=dim, depth=depth, num_heads=heads, patch=2)
        models = {
            "vir_parallel": ViR(method="parallel", image_size=size, **kw),
            "vir_chunked": ViR(method="chunked", image_size=size, **kw),
            "vit": ViT(**kw),
        }
        for name, m in models.items():
            rows.append({"size": size, "tokens": (size // 2) ** 2 + 1, "model": name,
                         **measure(m, x)})  # fmt: skip
    return rows


if __name__ == "__main__":
    from lib.train.study import markdown_table

    print(markdown_table(table()))
