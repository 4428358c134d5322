"""Command line: `python -m lib.data list` and `python -m lib.data prepare NAME [--set k=v]`."""

from __future__ import annotations

import argparse
import ast
import sys

from lib.data import registry


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show every data set, prepared or not, and its size")
    p_list.add_argument("--data_dir", default=None)
    p_prep = sub.add_parser("prepare", help="build the array_record files of a data set")
    p_prep.add_argument("name", choices=registry.list_datasets(), metavar="NAME")
    p_prep.add_argument("--data_dir", default=None)
    p_prep.add_argument("--overwrite", action="store_true", help="rebuild if already prepared")
    p_prep.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a builder option"
    )
    p_info = sub.add_parser("info", help="print the metadata of a prepared data set")
    p_info.add_argument("name", choices=registry.list_datasets(), metavar="NAME")
    p_info.add_argument("--data_dir", default=None)
    args = parser.parse_args(argv)

    if args.command == "list":
        root = registry.resolve_data_dir(args.data_dir)
        print(f"data_dir: {root}")
        print(f"{'name':28s} {'state':12s} {'size':>10s}")
        for name in registry.list_datasets():
            try:
                prepared = registry.is_prepared(name, root)
                size = registry.format_size(registry.size_bytes(name, root)) if prepared else "-"
                state = "prepared" if prepared else "not prepared"
            except ImportError as e:  # A builder whose optional dependency is missing.
                state, size = f"unavailable ({e.name})", "-"
            print(f"{name:28s} {state:12s} {size:>10s}")
        return 0
    if args.command == "prepare":
        kwargs = {}
        for item in args.set:
            if "=" not in item:
                parser.error(f"--set expects KEY=VALUE, got {item!r}")
            key, value = item.split("=", 1)
            kwargs[key] = _parse_value(value)
        path = registry.prepare(args.name, args.data_dir, overwrite=args.overwrite, **kwargs)
        print(f"prepared {args.name} in {path}")
        return 0
    if args.command == "info":
        for key, value in registry.info(args.name, args.data_dir).items():
            text = repr(value)
            print(f"{key}: {text if len(text) < 200 else text[:200] + '...'}")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
