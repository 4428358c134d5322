"""Language models of any registered mixer, and widths that match their parameter counts.

Papers compare mixers "at equal parameters": `width_for_params` searches the width whose model
has the count nearest a target, counting by shapes only (`jax.eval_shape`, nothing computed).

  make = lambda dim: language_model("gla", dim, depth=2, vocab_size=65)
  dim = width_for_params(make, 60_000)
  model, dim = sized_language_model("gla", 2, 65, target_params=60_000)   # the same
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.sequence_model import SequenceModel

# Mixers whose papers' blocks have no MLP: Mamba's block (Gu & Dao, 2023) replaces attention
# and MLP with one gated unit; the S4D baseline is compared in the same block.
NO_MLP_MIXERS = ("mamba", "s4d")


def language_model(
    mixer: str,
    dim: int,
    depth: int,
    vocab_size: int,
    mixer_kwargs: Mapping | None = None,
    **model_kwargs,
) -> SequenceModel:
    """A token language `SequenceModel` of `depth` pre-norm blocks of `mixer`.

    Blocks of `NO_MLP_MIXERS` have no MLP (as in their papers); the others have the default
    gated MLP. `model_kwargs` go to `SequenceModel` (e.g. `dtype`, `scan_layers`) and may set
    `mlp_hidden_dim` explicitly.
    """
    model_kwargs.setdefault("mlp_hidden_dim", 0 if mixer in NO_MLP_MIXERS else None)
    return SequenceModel(
        dim=dim,
        depth=depth,
        mixer=mixer,
        mixer_kwargs=dict(mixer_kwargs or {}),
        vocab_size=vocab_size,
        **model_kwargs,
    )


def count_params(model: nn.Module, length: int = 8) -> int:
    """The number of parameters of a token model, from shapes only (nothing is computed).

    Args:
      model: a module taking int tokens `[b, l]`.
      length: the dummy sequence length used to trace `model.init`.
    """
    x = jnp.zeros((1, length), jnp.int32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)))


def width_for_params(
    make: Callable[[int], nn.Module], target: int, *, multiple: int = 8, max_width: int = 1024
) -> int:
    """The width `w` (a multiple of `multiple`, at most `max_width`) whose model `make(w)` has
    the parameter count nearest `target`; counts are assumed to grow with the width.

    Raises:
      ValueError: `target` or `multiple` is not positive.
    """
    if target < 1 or multiple < 1:
        raise ValueError(f"target and multiple must be >= 1, got {target} and {multiple}")
    best, best_gap = multiple, None
    for width in range(multiple, max_width + 1, multiple):
        n = count_params(make(width))
        gap = abs(n - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = width, gap
        if n > target:
            break
    return best


def sized_language_model(
    mixer: str,
    depth: int,
    vocab_size: int,
    mixer_kwargs: Mapping | None = None,
    *,
    dim: int = 0,
    target_params: int = 0,
    **model_kwargs,
) -> tuple[SequenceModel, int]:
    """`language_model` at width `dim`, or (with `target_params` > 0) at the width whose
    parameter count is nearest `target_params`; returns `(model, width)`.

    Raises:
      ValueError: neither `dim` nor `target_params` is positive.
    """
    if dim <= 0 and target_params <= 0:
        raise ValueError(f"give dim > 0 or target_params > 0 (got {dim} and {target_params})")

    def make(width):
        return language_model(mixer, width, depth, vocab_size, mixer_kwargs, **model_kwargs)

    width = width_for_params(make, target_params) if target_params > 0 else dim
    return make(width), width
