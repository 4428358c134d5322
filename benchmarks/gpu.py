"""GPU benchmark of the scan kernels against pure-JAX forms and peers (issue: lib/kernels).

Run on a GPU machine:   python benchmarks/gpu.py            (full shapes, appends to results)
Check the script here:  python benchmarks/gpu.py --small    (tiny shapes, interpret mode on CPU)

For each workload it prints the median time of forward and forward+backward for every form,
the ratio to the peer, and the fraction of the physical floor: bytes that must move at the
measured device copy bandwidth, or FLOPs at the measured bf16 matmul rate, whichever is larger.
Peers: cuDNN attention through `jax.nn.dot_product_attention`, and, when torch and
flash-linear-attention (`fla`) import, fla's `chunk_gla` / `chunk_simple_gla` Triton kernels.
"""

import argparse
import datetime
import os
import statistics
import time

import jax
import jax.numpy as jnp

from lib.kernels.gla import gla_pallas
from lib.kernels.lif import lif_pallas
from lib.kernels.linear_recurrence import linear_recurrence_pallas
from lib.kernels.selective_scan import selective_scan_pallas

RESULTS = os.path.join(os.path.dirname(__file__), "results", "gpu.md")


def timeit(fn, *args, reps=20):
    """Median wall time (ms) of a jitted fn after warm-up."""
    out = fn(*args)
    jax.block_until_ready(out)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fwd_bwd(f):
    """Jitted forward+backward of sum(f(*args)) w.r.t. all args."""
    return jax.jit(jax.grad(lambda *a: jnp.sum(f(*a).astype(jnp.float32)), argnums=tuple(range(3))))


def measure_floor(small):
    """Device copy bandwidth (bytes/s) and bf16 matmul rate (FLOP/s)."""
    n = 1 << (20 if small else 28)
    x = jnp.ones((n,), jnp.float32)
    copy = jax.jit(lambda x: x + 1.0)
    ms = timeit(copy, x, reps=10)
    bw = 2 * 4 * n / (ms / 1e3)
    m = 256 if small else 8192
    a = jnp.ones((m, m), jnp.bfloat16)
    mm = jax.jit(lambda a: a @ a)
    ms = timeit(mm, a, reps=10)
    return bw, 2 * m**3 / (ms / 1e3)


def row(table, workload, form, ms_f, ms_fb, floor_f, floor_fb, peer=None):
    ratio = "" if peer is None else f"{ms_fb / peer:.2f}"
    table.append(
        f"| {workload} | {form} | {ms_f:.3f} | {ms_fb:.3f} | {ratio} | "
        f"{100 * floor_f / ms_f:.0f}% | {100 * floor_fb / ms_fb:.0f}% |"
    )


def bench_linear_recurrence(table, bw, small, interpret):
    from lib.ops.scan.linear import linear_recurrence

    b, length, d = (2, 256, 64) if small else (8, 4096, 2048)
    key = jax.random.PRNGKey(0)
    a = jax.nn.sigmoid(jax.random.normal(key, (b, length, d)))
    x = jax.random.normal(key, (b, length, d))
    h0 = jnp.zeros((b, d))
    nbytes = 4 * b * length * d
    floor_f, floor_fb = 3 * nbytes / bw * 1e3, 8 * nbytes / bw * 1e3
    forms = {
        "lax.scan": lambda a, x, h0: linear_recurrence(a, x, h0, method="scan"),
        "associative": lambda a, x, h0: linear_recurrence(a, x, h0, method="associative"),
        "pallas": lambda a, x, h0: linear_recurrence_pallas(a, x, h0, interpret=interpret),
    }
    for name, f in forms.items():
        row(table, f"linrec B{b} L{length} D{d} fp32", name, timeit(jax.jit(f), a, x, h0),
            timeit(fwd_bwd(f), a, x, h0), floor_f, floor_fb)  # fmt: skip


def bench_lif(table, bw, small, interpret):
    from lib.ops.spiking.core import lif

    t, b, n = (32, 4, 64) if small else (256, 64, 4096)
    cur = jax.random.normal(jax.random.PRNGKey(1), (b, t, n))
    sg = lambda x: 1.0 / (1.0 + 10.0 * jnp.abs(x)) ** 2
    nbytes = 4 * b * t * n
    floor_f, floor_fb = 2 * nbytes / bw * 1e3, 5 * nbytes / bw * 1e3
    forms = {
        "lax.scan": lambda c, beta, v0: lif(c, beta=beta, v0=v0),
        "pallas": lambda c, beta, v0: lif_pallas(
            c, beta=beta, v0=v0, surrogate_grad=sg, interpret=interpret
        ),
    }
    beta, v0 = jnp.full((n,), 0.9), jnp.zeros((b, n))
    for name, f in forms.items():
        row(table, f"LIF T{t} B{b} N{n} fp32", name, timeit(jax.jit(f), cur, beta, v0),
            timeit(fwd_bwd(f), cur, beta, v0), floor_f, floor_fb)  # fmt: skip


