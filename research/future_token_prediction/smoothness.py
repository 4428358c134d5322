"""How smoothly top-layer embeddings vary along a text (Future Token Prediction, Walker 2024):
mean cosine similarity of the embeddings at positions t and t + k, and a comparison of two
models at the same next-token loss read off their evaluation curves."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def neighbour_cosine(h_BxLxD, lag: int, mask_BxL=None, *, center=None, eps: float = 1e-8):
    """Mean over valid pairs of `cos(h[b, t], h[b, t + lag])`.

    Args:
      h_BxLxD: embeddings `[B, L, D]`.
      lag: distance `k >= 1` between the positions compared (`k < L`).
      mask_BxL: optional `[B, L]`, 1 where a position is real; a pair counts when both are.
      center: optional `[D]` vector subtracted from every embedding first (e.g. their mean:
        cosines then measure co-variation, not a shared offset direction).
    Returns:
      float32 scalar (0 when no pair is valid).
    """
    if h_BxLxD.ndim != 3:
        raise ValueError(f"h must be [B, L, D], got shape {h_BxLxD.shape}")
    length = h_BxLxD.shape[1]
    if not 1 <= lag < length:
        raise ValueError(f"lag must be in [1, {length - 1}] for length {length}, got {lag}")
    h = h_BxLxD.astype(jnp.float32)
    if center is not None:
        h = h - center.astype(jnp.float32)
    pair = None
    if mask_BxL is not None:
        m = mask_BxL.astype(jnp.float32)
        pair = m[:, :-lag] * m[:, lag:]
    return _pair_cosine(h[:, :-lag], h[:, lag:], pair, eps)


def _pair_cosine(a, b, pair_mask, eps=1e-8):
    """Masked mean of the cosines of the vectors `a[..., :]`, `b[..., :]`."""
    norm = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)
    cos = jnp.sum(norm(a) * norm(b), axis=-1)
    if pair_mask is None:
        return jnp.mean(cos)
    return jnp.sum(cos * pair_mask) / jnp.maximum(jnp.sum(pair_mask), 1.0)


def masked_mean(h_BxLxD, mask_BxL):
    """Mean embedding `[D]` over the valid positions."""
    m = mask_BxL.astype(jnp.float32)[..., None]
    return jnp.sum(h_BxLxD.astype(jnp.float32) * m, axis=(0, 1)) / jnp.maximum(m.sum(), 1.0)


def smoothness_metrics(h_BxLxD, mask_BxL, lags=(1, 2, 4, 8, 16)) -> dict:
    """`cos_k` for each lag; `cos_1c`: lag 1 after subtracting the batch mean embedding;
    `cos_far`: rows half a batch apart at the same position (in an unshuffled evaluation,
    `B / 2` sequences further on in the text). Batch-level estimates; `embedding_statistics`
    gives the whole-set versions."""
    out = {f"cos_{k}": neighbour_cosine(h_BxLxD, k, mask_BxL) for k in lags}
    out["cos_1c"] = neighbour_cosine(h_BxLxD, 1, mask_BxL, center=masked_mean(h_BxLxD, mask_BxL))
    b = h_BxLxD.shape[0]
    if b > 1:
        h = h_BxLxD.astype(jnp.float32)
        m = mask_BxL.astype(jnp.float32)
        shift = b // 2
        pair = m * jnp.roll(m, shift, axis=0)
        out["cos_far"] = _pair_cosine(h, jnp.roll(h, shift, axis=0), pair)
    return out


def value_at_bits(curve, bits: float, key: str):
    """Linear interpolation of `key` along an evaluation curve at next-token loss `bits`.

    Args:
      curve: rows (dicts) in training order, each with `bits_per_token` and `key`.
      bits: the loss level to read at.
    Returns:
      `(value, step)` at the first segment whose endpoints bracket `bits` (the step
      interpolated too), or `None` if the curve never reaches that level.
    """
    for a, b in zip(curve[:-1], curve[1:]):
        lo, hi = sorted((a["bits_per_token"], b["bits_per_token"]))
        if lo <= bits <= hi:
            span = b["bits_per_token"] - a["bits_per_token"]
            w = 0.0 if span == 0 else (bits - a["bits_per_token"]) / span
            value = (1 - w) * a[key] + w * b[key]
            return float(value), float((1 - w) * a["step"] + w * b["step"])
    return None


def matched_comparison(curves: dict, key: str) -> dict | None:
    """Compare two models' `key` at the same next-token loss: the worse model's final loss,
    which the better model passed on its way down.

    Args:
      curves: model name -> evaluation rows (see `value_at_bits`), exactly two models.
    Returns:
      `{"bits_per_token", <name>: value, "<name>_step": step, ...}` or None when the better
      model's curve does not bracket that loss.
    """
    if len(curves) != 2:
        raise ValueError(f"need exactly two curves, got {sorted(curves)}")
    final = {name: rows[-1]["bits_per_token"] for name, rows in curves.items()}
    worse = max(final, key=final.get)
    better = min(final, key=final.get)
    target = final[worse]
    hit = value_at_bits(curves[better], target, key)
    if hit is None:
        return None
    out = {"bits_per_token": float(target)}
    out[worse], out[f"{worse}_step"] = float(curves[worse][-1][key]), curves[worse][-1]["step"]
    out[better], out[f"{better}_step"] = hit
    return out


def embedding_statistics(h_SxLxD, mask_SxL, lags, *, num_random_pairs=20000, seed=0) -> dict:
    """Smoothness over a whole evaluation set (numpy), against two controls.

    Args:
      h_SxLxD: embeddings of `S` sequences.
      mask_SxL: 1 where a position is real.
      lags: distances `k` to measure.
      num_random_pairs: pairs of valid positions drawn uniformly from the whole set.
    Returns:
      `cos_k` (raw, as `smoothness_metrics`), `gcos_k` (after subtracting the set's mean
      embedding: what is left once the direction every embedding shares is removed),
      `cos_random` / `gcos_random` (the same for random pairs: the level of unrelated text),
      and `excess_1` = `gcos_1 - gcos_random`.
    """
    h = np.asarray(h_SxLxD, np.float64)
    m = np.asarray(mask_SxL, bool)
    mean = h[m].mean(axis=0)

    def cos(a, b):
        na = np.linalg.norm(a, axis=-1).clip(1e-8)
        nb = np.linalg.norm(b, axis=-1).clip(1e-8)
        return np.sum(a * b, axis=-1) / (na * nb)

    out = {}
    for name, x in (("cos", h), ("gcos", h - mean)):
        for k in lags:
            valid = m[:, :-k] & m[:, k:]
            out[f"{name}_{k}"] = float(cos(x[:, :-k], x[:, k:])[valid].mean())
        flat = x[m]
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, len(flat), (2, num_random_pairs))
        out[f"{name}_random"] = float(cos(flat[i], flat[j]).mean())
    out["excess_1"] = out["gcos_1"] - out["gcos_random"]
    return out
