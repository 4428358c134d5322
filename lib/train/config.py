"""Configs: `ml_collections.ConfigDict` Python files with `get_config(arg)`, plus overrides.

A config spec is `path/to/config.py` or `path/to/config.py:arg` (a dotted module name works
too). Overrides are `a.b=value` strings, as given on the command line (`--config.a.b=value`).
Every launcher and `load_config` parse them the same way: with `ml_collections.config_flags`
(`parse_flags`), whose errors are restated here to name the key: an unknown key with the
nearest existing one, a value of the wrong type with the type the field holds.
"""

import difflib
import importlib.util
import os
import re

import ml_collections
from absl import flags
from ml_collections import config_flags


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
    # "bfloat16": compute in bf16, float32 params and optimizer state (lib.nn.precision)
    c.train.compute_dtype = "float32"
    c.train.start_over = False  # workdir holds another config's run: move it aside, not stop
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


def steps_from_epochs(c) -> None:
    """Set `c.train.num_steps` to `c.data.epochs` passes of full batches over
    `c.data.train_examples` examples (`epochs * (train_examples // batch_size)`), and
    `c.optimizer.warmup_steps` to `num_steps // 10 + 1`, both as references: overriding
    `data.epochs`, `data.batch_size` or `data.train_examples` (e.g. on the command line) moves
    them, while setting `train.num_steps` or `optimizer.warmup_steps` replaces them. For
    in-memory sets trained by epochs (see `lib.data.arrays.ArrayBatches`)."""
    d = c.data
    steps_per_epoch = d.get_ref("train_examples") // d.get_ref("batch_size")
    c.train.num_steps = d.get_ref("epochs") * steps_per_epoch
    c.optimizer.warmup_steps = c.train.get_ref("num_steps") // 10 + 1


def parse_arg(arg, choices=None, flags=(), *, joined=(), exclusive=()) -> dict:
    """The words of a config file's `get_config(arg)` argument, e.g. "lorenz96,gru,smoke".

    Words are comma-separated; each is the value of one of `choices` or one of `flags`.

    Args:
      arg: the argument (None or "": every choice at its default, no flag).
      choices: name -> (allowed values, default), in order; a word is the value of the first
        choice (in that order) that allows it and is still unset.
      flags: words that switch something on.
      joined: names of choices whose value may join several allowed values with "+".
      exclusive: groups of flags that cannot be given together.

    Returns:
      {choice name: value, ..., flag: True or False, ...}.

    Raises:
      ValueError: naming `arg` and every word it may hold.
    """
    choices = dict(choices or {})
    out = {name: default for name, (_, default) in choices.items()}
    out.update({flag: False for flag in flags})
    given = set()
    for word in (arg or "").split(","):
        if not word:
            continue
        if word in flags and not out[word]:
            out[word] = True
            continue
        for name, (values, _) in choices.items():
            parts = word.split("+") if name in joined else [word]
            if name not in given and all(p in values for p in parts):
                out[name] = word
                given.add(name)
                break
        else:
            wanted = [f"one of {list(values)} ({name})" for name, (values, _) in choices.items()]
            if flags:
                wanted.append(f"{'optionally ' if wanted else ''}any of {list(flags)}")
            raise ValueError(f"config arg {arg!r}: expected {', '.join(wanted) or 'nothing'}")
    for group in exclusive:
        on = [flag for flag in group if out[flag]]
        if len(on) > 1:
            raise ValueError(f"config arg {arg!r}: {' and '.join(on)} exclude each other")
    return out


def define_config_flag(
    flag_values: flags.FlagValues = flags.FLAGS,
    *,
    name: str = "config",
    help_string: str = "path/to/config.py[:arg]; override fields with --config.a.b=value",
    sys_argv=None,
):
    """Defines the `--config` flag (`ml_collections.config_flags`) on `flag_values`.

    Its value is the locked ConfigDict of `get_config(arg)` with every `--config.a.b=value`
    applied. `sys_argv` is the command line the overrides are read from (default `sys.argv`).
    Returns the flag holder (`.value` is the config).
    """
    return config_flags.DEFINE_config_file(
        name, None, help_string, flag_values=flag_values, sys_argv=sys_argv
    )


def parse_flags(flag_values: flags.FlagValues, argv) -> list[str]:
    """Parses `argv` into `flag_values` (absl), restating config errors so they name the key.

    Returns the arguments that are not flags (absl's result, `argv[0]` first).

    Raises:
      FileNotFoundError: the config file does not exist.
      KeyError: an override names a key the config does not have (with the nearest key).
      TypeError: an override's value does not parse as the type of the field it sets.
      absl `flags.Error` or the config file's own error otherwise (unknown flags, a bad
      `arg` for `get_config`...).
    """
    spec, _ = _config_args(flags.FLAGS.read_flags_from_files(list(argv), force_gnu=False))
    if spec is not None:
        path = spec.partition(":")[0]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file {path!r} not found")
    try:
        return flag_values(list(argv))
    except Exception as error:  # config_flags raises KeyError, AttributeError, ValueError...
        raise _explain(error, argv) from None


