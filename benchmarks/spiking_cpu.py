"""CPU benchmark: forward+backward of a LIF network trained by BPTT vs SLTT (Meng et al. 2023).

    python benchmarks/spiking_cpu.py            # batch 32, 256 -> 512 -> 10 neurons
    python benchmarks/spiking_cpu.py --small    # batch 8, 64 -> 128 -> 10 (seconds)

For T in {8, 32, 128} it times one jitted gradient evaluation (median of `--reps` runs after a
warm-up) of a two-layer LIF network with a per-step loss, trained with full BPTT
(`lib.ops.spiking.sltt.bptt_value_and_grad`) and with online SLTT (`sltt_value_and_grad`), and reports
XLA's compiled memory analysis: scratch (temp) bytes, and peak = arguments + outputs + temp.
It prints a Markdown table and appends it, with the date and device, to
benchmarks/results/spiking_cpu.md.
"""

import argparse
import datetime
import os
import statistics
import time

import jax
import jax.numpy as jnp

from lib.ops.spiking import sltt
from lib.ops.spiking.core import lif_step

RESULTS = os.path.join(os.path.dirname(__file__), "results", "spiking_cpu.md")
LENGTHS = (8, 32, 128)


def step_loss(params, state, xc_t):
    """Two LIF layers; the loss at each step is the squared error of the output membrane."""
    v1, v2 = state
    v1, s1 = lif_step(v1, xc_t["x"] @ params["w1"], beta=0.9)
    v2 = 0.9 * v2 + s1 @ params["w2"]
    return jnp.mean((v2 - xc_t["y"]) ** 2), (v1, v2)


def problem(length, batch, n_in, hidden, n_out):
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {
        "w1": jax.random.normal(k[0], (n_in, hidden)) / n_in**0.5,
        "w2": jax.random.normal(k[1], (hidden, n_out)) / hidden**0.5,
    }
    xs = {
        "x": (jax.random.uniform(k[2], (batch, length, n_in)) < 0.2).astype(jnp.float32),
        "y": jax.random.normal(k[3], (batch, length, n_out)),
    }
    state0 = (jnp.zeros((batch, hidden)), jnp.zeros((batch, n_out)))
    return params, state0, xs


def measure(method, length, dims, reps):
    params, state0, xs = problem(length, *dims)
    trainer = {"bptt": sltt.bptt_value_and_grad, "sltt": sltt.sltt_value_and_grad}[method]
    fn = jax.jit(lambda p, s, x: trainer(step_loss, p, s, x))
    compiled = fn.lower(params, state0, xs).compile()
    mem = compiled.memory_analysis()
    jax.block_until_ready(fn(params, state0, xs))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(params, state0, xs))
        times.append((time.perf_counter() - t0) * 1e3)
    temp = mem.temp_size_in_bytes if mem is not None else float("nan")
    peak = temp + mem.argument_size_in_bytes + mem.output_size_in_bytes if mem else float("nan")
    return statistics.median(times), temp, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes for a quick check")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    dims = (8, 64, 128, 10) if args.small else (32, 256, 512, 10)
    rows = []
    for length in LENGTHS:
        for method in ("bptt", "sltt"):
            ms, temp, peak = measure(method, length, dims, args.reps)
            rows.append((length, method, ms, temp / 2**10, peak / 2**10))
            print(f"T={length:4d} {method}: {ms:8.2f} ms  temp {temp / 2**10:9.1f} KiB")
    device = jax.devices()[0]
    header = (
        f"\n## {datetime.date.today().isoformat()} · {device.platform} ({device.device_kind}), "
        f"{os.cpu_count()} cores · batch={dims[0]}, sizes {dims[1]}->{dims[2]}->{dims[3]}"
        f"{' (--small)' if args.small else ''}\n\n"
        "| T | method | fwd+bwd ms (median) | temp KiB | peak KiB (args+out+temp) |\n"
        "|---:|---|---:|---:|---:|\n"
    )
    table = header + "".join(
        f"| {t} | {m} | {ms:.2f} | {temp:.1f} | {peak:.1f} |\n" for t, m, ms, temp, peak in rows
    )
    print(table)
    if not args.no_save:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        new = not os.path.exists(RESULTS)
        with open(RESULTS, "a") as f:
            if new:
                f.write("# LIF forward+backward: BPTT vs SLTT (benchmarks/spiking_cpu.py)\n")
            f.write(table)


if __name__ == "__main__":
    main()
