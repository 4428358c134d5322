"""Tests of the moving-digit videos: frames agree with the recorded trajectories, bouncing
keeps digits inside the canvas, labels, and disjoint digit images across splits."""

import numpy as np

import lib.data as data
from lib.data import video
from lib.data.images import sklearn_digits_splits


def test_bounce_positions_reflect_and_keep_speed():
    pos = video.bounce_positions([1.0, 5.0], [3.0, -2.0], 30, 10.0)
    assert pos.min() >= 0 and pos.max() <= 10
    steps = np.abs(np.diff(pos, axis=0))
    # Away from a wall the step is the velocity; at a bounce it is shorter, never longer.
    assert np.all(steps <= np.array([3.0, 2.0]) + 1e-9)
    assert np.mean(np.isclose(steps, [3.0, 2.0]).all(axis=1)) > 0.5


def test_videos_match_trajectories(build):
    meta, splits = build(
        "moving_digits",
        num_frames=6,
        canvas=24,
        num_digits=2,
        num_train=8,
        num_validation=2,
        num_test=4,
    )
    assert meta["seq_len"] == 6 and meta["image_shape"] == [24, 24]
    pools = sklearn_digits_splits()
    for split, recs in splits.items():
        pool = {img.tobytes() for img in pools[split][0]}
        for ex in recs:
            v, pos = ex["video"].astype(float) / 255, ex["positions"]
            assert v.shape == (6, 24, 24) and pos.shape == (6, 2, 2)
            assert np.all(pos >= 0) and np.all(pos <= 24 - 16)
            assert ex["label"] == ex["digits"][0]
            for t in range(6):
                r, c = np.rint(pos[t, 0]).astype(int)
                patch = v[t, r : r + 16, c : c + 16]
                assert patch.max() > 0.5
                mask = np.ones_like(v[t], bool)
                for d in range(2):
                    rr, cc = np.rint(pos[t, d]).astype(int)
                    mask[rr : rr + 16, cc : cc + 16] = False
                assert v[t][mask].max() == 0  # nothing drawn outside the digits
            # The first digit's image (downscaled back to 8x8) comes from this split's pool
            # when it does not overlap the other digit.
            r, c = np.rint(pos[0, 0]).astype(int)
            r2, c2 = np.rint(pos[0, 1]).astype(int)
            if abs(r - r2) >= 16 or abs(c - c2) >= 16:
                small = np.rint(v[0, r : r + 16 : 2, c : c + 16 : 2] * 16).astype(np.uint8)
                assert small.tobytes() in pool


def test_load_gives_float_frames(tmp_path):
    data.prepare(
        "moving_digits",
        tmp_path,
        num_frames=4,
        canvas=20,
        num_train=8,
        num_validation=2,
        num_test=2,
    )
    batch = next(data.load("moving_digits", "train", batch_size=4, data_dir=tmp_path))
    assert batch["inputs"].shape == (4, 4, 20, 20, 1) and batch["inputs"].dtype == np.float32
    assert batch["inputs"].max() <= 1 and set(batch["direction"]) <= {0, 1, 2, 3}
