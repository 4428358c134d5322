"""Small offline classification sets as in-memory arrays for the SNN, gradient-noise and GRU-SVM
reproductions (Klambauer et al. 2017 evaluated SNNs on many small UCI tables; these stand in).

- `"digits"`: scikit-learn's bundled 8x8 digits (1797 images, 10 classes; ships with sklearn, no
  download). As a table `[n, 64]`, or as a sequence of 8 rows `[n, 8, 8]` with `as_sequence`.
- `"ucr:<Name>"`: a UCR set prepared by `lib.data` (e.g. `python -m lib.data prepare
  ucr_gunpoint`; `<Name>` is the part after `ucr_`), with its official train/test split
  (`seed` and `test_fraction` unused): series `[n, length * dims]`, or `[n, length, dims]` with
  `as_sequence`.

Features are standardised with the training split's mean and standard deviation (SNNs assume
zero-mean, unit-variance inputs).
"""

import numpy as np


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int32)


def _ucr(name: str):
    """Official UCR train (+ lib.data's validation part of it) and test splits, flattened."""
    import lib.data

    key = f"ucr_{name.lower()}"
    if key not in lib.data.list_datasets():
        raise ValueError(f"unknown UCR set {name!r}: lib.data has no data set {key!r}")
    out = []
    for splits in (("train", "validation"), ("test",)):
        xs, ys = [], []
        for split in splits:
            it = lib.data.load(
                key, split, batch_size=1, shuffle=False, num_epochs=1, drop_remainder=False
            )
            for b in it:
                xs.append(np.asarray(b["inputs"], np.float32).reshape(len(b["label"]), -1))
                ys.append(np.asarray(b["label"], np.int32))
        out += [np.concatenate(xs), np.concatenate(ys)]
    return out


def load_arrays(
    name: str = "digits", *, seed: int = 0, test_fraction: float = 0.3, as_sequence: bool = False
):
    """A standardised, stratified train/test split of a small offline data set.

    Args:
      name: `"digits"` or `"ucr:<Name>"` (see module docstring).
      seed: split seed.
      test_fraction: fraction of examples held out.
      as_sequence: return inputs as `[n, length, features]` (digits: 8 rows of 8 pixels).

    Returns:
      `(x_train, y_train, x_test, y_test, num_classes)`; `x` float32, `y` int32.
    """
    from sklearn.model_selection import train_test_split

    if name == "digits":
        x, y = _digits()
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=test_fraction, random_state=seed, stratify=y
        )
    elif name.startswith("ucr:"):
        x_tr, y_tr, x_te, y_te = _ucr(name[4:])
        x, y = x_tr, np.concatenate([y_tr, y_te])
    else:
        raise ValueError(f"unknown data set {name!r}; expected 'digits' or 'ucr:<Name>'")
    mean, std = x_tr.mean(0), x_tr.std(0)
    std = np.where(std > 1e-6, std, 1.0)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    if as_sequence:
        shape = (8, 8) if name == "digits" else (x.shape[1], 1)  # univariate UCR
        x_tr, x_te = x_tr.reshape(-1, *shape), x_te.reshape(-1, *shape)
    num_classes = int(y.max()) + 1
    return x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te, num_classes
