"""Names of data set variants: a builder's options, other than its defaults, written into the
name (`"lorenz96/burn_in=200,num_train=64"`) and read back. Pure functions of the options and
the builder's defaults; `lib.data.registry` stores each variant as a TFDS builder config.
"""

from __future__ import annotations

import re
from typing import Any

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.+-]*$")


def _typed(key: str, value, default):
    """`value` as the type of `default` (an int where a float is expected becomes a float)."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is not None and not isinstance(value, type(default)):
        raise TypeError(f"option {key}={value!r} should be {type(default).__name__}")
    return value


def options_text(options: dict[str, Any], defaults: dict[str, Any]) -> str:
    """`"k=v,..."` for the options that differ from `defaults`, sorted by key ("" if none).

    Raises:
      TypeError: an unknown option, or a value not of its default's type.
      ValueError: a value that cannot be part of a folder name (e.g. a path).
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; known options: {sorted(defaults)}")
    items = []
    for key in sorted(options):
        value = _typed(key, options[key], defaults[key])
        if value == defaults[key]:
            continue
        text = str(value)
        if not isinstance(value, bool | int | float | str) or not _SAFE_VALUE.match(text):
            raise ValueError(
                f"option {key}={value!r} cannot be part of a data set name (letters, digits, "
                "'_.+-' only); prepare it into its own data_dir instead"
            )
        items.append(f"{key}={text}")
    return ",".join(items)


def parse_options_text(text: str, defaults: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The options of `"k=v,..."`, each parsed to the type of its default (the inverse of
    `options_text`). `name` is the full data set name, for error messages."""
    options = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            raise ValueError(
                f"data set name {name!r}: {item!r} is not a `key=value` option "
                f"(options: {sorted(defaults)})"
            )
        default = defaults[key]
        try:
            if isinstance(default, bool):
                if value not in ("True", "False"):
                    raise ValueError(value)
                options[key] = value == "True"
            else:
                options[key] = type(default)(value) if default is not None else value
        except ValueError:
            raise ValueError(
                f"data set name {name!r}: option {key}={value!r} is not a {type(default).__name__}"
            ) from None
    return options
