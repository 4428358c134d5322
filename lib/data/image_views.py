"""Sequence and spike views of image data sets: sequential and permuted pixels (sMNIST /
psMNIST, Le et al. 2015), rate and latency spike codes, and N-MNIST-style saccade event
streams (Orchard et al. 2015).

A view reads the stored images of its base data set (`digits`, `mnist`, `fashion_mnist`) and
transforms each example at read time: nothing extra is stored. All views are deterministic:
the same image always gives the same sequence or spikes.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage

PERMUTATION_SEED = 0


def pixel_permutation(num_pixels: int, seed: int = PERMUTATION_SEED) -> np.ndarray:
    """The fixed pixel order of the permuted views (int [num_pixels])."""
    return np.random.default_rng(seed).permutation(num_pixels)


def _pixels(example) -> np.ndarray:
    return np.asarray(example["inputs"], np.float32).reshape(-1)


def _example_rng(example) -> np.random.Generator:
    """A generator seeded by the example's content, so its spikes never change."""
    x = np.ascontiguousarray(example["inputs"])
    return np.random.default_rng(zlib.crc32(x.tobytes()) ^ int(example["label"]))


class Sequential:
    """Pixels one at a time, row by row: `inputs` float32 [H*W, 1] (sMNIST)."""

    @staticmethod
    def update_metadata(meta):
        h, w = meta["image_shape"]
        return {**meta, "seq_len": h * w, "input_dim": 1, "task": "sequence_classification"}

    @staticmethod
    def postprocess(example, metadata):
        return {"inputs": _pixels(example)[:, None], "label": example["label"]}


class Permuted(Sequential):
    """Pixels in a fixed random order (`pixel_permutation`): `inputs` [H*W, 1] (psMNIST)."""

    @staticmethod
    def update_metadata(meta):
        return {**Sequential.update_metadata(meta), "permutation_seed": PERMUTATION_SEED}

    @staticmethod
    def postprocess(example, metadata):
        pixels = _pixels(example)
        return {
            "inputs": pixels[pixel_permutation(pixels.size)][:, None],
            "label": example["label"],
        }


class _SpikeCoded:
    """A spike code of an image: `inputs` float32 {0, 1} `[NUM_STEPS, H*W]`, one row a step."""

    NUM_STEPS = 25
    ENCODING = ""

    @classmethod
    def update_metadata(cls, meta):
        h, w = meta["image_shape"]
        return {
            **meta,
            "seq_len": cls.NUM_STEPS,
            "input_dim": h * w,
            "encoding": cls.ENCODING,
            "task": "sequence_classification",
        }


class RateCoded(_SpikeCoded):
    """Poisson-like rate code: each pixel spikes at each of `NUM_STEPS` steps with probability
    equal to its intensity. `inputs` float32 {0, 1} [NUM_STEPS, H*W]."""

    ENCODING = "rate"

    @classmethod
    def postprocess(cls, example, metadata):
        p = _pixels(example)
        u = _example_rng(example).random((cls.NUM_STEPS, p.size), dtype=np.float32)
        return {"inputs": (u < p).astype(np.float32), "label": example["label"]}


class LatencyCoded(_SpikeCoded):
    """Time-to-first-spike code: a pixel brighter than `THRESHOLD` spikes once, at step
    round((1 - x) * (NUM_STEPS - 1)): brighter pixels spike earlier. `inputs` [T, H*W]."""

    ENCODING = "latency"
    THRESHOLD = 0.2

    @classmethod
    def postprocess(cls, example, metadata):
        p = _pixels(example)
        spikes = np.zeros((cls.NUM_STEPS, p.size), np.float32)
        on = np.flatnonzero(p > cls.THRESHOLD)
        times = np.rint((1 - p[on]) * (cls.NUM_STEPS - 1)).astype(int)
        spikes[times, on] = 1
        return {"inputs": spikes, "label": example["label"]}


def saccade_path(num_steps_per_saccade: int, amplitude: float) -> np.ndarray:
    """Image offsets (row, col) [3 * steps, 2] along a triangle of three saccades."""
    corners = np.array([[0, 0], [amplitude, amplitude / 2], [0, amplitude], [0, 0]], float)
    path = []
    for a, b in zip(corners[:-1], corners[1:]):
        s = (np.arange(1, num_steps_per_saccade + 1) / num_steps_per_saccade)[:, None]
        path.append(a + s * (b - a))
    return np.concatenate(path)


def dvs_events(frames: np.ndarray, threshold: float, eps: float = 0.1) -> np.ndarray:
    """Event-camera model: ON/OFF events where log intensity moved by more than `threshold`
    since the pixel's last event.

    Args:
      frames: float [T + 1, H, W], intensities in [0, 1]; frame 0 sets the reference.
      threshold: log-intensity contrast threshold.
      eps: offset inside the log, so black pixels have a finite log intensity.

    Returns:
      float32 [T, H, W, 2]: channel 0 ON events, channel 1 OFF events (0 or 1).
    """
    log_i = np.log(frames + eps)
    ref = log_i[0].copy()
    out = np.zeros((len(frames) - 1, *frames.shape[1:], 2), np.float32)
    for t in range(1, len(frames)):
        diff = log_i[t] - ref
        on, off = diff > threshold, diff < -threshold
        out[t - 1, ..., 0], out[t - 1, ..., 1] = on, off
        ref = np.where(on | off, log_i[t], ref)
    return out


class Saccades:
    """N-MNIST-style event stream: the image moves along three saccades (a triangle) over a
    canvas `PAD` pixels larger on each side (28 -> 34 as in N-MNIST) and an event-camera
    model turns brightness changes into ON/OFF events. `inputs` float32 [T, Hc, Wc, 2]."""

    STEPS_PER_SACCADE = 10
    THRESHOLD = 0.3

    @staticmethod
    def pad_for(height: int) -> int:
        return max(1, int(round(3 * height / 28)))

    @classmethod
    def update_metadata(cls, meta):
        h, w = meta["image_shape"]
        pad = cls.pad_for(h)
        return {
            **meta,
            "seq_len": 3 * cls.STEPS_PER_SACCADE,
            "encoding": "saccade_events",
            "input_shape": [h + 2 * pad, w + 2 * pad, 2],
            "task": "sequence_classification",
        }

    @classmethod
    def postprocess(cls, example, metadata):
        image = np.asarray(example["inputs"], np.float32)[..., 0]
        h, w = image.shape
        pad = cls.pad_for(h)
        canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
        canvas[:h, :w] = image
        path = saccade_path(cls.STEPS_PER_SACCADE, 2 * pad)
        frames = [canvas] + [ndimage.shift(canvas, p, order=1, mode="constant") for p in path]
        events = dvs_events(np.stack(frames), cls.THRESHOLD)
        return {"inputs": events, "label": example["label"]}
