"""Synthetic AR(p) processes and the classic least-squares AR fit (baseline of AR-Net, Triebe et al. 2019).

Convention: `y_t = sum_{i=1..p} w_i y_{t-i} + e_t`, `e_t ~ N(0, noise_std^2)`; coefficient `w_i`
multiplies lag `i`. A design matrix row holds the lags newest first: `X[t] = (y_{t-1}, ...,
y_{t-p})`, so a linear model's weight `i-1` is `w_i`.

Everything here is NumPy and deterministic from a seed (the generated series is offline data, no
download). The coefficient sampler draws the AR polynomial's inverse roots inside a disc of radius
`max_root < 1` or bounds `sum |w_i| < 1`, so every sampled process is stationary.
"""

import numpy as np


def random_stable_coeffs(
    p: int,
    seed: int,
    *,
    kind: str = "l1",
    l1_norm: float = 0.9,
    max_root: float = 0.9,
    min_abs: float = 0.0,
    tries: int = 10_000,
) -> np.ndarray:
    """AR(p) coefficients of a stationary process.

    Two samplers:
    - `kind="l1"` (default): random signs, magnitudes `U(0.2, 1)` rescaled so that
      `sum |w_i| = l1_norm < 1`, a sufficient condition for stationarity. The lag covariance
      stays well conditioned at any `p`.
    - `kind="roots"`: inverse roots of the AR polynomial drawn in conjugate pairs (plus one real
      root when `p` is odd) with modulus in `[0.3, max_root]`; the coefficients are those of
      `prod_k (1 - r_k z)`. At larger `p` they can be large (binomial growth) and the process
      close to non-stationary: an ill-conditioned regression.
    Draws with some `|w_i| < min_abs` are rejected (so the true order is identifiable).

    Args:
      p: order, >= 1.
      seed: NumPy seed.
      kind: "l1" or "roots".
      l1_norm: `sum |w_i|` for `kind="l1"`.
      max_root: largest inverse-root modulus (< 1) for `kind="roots"`.
      min_abs: smallest allowed `|w_i|` (0 disables the check).
      tries: rejection-sampling budget.

    Returns:
      `w: [p]` float64, `w[i-1]` multiplies lag `i`.
    """
    if p < 1:
        raise ValueError(f"AR order p must be >= 1, got {p}")
    if kind not in ("l1", "roots"):
        raise ValueError(f"unknown kind={kind!r}; expected 'l1' or 'roots'")
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        if kind == "l1":
            w = rng.choice([-1.0, 1.0], p) * rng.uniform(0.2, 1.0, p)
            w *= l1_norm / np.abs(w).sum()
        else:
            roots = []
            for _ in range(p // 2):
                r, phi = rng.uniform(0.3, max_root), rng.uniform(0, np.pi)
                roots += [r * np.exp(1j * phi), r * np.exp(-1j * phi)]
            if p % 2:
                roots.append(rng.choice([-1, 1]) * rng.uniform(0.3, max_root))
            w = -np.real(np.poly(roots))[1:]  # poly = (1, -w_1, ..., -w_p)
        if np.min(np.abs(w)) >= min_abs:
            return w
    raise RuntimeError(f"no AR({p}) draw with all |w_i| >= {min_abs} in {tries} tries")


def generate_ar_process(
    coeffs: np.ndarray, length: int, *, noise_std: float = 1.0, burn_in: int = 500, seed: int = 0
) -> np.ndarray:
    """Simulate `length` steps of the AR process with coefficients `coeffs`.

    A seeded front end to `lib.data.dynamics.ar_process` (the simulator behind the `ar_process`
    data set), so the project and the data registry generate series the same way.

    Args:
      coeffs: `w: [p]` (lag 1 first).
      length: number of samples returned.
      noise_std: standard deviation of the innovations `e_t`.
      burn_in: steps simulated and discarded first (forgets the zero start).
      seed: NumPy seed of the innovations.

    Returns:
      `y: [length]` float64.
    """
    from lib.data.dynamics import ar_process

    coeffs = np.asarray(coeffs, np.float64)
    return ar_process(np.random.default_rng(seed), coeffs, length, noise_std, burn_in)


def lagged_windows(y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix and targets for an order-`p` autoregression.

    Args:
      y: series `[n]`.
      p: number of lags.

    Returns:
      `X: [n - p, p]` with `X[j] = (y_{t-1}, ..., y_{t-p})` for `t = j + p`, and `target:
      [n - p]` with `target[j] = y_t`.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] <= p:
        raise ValueError(f"`y` must be a 1-D series longer than p={p}, got shape {y.shape}")
    n = y.shape[0]
    cols = [y[p - i : n - i] for i in range(1, p + 1)]
    return np.stack(cols, axis=1), y[p:]


def fit_least_squares(y: np.ndarray, p: int) -> np.ndarray:
    """Classic AR(p) fit: ordinary least squares of `y_t` on its `p` lags (no intercept).

    Returns:
      `w_hat: [p]` (lag 1 first).
    """
    X, target = lagged_windows(y, p)
    w, *_ = np.linalg.lstsq(X, target, rcond=None)
    return w


def pad_to(w: np.ndarray, p: int) -> np.ndarray:
    """Zero-pad (or check) a coefficient vector to length `p`."""
    w = np.asarray(w, np.float64)
    if w.shape[0] > p:
        raise ValueError(f"cannot pad {w.shape[0]} coefficients to {p}")
    return np.concatenate([w, np.zeros(p - w.shape[0])])


def stpe(w_hat: np.ndarray, w_true: np.ndarray) -> float:
    """Symmetric total percentage error of coefficients (the AR-Net paper's metric), in %.

    `100 * sum |w_hat - w| / sum (|w_hat| + |w|)`, with the shorter vector zero-padded; 0 is a
    perfect fit, 100 a fit sharing no support or sign with the truth.
    """
    p = max(len(w_hat), len(w_true))
    a, b = pad_to(w_hat, p), pad_to(w_true, p)
    return float(100.0 * np.abs(a - b).sum() / (np.abs(a) + np.abs(b)).sum())


def estimated_order(w_hat: np.ndarray, tol: float = 0.05) -> int:
    """The largest lag whose coefficient magnitude exceeds `tol` (0 if none)."""
    above = np.nonzero(np.abs(np.asarray(w_hat)) > tol)[0]
    return int(above[-1] + 1) if above.size else 0
