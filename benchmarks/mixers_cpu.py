"""CPU benchmark of every sequence mixer op's forms, and a check of what `method="auto"` picks.

    python benchmarks/mixers_cpu.py                      # every case file, 5 timed reps
    python benchmarks/mixers_cpu.py --only scan_ssm --ops selective_scan --reps 3
    python benchmarks/mixers_cpu.py --no-record          # print only

Imports every module in benchmarks/mixer_cases/. Each exposes `CASES`, a list of dicts:

    {"op": "linear_recurrence", "length": 2048,
     "forms": {"scan": fn, "associative": fn, ...},   # zero-arg jitted callables, fwd + bwd
     "auto": "scan"}                                   # the form method="auto" picks there

(`forms` may also be a zero-arg function returning that dict, so a case file builds its
arrays only when the harness reaches it). For every op and length it prints the median time
of each form after one warm-up call (repetitions interleaved across forms), marks the automatic choice with `*`, and flags rows where
auto is more than 10% slower than the fastest form. The table, with the date and device, is
appended to benchmarks/results/mixers_cpu.md.
"""

import argparse
import datetime
import importlib.util
import os
import pathlib
import statistics
import time

import jax

HERE = pathlib.Path(__file__).resolve().parent
CASE_DIR = HERE / "mixer_cases"
RESULTS = HERE / "results" / "mixers_cpu.md"
SLACK = 1.10  # auto may be at most 10% slower than the fastest form


def load_cases(only=None):
    """(module name, CASES) for every case file, in name order; `only` filters by name."""
    out = []
    for path in sorted(CASE_DIR.glob("*.py")):
        if path.name.startswith("_") or (only and path.stem not in only):
            continue
        spec = importlib.util.spec_from_file_location(f"mixer_cases.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out.append((path.stem, module.CASES))
    return out


def median_ms(forms, reps):
    """{form: median ms}; reps are interleaved across forms so load swings hit all alike."""
    for fn in forms.values():
        jax.block_until_ready(fn())  # compile + warm up
    times = {name: [] for name in forms}
    for _ in range(reps):
        for name, fn in forms.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def run(cases, reps, ops=None):
    """Time every form; returns rows (op, length, {form: ms}, auto, flag)."""
    rows = []
    for _, case_list in cases:
        for case in case_list:
            if ops and case["op"] not in ops:
                continue
            forms = case["forms"]() if callable(case["forms"]) else case["forms"]
            times = median_ms(forms, reps)
            best = min(times.values())
            auto = case.get("auto")
            slow = auto in times and times[auto] > SLACK * best
            rows.append((case["op"], case["length"], times, auto, slow))
            shown = ", ".join(f"{k}{'*' if k == auto else ''}={v:.2f}" for k, v in times.items())
            print(f"{case['op']:>22} L={case['length']:<6} {shown}{'  AUTO SLOW' if slow else ''}")
    return rows


def to_markdown(rows, note):
    lines = [
        f"## {datetime.date.today()} · {device_name()} · {note}",
        "",
        "| op | length | forms, median fwd+bwd ms (* = auto) | auto within 10%? |",
        "|---|---:|---|---|",
    ]
    for op, length, times, auto, slow in rows:
        best = min(times, key=times.get)
        cells = ", ".join(
            f"{'**' if k == best else ''}{k}{'*' if k == auto else ''} {v:.2f}"
            f"{'**' if k == best else ''}"
            for k, v in times.items()
        )
        lines.append(f"| {op} | {length} | {cells} | {'NO' if slow else 'yes'} |")
    return "\n".join(lines) + "\n"


def device_name():
    d = jax.devices()[0]
    return f"{d.platform} ({getattr(d, 'device_kind', '?')}), {os.cpu_count()} cores"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="case file names (without .py)")
    parser.add_argument("--ops", nargs="*", help="op names to run")
    parser.add_argument("--note", default="", help="free text for the results heading")
    parser.add_argument("--no-record", action="store_true", help="do not append to results")
    args = parser.parse_args()
    rows = run(load_cases(args.only), args.reps, args.ops)
    table = to_markdown(rows, args.note or f"reps={args.reps}")
    print()
    print(table)
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        new = not RESULTS.exists()
        with open(RESULTS, "a") as f:
            if new:
                f.write("# Sequence mixer forms on the CPU (benchmarks/mixers_cpu.py)\n\n")
                f.write("Bold: fastest form. `*`: what method='auto' picks.\n\n")
            f.write(table + "\n")
        print(f"appended to {RESULTS}")
    slow = [r for r in rows if r[4]]
    if slow:
        print(f"auto is >10% slower than the fastest form in {len(slow)} row(s)")


if __name__ == "__main__":
    main()
