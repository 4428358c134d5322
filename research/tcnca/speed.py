"""Speed of TCNCA's dilated TCN against MEGA's FFT-based EMA recurrence as length grows.

  python -m research.tcnca.speed                 (lengths 256 .. 16384, appends to results)
  python -m research.tcnca.speed --small         (a seconds-long check of the script)

At fixed width `D` and batch `B`, for each length it prints the best time (ms) of the forward
pass and of forward+backward (gradients of `sum(y)` w.r.t. the input and every parameter) of:
- `ema_fft`: MEGA's EMA, kernel `[L, D]` from its `[D, N]` parameters, then `fft_conv`;
- `fft_conv`: the FFT convolution alone with a given kernel (the EMA minus its kernel build);
- `tcn_dw`: the TCNCA model's TCN: `num_layers` depthwise dilated causal convs of K taps,
  as K shifted multiply-adds per layer (`lib.ops.conv.tcn` method "ref"), O(L);
- `tcn_dw_xla`: the same through XLA's grouped dilated convolution (method "conv");
- `tcn_full`: the same stack with full `[K, D, D]` convolutions (lib's `tcn` mixer).
The time ratio `ema_fft / tcn_dw` is the paper's speed-up claim. The table is appended, with
the date, device and load average, to `research/tcnca/results/speed.md`.
"""

import argparse
import datetime
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from lib.ops.conv.long import fft_conv
from lib.ops.conv.tcn import tcn
from research.tcnca.ema import ema

RESULTS = os.path.join(os.path.dirname(__file__), "results", "speed.md")


def timeit(fn, *args, reps=5):
    """Best (minimum) wall time (ms) of jitted `fn(*args)` over `reps` calls after a warm-up.

    The minimum, not the median: on a shared, loaded machine the other jobs only ever add time,
    so the fastest call is the closest to the operation's own cost."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def forms(dim: int, ndim: int, kernel_size: int, num_layers: int, seed: int = 0):
    """`{name: (fn(x, params), params)}` for the forms of the module docstring."""
    rng = np.random.default_rng(seed)
    normal = lambda *s: jnp.asarray(rng.normal(size=s) * 0.3, jnp.float32)
    dil = tuple(2**i for i in range(num_layers))
    gelu = jax.nn.gelu
    return {
        "ema_fft": (lambda x, p: ema(x, *p), [normal(dim, ndim) for _ in range(4)]),
        "fft_conv": (lambda x, p: fft_conv(x, p[: x.shape[1]], method="fft"), None),
        "tcn_dw": (
            lambda x, p: tcn(x, p[0], p[1], dilations=dil, activation=gelu, method="ref"),
            ([normal(kernel_size, dim) for _ in dil], [normal(dim) for _ in dil]),
        ),
        "tcn_dw_xla": (
            lambda x, p: tcn(x, p[0], p[1], dilations=dil, activation=gelu, method="conv"),
            ([normal(kernel_size, dim) for _ in dil], [normal(dim) for _ in dil]),
        ),
        "tcn_full": (
            lambda x, p: tcn(x, p[0], p[1], dilations=dil, activation=gelu),
            ([normal(kernel_size, dim, dim) / dim**0.5 for _ in dil], [normal(dim) for _ in dil]),
        ),
    }


def run(lengths, *, batch, dim, ndim, kernel_size, num_layers, reps):
    """Rows `{length, form, fwd_ms, fwd_bwd_ms}` for every length and form."""
    rows = []
    for length in lengths:
        x = jnp.asarray(
            np.random.default_rng(length).normal(size=(batch, length, dim)), jnp.float32
        )
        for name, (f, p) in forms(dim, ndim, kernel_size, num_layers).items():
            if p is None:  # a fixed kernel of the sequence's length
                p = jnp.asarray(np.random.default_rng(1).normal(size=(length, dim)), jnp.float32)
            fwd = jax.jit(f)
            grad = jax.jit(jax.grad(lambda x, p, f=f: jnp.sum(f(x, p)), argnums=(0, 1)))
            row = {"length": length, "form": name}
            row["fwd_ms"] = timeit(fwd, x, p, reps=reps)
            row["fwd_bwd_ms"] = timeit(grad, x, p, reps=reps)
            rows.append(row)
            print(row, flush=True)
    return rows


def table(rows) -> str:
    """Markdown: one line per length, fwd and fwd+bwd per form, and the EMA/TCN ratios."""
    names = list(dict.fromkeys(r["form"] for r in rows))
    by = {(r["length"], r["form"]): r for r in rows}
    head = ["L"] + [f"{n} fwd" for n in names] + [f"{n} f+b" for n in names]
    head += ["ema/tcn_dw fwd", "ema/tcn_dw f+b"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for length in dict.fromkeys(r["length"] for r in rows):
        f = [by[length, n]["fwd_ms"] for n in names]
        b = [by[length, n]["fwd_bwd_ms"] for n in names]
        ema_r, tcn_r = by[length, "ema_fft"], by[length, "tcn_dw"]
        ratios = [ema_r["fwd_ms"] / tcn_r["fwd_ms"], ema_r["fwd_bwd_ms"] / tcn_r["fwd_bwd_ms"]]
        cells = [str(length)] + [f"{v:.2f}" for v in f + b] + [f"{v:.2f}x" for v in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="tiny sizes; do not record")
    ap.add_argument("--lengths", default="256,1024,4096,16384")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--ndim", type=int, default=16, help="the EMA's N")
    ap.add_argument("--kernel-size", type=int, default=3)
    ap.add_argument("--num-layers", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    lengths = [64, 256] if a.small else [int(v) for v in a.lengths.split(",")]
    dim = 8 if a.small else a.dim
    rows = run(
        lengths, batch=a.batch, dim=dim, ndim=a.ndim, kernel_size=a.kernel_size,
        num_layers=a.num_layers, reps=2 if a.small else a.reps,
    )  # fmt: skip
    text = table(rows)
    print(text)
    if a.small:
        return
    load = os.getloadavg()[0]
    head = (
        f"\n## {datetime.date.today()} {jax.devices()[0].device_kind} ({os.cpu_count()} cores, "
        f"load {load:.1f}), B={a.batch} D={dim} N={a.ndim} K={a.kernel_size} "
        f"layers={a.num_layers}, best of {a.reps} (ms)\n\n"
    )
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(head + text + "\n")


if __name__ == "__main__":
    main()
