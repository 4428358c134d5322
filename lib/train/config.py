"""Configs: `ml_collections.ConfigDict` Python files with `get_config(arg)`, plus overrides.

A config spec is `path/to/config.py` or `path/to/config.py:arg` (a dotted module name works
too). Overrides are `a.b=value` strings, as given on the command line (`--config.a.b=value`).
Unknown keys and values of the wrong type are rejected with a message naming the key.
"""

import ast
import difflib
import importlib
import importlib.util
import os

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    """The training defaults every project config starts from (then fills `model`, `data`).

    Sections: `seed`, `project` (which `research/<project>` builds model and data),
    `train` (steps, logging, evaluation, checkpoints), `mesh` (device mesh), `optimizer`
    (see `lib.train.optim.make_optimizer`), `model` and `data` (free, owned by the project).
    """
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.project = ""
    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 1000
    c.train.log_every = 50
    c.train.eval_every = 500  # 0: evaluate only at the end
    c.train.eval_batches = 0  # 0: the whole eval iterator
    c.train.checkpoint_every = 500  # 0: only at the end and on SIGTERM/SIGINT
    c.train.keep_checkpoints = 3
    c.train.async_checkpointing = True
    c.train.progress_bar = True
    c.train.plot = True
    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1
    c.mesh.fsdp = 1
    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = 100
    c.optimizer.decay_steps = 0  # 0: decay over train.num_steps
    c.optimizer.weight_decay = 0.01
    c.optimizer.grad_clip_norm = 1.0
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.eps = 1e-8
    c.model = ml_collections.ConfigDict()
    c.data = ml_collections.ConfigDict()
    return c


def load_config(spec: str, overrides=()) -> ml_collections.ConfigDict:
    """Load `path/to/config.py[:arg]` and apply `a.b=value` overrides.

    Args:
      spec: a config file path or dotted module, optionally followed by `:arg` for
        `get_config(arg)`.
      overrides: strings `"a.b=value"` (a leading `--config.` or `config.` is stripped).

    Returns:
      The locked ConfigDict (adding new keys later raises).

    Raises:
      FileNotFoundError / ValueError / TypeError with the offending spec or key in the message.
    """
    path, _, arg = spec.partition(":")
    module = _import_config_module(path)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config {path!r} has no get_config() function")
    config = module.get_config(arg) if arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise TypeError(f"get_config() in {path!r} must return a ConfigDict, got {type(config)}")
    apply_overrides(config, overrides)
    config.lock()
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> None:
    """Set `a.b=value` overrides in place; values are parsed to the existing field's type."""
    for item in overrides:
        key, sep, text = item.removeprefix("--").removeprefix("config.").partition("=")
        if not sep:
            raise ValueError(f"config override {item!r} must look like --config.a.b=value")
        parent, leaf = _resolve(config, key)
        old = parent[leaf]
        value = parse_value(text, old, key)
        try:
            parent[leaf] = value
        except TypeError as e:
            raise TypeError(
                f"config key {key!r} holds {type(old).__name__}; cannot set it to {text!r} ({e})"
            ) from None


def parse_value(text: str, old, key: str = "?"):
    """Parse a command-line string to the type of the current value `old`."""
    if isinstance(old, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise TypeError(f"config key {key!r} is a bool; got {text!r} (use true/false)")
    if isinstance(old, str):
        return text
    if isinstance(old, int | float):
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise TypeError(
                f"config key {key!r} is {type(old).__name__}; cannot parse {text!r}"
            ) from None
        if isinstance(old, int) and not (isinstance(value, int) and not isinstance(value, bool)):
            raise TypeError(f"config key {key!r} is int; got {text!r}")
        if isinstance(old, float) and not isinstance(value, int | float):
            raise TypeError(f"config key {key!r} is float; got {text!r}")
        return type(old)(value)
    if isinstance(old, ml_collections.ConfigDict):
        raise TypeError(f"config key {key!r} is a section; set its fields ({key}.name=...)")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text
    if isinstance(old, tuple | list) and isinstance(value, tuple | list):
        return type(old)(value)
    if old is not None and not isinstance(value, type(old)):
        raise TypeError(f"config key {key!r} is {type(old).__name__}; got {text!r}")
    return value


def _resolve(config, key: str):
    """Return (parent ConfigDict, leaf name) for a dotted key; unknown keys raise KeyError."""
    parts = key.split(".")
    node, path = config, []
    for i, part in enumerate(parts):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            keys = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            where = ".".join(path) or "the config"
            close = difflib.get_close_matches(part, keys, n=1)
            hint = f"; did you mean {'.'.join([*path, close[0]])!r}?" if close else ""
            raise KeyError(f"unknown config key {key!r}: {where} has keys {keys}{hint}")
        if i == len(parts) - 1:
            return node, part
        node = node[part]
        path.append(part)
    raise KeyError(key)


def _import_config_module(path: str):
    if os.path.isfile(path):
        name = "_config_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    if path.endswith(".py"):
        raise FileNotFoundError(f"config file {path!r} not found")
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        raise FileNotFoundError(f"config {path!r} is neither a file nor a module") from None


def config_to_dict(config) -> dict:
    """A plain nested dict (for logging and `config.json` in the workdir)."""
    return config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
