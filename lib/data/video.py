"""Moving-digit videos (Moving MNIST, Srivastava et al. 2015), made from sklearn's digits.

Each video shows `num_digits` digits (8x8 images upscaled by `scale`) moving at constant
speed and bouncing off the canvas walls. Labels: `label` (the first digit's class), `digits`
(all classes), `direction` (quadrant of the first digit's initial velocity, 0-3: a label that
needs the frames' order) and `positions` (top-left corner per frame). Train / validation /
test videos use disjoint digit images.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import GeneratedBuilder, split_counts
from lib.data.images import sklearn_digits_splits


def bounce_positions(start, velocity, num_frames: int, limit: float) -> np.ndarray:
    """Positions [T, 2] of a point moving at `velocity`, reflected at 0 and `limit`."""
    raw = np.asarray(start, float)[None] + np.arange(num_frames)[:, None] * np.asarray(velocity)
    period = 2 * limit
    folded = np.mod(raw, period)
    return np.where(folded > limit, period - folded, folded)


def render(images, positions, canvas: int) -> np.ndarray:
    """Frames [T, canvas, canvas] in [0, 1]: each image pasted at its rounded position,
    overlaps combined by maximum."""
    num_frames = positions.shape[0]
    frames = np.zeros((num_frames, canvas, canvas), np.float32)
    for d, img in enumerate(images):
        size = img.shape[0]
        for t in range(num_frames):
            r, c = np.rint(positions[t, d]).astype(int)
            np.maximum(
                frames[t, r : r + size, c : c + size],
                img,
                out=frames[t, r : r + size, c : c + size],
            )
    return frames


class MovingDigits(GeneratedBuilder):
    """Videos of bouncing handwritten digits: `inputs` float32 [T, H, W, 1] at read time."""

    DEFAULTS = {
        "num_frames": 16,
        "canvas": 32,
        "num_digits": 1,
        "scale": 2,
        "max_speed": 2.0,
        **split_counts(2000, 200, 200),
    }
    UNIQUE = False  # continuous random velocities: videos never repeat
    SOURCE = "generated from scikit-learn's bundled digits"

    def validate_config(self, cfg):
        if cfg["canvas"] <= 8 * cfg["scale"]:
            raise ValueError("canvas must be larger than a digit (8 * scale)")

    def _features(self):
        c = self.cfg
        return tfds.features.FeaturesDict(
            {
                "video": tfds.features.Tensor(
                    shape=(c["num_frames"], c["canvas"], c["canvas"]), dtype=np.uint8
                ),
                "label": tfds.features.Tensor(shape=(), dtype=np.int32),
                "digits": tfds.features.Tensor(shape=(c["num_digits"],), dtype=np.int32),
                "direction": tfds.features.Tensor(shape=(), dtype=np.int32),
                "positions": tfds.features.Tensor(
                    shape=(c["num_frames"], c["num_digits"], 2), dtype=np.float32
                ),
            }
        )

    def _metadata(self):
        c = self.cfg
        return {
            "task": "video_classification",
            "num_classes": 10,
            "num_directions": 4,
            "seq_len": c["num_frames"],
            "image_shape": [c["canvas"], c["canvas"]],
        }

    def _digit_pool(self, split):
        if not hasattr(self, "_pools"):
            self._pools = sklearn_digits_splits(seed=self.cfg["seed"])
        return self._pools[split]

    def example(self, rng, split):
        c = self.cfg
        images, labels = self._digit_pool(split)
        pick = rng.integers(0, len(labels), c["num_digits"])
        size = 8 * c["scale"]
        digits = [np.kron(images[i] / 16.0, np.ones((c["scale"], c["scale"]))) for i in pick]
        limit = c["canvas"] - size
        angles = rng.uniform(0, 2 * np.pi, c["num_digits"])
        speeds = rng.uniform(0.5, 1.0, c["num_digits"]) * c["max_speed"]
        velocity = np.stack([speeds * np.sin(angles), speeds * np.cos(angles)], axis=1)
        starts = rng.uniform(0, limit, (c["num_digits"], 2))
        positions = np.stack(
            [
                bounce_positions(starts[d], velocity[d], c["num_frames"], limit)
                for d in range(c["num_digits"])
            ],
            axis=1,
        )
        frames = render(digits, positions, c["canvas"])
        return {
            "video": np.rint(frames * 255).astype(np.uint8),
            "label": np.int32(labels[pick[0]]),
            "digits": labels[pick].astype(np.int32),
            "direction": np.int32(int(angles[0] // (np.pi / 2)) % 4),
            "positions": positions.astype(np.float32),
        }

    @classmethod
    def postprocess(cls, example, metadata):
        out = dict(example)
        out["inputs"] = np.asarray(out.pop("video"), np.float32)[..., None] / 255.0
        return out
