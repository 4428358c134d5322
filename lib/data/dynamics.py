"""Dynamical systems data: AR(p) processes with known coefficients (AR-Net, Triebe et al.
2019), Lorenz-96 (Lorenz 1996), Kuramoto-Sivashinsky by ETDRK4 (Kassam & Trefethen 2005), and
1-D viscous Burgers and heat equations (pseudo-spectral, periodic).

Each example is one trajectory `series` float32 [T, D] (time, state or space). `lib.data.load`
gives next-step pairs: `inputs` = series[:-1], `targets` = series[1:].
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import GeneratedBuilder, split_counts


# ----------------------------------------------------------------------------- solvers
def rk4_step(f, x, dt):
    """One classical Runge-Kutta step of dx/dt = f(x)."""
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def lorenz96_rhs(x: np.ndarray, forcing: float) -> np.ndarray:
    """dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F, periodic in i. x: [..., D]."""
    return (np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + forcing


def etdrk4_coefficients(lin: np.ndarray, dt: float, num_points: int = 32):
    """ETDRK4 coefficients for a diagonal linear operator `lin` (Kassam & Trefethen 2005),
    the phi-functions evaluated by a contour integral so that small |lin * dt| is stable."""
    e = np.exp(dt * lin)
    e2 = np.exp(dt * lin / 2)
    roots = np.exp(1j * np.pi * (np.arange(1, num_points + 1) - 0.5) / num_points)
    lr = dt * lin[:, None] + roots[None, :]
    q = dt * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = dt * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
    f2 = dt * np.real(np.mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr**3, axis=1))
    f3 = dt * np.real(np.mean((-4 - 3 * lr - lr**2 + np.exp(lr) * (4 - lr)) / lr**3, axis=1))
    return e, e2, q, f1, f2, f3


def etdrk4(u0, lin, nonlin, dt, num_steps, save_every=1):
    """Integrates u_t = L u + N(u) in Fourier space with ETDRK4.

    Args:
      u0: real initial state [N] on a periodic grid.
      lin: the diagonal linear operator in Fourier space [N // 2 + 1] (rfft layout).
      nonlin: function of the rfft coefficients v [N // 2 + 1] returning N(u) in rfft layout.
      dt: time step; num_steps: steps to take; save_every: keep every k-th state.

    Returns:
      float64 [num_steps // save_every + 1, N], the states at times 0, k dt, 2k dt, ...
    """
    n = len(u0)
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(lin, dt)
    v = np.fft.rfft(u0)
    out = [np.asarray(u0, float)]
    for step in range(1, num_steps + 1):
        nv = nonlin(v)
        a = e2 * v + q * nv
        na = nonlin(a)
        b = e2 * v + q * na
        nb = nonlin(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlin(c)
        v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
        if step % save_every == 0:
            out.append(np.fft.irfft(v, n))
    return np.stack(out)


def wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wavenumbers of the rfft of n points on a periodic domain of `length`."""
    return 2 * np.pi * np.fft.rfftfreq(n, d=length / n)


def _dealiased_derivative_of_square(k, n):
    """N(v) = -0.5 d/dx (u^2) in rfft layout, with the 2/3-rule to remove aliasing."""
    cut = np.abs(k) < (2 / 3) * np.max(np.abs(k))

    def nonlin(v):
        u = np.fft.irfft(v * cut, n)
        return -0.5j * k * np.fft.rfft(u * u)

    return nonlin


def kuramoto_sivashinsky(u0, length, dt, num_steps, save_every=1):
    """u_t = -u u_x - u_xx - u_xxxx, periodic on [0, length). Returns [T, N]."""
    n = len(u0)
    k = wavenumbers(n, length)
    return etdrk4(u0, k**2 - k**4, _dealiased_derivative_of_square(k, n), dt, num_steps, save_every)


def burgers(u0, length, viscosity, dt, num_steps, save_every=1):
    """u_t + u u_x = nu u_xx, periodic on [0, length). Returns [T, N]."""
    n = len(u0)
    k = wavenumbers(n, length)
    return etdrk4(
        u0, -viscosity * k**2, _dealiased_derivative_of_square(k, n), dt, num_steps, save_every
    )


def heat(u0, length, diffusivity, times):
    """Exact solution of u_t = a u_xx, periodic on [0, length), at `times`. Returns [T, N]."""
    n = len(u0)
    k = wavenumbers(n, length)
    v = np.fft.rfft(u0)
    return np.stack([np.fft.irfft(v * np.exp(-diffusivity * k**2 * t), n) for t in times])


def random_field(rng, n, num_modes, length=1.0):
    """A smooth random periodic field: `num_modes` low Fourier modes, decaying amplitudes."""
    x = np.arange(n) / n * length
    u = np.zeros(n)
    for m in range(1, num_modes + 1):
        amp = rng.normal() / m
        phase = rng.uniform(0, 2 * np.pi)
        u += amp * np.sin(2 * np.pi * m * x / length + phase)
    return u


def stable_ar_coefficients(rng, order: int, max_root: float = 0.9) -> np.ndarray:
    """AR coefficients a_1..a_p whose characteristic roots are real with |r| in [0.2, max]."""
    roots = rng.uniform(0.2, max_root, order) * rng.choice([-1, 1], order)
    return -np.poly(roots)[1:]


def ar_process(rng, coefficients, length, noise_std=1.0, burn_in=200):
    """x_t = sum_i a_i x_{t-i} + noise_std * e_t, e_t ~ N(0, 1). Returns float64 [length]."""
    p = len(coefficients)
    x = np.zeros(length + burn_in + p)
    noise = rng.normal(0, noise_std, len(x))
    for t in range(p, len(x)):
        x[t] = np.dot(coefficients, x[t - p : t][::-1]) + noise[t]
    return x[-length:]


# ----------------------------------------------------------------------------- builders
class _Trajectories(GeneratedBuilder, skip_registration=True):
    UNIQUE = False  # Continuous random states never repeat.

    def num_states(self) -> int:
        raise NotImplementedError

    def _features(self):
        shape = (self.cfg["num_steps"] + 1, self.num_states())
        return tfds.features.FeaturesDict(
            {"series": tfds.features.Tensor(shape=shape, dtype=np.float32)}
        )

    def _metadata(self):
        return {
            "task": "forecasting",
            "seq_len": self.cfg["num_steps"],
            "input_dim": self.num_states(),
        }

    @classmethod
    def postprocess(cls, example, metadata):
        s = np.asarray(example["series"], np.float32)
        return {"inputs": s[:-1], "targets": s[1:]}


class ArProcess(_Trajectories):
    """AR(p) series with known coefficients (in `info()["coefficients"]`), one per example.
    `coefficients` empty: drawn once from `seed` with stable real roots."""

    DEFAULTS = {
        "order": 3,
        "coefficients": [],
        "noise_std": 1.0,
        "num_steps": 256,
        **split_counts(1000, 100, 100),
    }

    def validate_config(self, cfg):
        if cfg["coefficients"] and len(cfg["coefficients"]) != cfg["order"]:
            raise ValueError("len(coefficients) must equal order")

    def coefficients(self):
        if self.cfg["coefficients"]:
            return np.asarray(self.cfg["coefficients"], float)
        return stable_ar_coefficients(
            np.random.default_rng([self.cfg["seed"], 99]), self.cfg["order"]
        )

    def num_states(self):
        return 1

    def _metadata(self):
        return {
            **super()._metadata(),
            "coefficients": self.coefficients().tolist(),
            "noise_std": self.cfg["noise_std"],
        }

    def example(self, rng, split):
        x = ar_process(rng, self.coefficients(), self.cfg["num_steps"] + 1, self.cfg["noise_std"])
        return {"series": x[:, None].astype(np.float32)}


class Lorenz96(_Trajectories):
    """Lorenz-96 trajectories on the attractor (RK4, `substeps` per sample interval `dt`)."""

    DEFAULTS = {
        "dim": 40,
        "forcing": 8.0,
        "dt": 0.05,
        "substeps": 5,
        "burn_in": 500,
        "num_steps": 200,
        **split_counts(512, 64, 64),
    }

    def num_states(self):
        return self.cfg["dim"]

    def _metadata(self):
        return {**super()._metadata(), "dt": self.cfg["dt"], "forcing": self.cfg["forcing"]}

    def example(self, rng, split):
        c = self.cfg
        x = c["forcing"] + 0.01 * rng.normal(size=c["dim"])
        h = c["dt"] / c["substeps"]
        f = lambda s: lorenz96_rhs(s, c["forcing"])
        out = []
        for t in range(c["burn_in"] + c["num_steps"] + 1):
            if t >= c["burn_in"]:
                out.append(x)
            for _ in range(c["substeps"]):
                x = rk4_step(f, x, h)
        return {"series": np.stack(out).astype(np.float32)}


class KuramotoSivashinsky(_Trajectories):
    """Kuramoto-Sivashinsky on [0, length) with `grid` points, ETDRK4 time steps of `dt`,
    saved every `save_every` steps after a burn-in onto the attractor."""

    DEFAULTS = {
        "grid": 64,
        "length": 22.0,
        "dt": 0.25,
        "save_every": 1,
        "burn_in": 400,
        "num_steps": 200,
        **split_counts(256, 32, 32),
    }

    def num_states(self):
        return self.cfg["grid"]

    def _metadata(self):
        c = self.cfg
        return {**super()._metadata(), "dt": c["dt"] * c["save_every"], "length": c["length"]}

    def example(self, rng, split):
        c = self.cfg
        u0 = random_field(rng, c["grid"], 4, c["length"])
        total = c["burn_in"] + c["num_steps"] * c["save_every"]
        u = kuramoto_sivashinsky(u0, c["length"], c["dt"], total, 1)
        series = u[c["burn_in"] :: c["save_every"]][: c["num_steps"] + 1]
        return {"series": series.astype(np.float32)}


class Burgers(_Trajectories):
    """Viscous Burgers on [0, 1) from smooth random initial fields (ETDRK4, pseudo-spectral)."""

    DEFAULTS = {
        "grid": 128,
        "viscosity": 0.01,
        "dt": 0.001,
        "save_every": 10,
        "num_steps": 100,
        "num_modes": 4,
        **split_counts(512, 64, 64),
    }

    def num_states(self):
        return self.cfg["grid"]

    def _metadata(self):
        c = self.cfg
        return {
            **super()._metadata(),
            "dt": c["dt"] * c["save_every"],
            "length": 1.0,
            "viscosity": c["viscosity"],
        }

    def example(self, rng, split):
        c = self.cfg
        u0 = random_field(rng, c["grid"], c["num_modes"])
        u = burgers(
            u0, 1.0, c["viscosity"], c["dt"], c["num_steps"] * c["save_every"], c["save_every"]
        )
        return {"series": u.astype(np.float32)}


class Heat(_Trajectories):
    """Heat equation on [0, 1), exact Fourier solution from smooth random initial fields."""

    DEFAULTS = {
        "grid": 128,
        "diffusivity": 0.01,
        "dt": 0.01,
        "num_steps": 100,
        "num_modes": 8,
        **split_counts(512, 64, 64),
    }

    def num_states(self):
        return self.cfg["grid"]

    def _metadata(self):
        c = self.cfg
        return {
            **super()._metadata(),
            "dt": c["dt"],
            "length": 1.0,
            "diffusivity": c["diffusivity"],
        }

    def example(self, rng, split):
        c = self.cfg
        u0 = random_field(rng, c["grid"], c["num_modes"])
        times = c["dt"] * np.arange(c["num_steps"] + 1)
        return {"series": heat(u0, 1.0, c["diffusivity"], times).astype(np.float32)}