def load_config(spec: str, overrides=()) -> ml_collections.ConfigDict:
    """Load `path/to/config.py[:arg]` and apply `a.b=value` overrides, as a launcher does.

    The overrides go through the same `--config` flag as on the command line
    (`define_config_flag` on a fresh `absl.flags.FlagValues`, then `parse_flags`).

    Args:
      spec: a config file path or dotted module, optionally followed by `:arg` for
        `get_config(arg)`.
      overrides: strings `"a.b=value"` (a leading `--config.` or `config.` is stripped).

    Returns:
      The locked ConfigDict (adding new keys later raises).

    Raises:
      FileNotFoundError / KeyError / TypeError / ValueError naming the spec or key.
    """
    path, sep, arg = spec.partition(":")
    argv = ["load_config", f"--config={config_path(path)}{sep}{arg}"]
    for item in overrides:
        key, eq, text = item.removeprefix("--").removeprefix("config.").partition("=")
        if not eq or not key:
            raise ValueError(f"config override {item!r} must look like --config.a.b=value")
        argv.append(f"--config.{key}={text}")
    flag_values = flags.FlagValues()
    holder = define_config_flag(flag_values, sys_argv=argv)
    parse_flags(flag_values, argv)
    return holder.value


def config_path(path: str) -> str:
    """The file of a config given as a path or as a dotted module name."""
    if os.path.isfile(path) or path.endswith(".py"):
        return path
    try:
        found = importlib.util.find_spec(path)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        raise FileNotFoundError(f"config {path!r} is neither a file nor a module")
    return found.origin


def _config_args(argv, name: str = "config"):
    """The config spec and the (key, text) overrides in `argv` (text None: a bare flag)."""
    spec, overrides = None, []
    for i, arg in enumerate(argv[1:], 1):
        if re.match(rf"^--?{name}=", arg):
            spec = arg.split("=", 1)[1]
        elif re.match(rf"^--?{name}$", arg) and i + 1 < len(argv):
            spec = argv[i + 1]
        elif m := re.match(rf"^--?(no)?{name}\.([^=]+)(=(.*))?$", arg, re.S):
            overrides.append((m.group(2), "false" if m.group(1) else m.group(4)))
    return spec, overrides


def _explain(error: Exception, argv, name: str = "config") -> Exception:
    """The error restated to name the config key at fault, or `error` itself."""
    spec, overrides = _config_args(flags.FLAGS.read_flags_from_files(list(argv), force_gnu=False))
    if spec is None:
        return error
    path, sep, arg = spec.partition(":")
    try:
        module = _import_config_module(path)
        if not hasattr(module, "get_config"):
            return ValueError(f"config {path!r} has no get_config() function")
        config = module.get_config(arg) if sep else module.get_config()
    except Exception as e:  # the config file's own error (e.g. a bad `arg`)
        text = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
        try:
            return type(e)(f"config {spec!r}: {text}")
        except Exception:
            return ValueError(f"config {spec!r}: {text}")
    if not isinstance(config, ml_collections.ConfigDict):
        return TypeError(f"get_config() in {path!r} must return a ConfigDict, got {type(config)}")
    for key, text in overrides:
        problem = _check_override(config, key, text)
        if problem is not None:
            return problem
    return error


_PARSERS = {bool: flags.BooleanParser(), int: flags.IntegerParser(), float: flags.FloatParser()}


def _check_override(config, key: str, text):
    """An exception describing why `--config.key=text` cannot apply to `config`, or None."""
    try:
        parent, leaf = _resolve(config, key)
    except KeyError as e:
        return e
    kind = parent.get_type(leaf)
    if isinstance(kind, type) and issubclass(kind, ml_collections.ConfigDict):
        return TypeError(f"config key {key!r} is a section; set its fields ({key}.name=...)")
    if kind is list:
        return TypeError(
            f"config key {key!r} holds a list, which the command line cannot set; "
            "make it a tuple in the config file"
        )
    if kind is type(None):
        return TypeError(
            f"config key {key!r} is None with no type; give it a typed default in the config "
            "file (e.g. ml_collections.config_dict.placeholder(int))"
        )
    if kind in _PARSERS and text is not None:
        try:
            _PARSERS[kind].parse(text)
        except (TypeError, ValueError):
            hint = " (use true/false)" if kind is bool else ""
            return TypeError(
                f"config key {key!r} is {'a bool' if kind is bool else kind.__name__}; "
                f"cannot parse {text!r}{hint}"
            )
    return None


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
            found = f"{where} has keys {keys}" if keys else f"{where} is not a section"
            raise KeyError(f"unknown config key {key!r}: {found}{hint}")
        if i == len(parts) - 1:
            return node, part
        node = node[part]
        path.append(part)
    raise KeyError(key)


def _import_config_module(path: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} not found")
    name = "_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_to_dict(config) -> dict:
    """A plain nested dict (for logging and `config.json` in the workdir)."""
    return config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
