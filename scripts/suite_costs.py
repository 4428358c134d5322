"""Where the test suite's time goes: per project and per area, from a pytest JUnit XML report.

  bash scripts/test.sh --junitxml=/tmp/suite.xml
  python scripts/suite_costs.py /tmp/suite.xml            # Markdown tables, largest first

A test's time is its setup + call + teardown as pytest records it (module fixtures are paid by
the first test that uses them); with `-n 2` the wall time is about half the summed time.
"""

import argparse
import collections
import xml.etree.ElementTree as ET


def area(classname: str) -> str:
    """tests.research.test_mamba.TestX -> research/mamba; tests.ops.scan.test_linear -> ops/scan."""
    parts = classname.split(".")
    if parts and parts[0] == "tests":
        parts = parts[1:]
    if not parts:
        return "?"
    if parts[0] == "research" and len(parts) > 1:
        return "research/" + parts[1].removeprefix("test_")
    if parts[0] in ("ops", "nn") and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}"
    if len(parts) > 1 and not parts[0].startswith("test_"):
        return parts[0]  # tests/train/test_loop.py -> train
    return parts[0].removeprefix("test_")  # tests/test_colabs.py -> colabs


def costs(path: str) -> tuple[dict, dict, float]:
    """Per area: (seconds, tests); per outcome: count; total seconds."""
    seconds, counts, outcomes = collections.Counter(), collections.Counter(), collections.Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        key = area(case.get("classname", ""))
        seconds[key] += float(case.get("time", 0.0))
        counts[key] += 1
        tags = {child.tag for child in case}
        outcome = next((t for t in ("failure", "error", "skipped") if t in tags), "passed")
        outcomes[outcome] += 1
    table = {k: (seconds[k], counts[k]) for k in seconds}
    return table, dict(outcomes), sum(seconds.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit_xml")
    args = parser.parse_args()
    table, outcomes, total = costs(args.junit_xml)
    print(f"total {total:.0f} s of test time; outcomes {outcomes}\n")
    print("| area | tests | seconds |\n|---|---|---|")
    for key, (secs, n) in sorted(table.items(), key=lambda kv: -kv[1][0]):
        print(f"| {key} | {n} | {secs:.1f} |")


if __name__ == "__main__":
    main()
