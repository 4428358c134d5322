"""Shared by the research launch scripts: results as a Markdown table and a JSON file."""

import json
import os


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a Markdown table (columns: all keys in first-seen order; a row missing
    a key gets an empty cell), floats to 3 significant digits."""
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def report(results: dict[str, list[dict]], workdir: str | None = None) -> str:
    """Print each named table; with `workdir`, also write `results.json` and `results.md` there.

    Args:
      results: table name -> rows.
      workdir: output folder (created), or None to only print.

    Returns:
      The Markdown text printed.
    """
    text = "\n\n".join(f"### {name}\n\n{markdown_table(rows)}" for name, rows in results.items())
    print(text, flush=True)
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(workdir, "results.md"), "w") as f:
            f.write(text + "\n")
    return text