def bench_selective_scan(table, bw, small, interpret):
    from lib.ops.ssm.selective import selective_scan

    b, length, d, n = (1, 128, 32, 4) if small else (8, 4096, 2048, 16)
    ks = jax.random.split(jax.random.PRNGKey(2), 4)
    u = jax.random.normal(ks[0], (b, length, d), jnp.bfloat16)
    delta = jax.nn.softplus(jax.random.normal(ks[1], (b, length, d))).astype(jnp.bfloat16)
    A = -jnp.exp(jax.random.normal(ks[2], (d, n)))
    B = jax.random.normal(ks[3], (b, length, n), jnp.bfloat16)
    nbytes = 2 * b * length * d * 3
    floor_f, floor_fb = nbytes / bw * 1e3, 3 * nbytes / bw * 1e3
    forms = {
        "jax (auto)": lambda u, dl, A: selective_scan(u, dl, A, B, B),
        "pallas": lambda u, dl, A: selective_scan_pallas(u, dl, A, B, B, interpret=interpret),
    }
    for name, f in forms.items():
        row(table, f"selective scan B{b} L{length} D{d} N{n} bf16", name,
            timeit(jax.jit(f), u, delta, A), timeit(fwd_bwd(f), u, delta, A), floor_f, floor_fb)  # fmt: skip


def bench_gla(table, bw, flops, small, interpret):
    from lib.ops.linear_attention.gated import gla

    b, t, h, dk = (1, 128, 2, 16) if small else (8, 4096, 16, 128)
    ks = jax.random.split(jax.random.PRNGKey(3), 4)
    q, k, v = (jax.random.normal(kk, (b, t, h, dk), jnp.bfloat16) for kk in ks[:3])
    g = jax.nn.log_sigmoid(jax.random.normal(ks[3], (b, t, h, dk)) + 3.0)
    mm = 2 * b * h * t * dk * dk * 4  # state matmuls + intra-chunk (chunk 64) matmuls, roughly
    nbytes = 2 * b * t * h * dk * 5
    floor_f = max(nbytes / bw, mm / flops) * 1e3
    floor_fb = 3 * floor_f
    attn = lambda q, k, v: jax.nn.dot_product_attention(
        q, k, v, is_causal=True, implementation=None if small else "cudnn"
    )
    peer = timeit(fwd_bwd(attn), q, k, v)
    forms = {
        "jax chunked": lambda q, k, v: gla(q, k, v, g, method="chunked"),
        "pallas": lambda q, k, v: gla_pallas(q, k, v, g, interpret=interpret),
        "cuDNN softmax attention": attn,
    }
    for name, f in forms.items():
        row(table, f"GLA B{b} T{t} H{h} D{dk} bf16", name, timeit(jax.jit(f), q, k, v),
            timeit(fwd_bwd(f), q, k, v), floor_f, floor_fb, peer)  # fmt: skip
    try:
        import torch
        from fla.ops.gla import chunk_gla

        tq, tk, tv = (
            torch.randn(b, t, h, dk, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            for _ in range(3)
        )
        tg = torch.nn.functional.logsigmoid(
            torch.randn(b, t, h, dk, device="cuda") + 3
        ).requires_grad_()

        def run_fla(backward):
            o, _ = chunk_gla(tq, tk, tv, tg)
            if backward:
                o.float().sum().backward()
            torch.cuda.synchronize()

        def med(backward):
            run_fla(backward)
            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                run_fla(backward)
                ts.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(ts)

        row(table, f"GLA B{b} T{t} H{h} D{dk} bf16", "fla chunk_gla (peer)", med(False), med(True),
            floor_f, floor_fb, peer)  # fmt: skip
    except Exception as e:  # noqa: BLE001  (a missing peer is reported, not fatal)
        table.append(f"| GLA | fla chunk_gla | not run: {type(e).__name__}: {e} | | | | |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny shapes; interpret mode off-GPU")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    interpret = jax.default_backend() not in ("gpu", "cuda", "tpu")
    bw, flops = measure_floor(args.small)
    table = [
        "| workload | form | fwd ms | fwd+bwd ms | fwd+bwd / peer | fwd % of floor | fwd+bwd % of floor |",
        "|---|---|---|---|---|---|---|",
    ]
    bench_linear_recurrence(table, bw, args.small, interpret)
    bench_lif(table, bw, args.small, interpret)
    bench_selective_scan(table, bw, args.small, interpret)
    bench_gla(table, bw, flops, args.small, interpret)
    device = jax.devices()[0].device_kind
    head = (
        f"\n## {datetime.date.today()} on {device} (jax {jax.__version__}{', small' if args.small else ''})\n"
        f"copy bandwidth {bw / 1e9:.0f} GB/s, bf16 matmul {flops / 1e12:.0f} TFLOP/s\n\n"
    )
    text = head + "\n".join(table) + "\n"
    print(text)
    if not args.no_save:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
