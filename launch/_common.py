"""The command line every launch script shares: `--config` (with `--config.a.b=value`
overrides, `ml_collections.config_flags`), `--workdir`, `--dry_run`, `--list`, and exit codes.

A launcher calls `main(run, ...)` under `if __name__ == "__main__":`; the flags are defined
there, not at import, so tests and other scripts can import several launchers' `run` functions
in one process. `run(config, workdir)` trains; its return value is not the exit status: a run
that returns exits 0, an exception exits 1 (a data set that is not prepared, a config that
differs from the workdir's, a checkpoint that does not fit or cannot be written print their
message without a traceback), and a bad command line prints one line and the usage, exit 1.
"""

import ast
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags, logging

REPO = Path(__file__).resolve().parents[1]


def _paragraphs(doc: str) -> list[str]:
    return [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]


def describe_configs(project: str | None = None, root: Path = REPO) -> str:
    """Every `research/<project>/configs/*.py` (or only `project`'s): the first paragraph of
    its docstring and the `arg` its `get_config` accepts (from `get_config`'s docstring or a
    paragraph of the module's starting with `arg`), read from the files without importing."""
    lines = []
    for path in sorted((root / "research").glob("*/configs/*.py")):
        if path.name == "__init__.py" or (project and path.parts[-3] != project):
            continue
        tree = ast.parse(path.read_text())
        doc = _paragraphs(ast.get_docstring(tree) or "")
        lines.append(f"{path.relative_to(root)}\n    {doc[0] if doc else '(no docstring)'}")
        getter = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_config"]
        about_arg = [p for p in doc if p.startswith("`arg")]
        if getter and ast.get_docstring(getter[0]):
            about_arg.insert(0, _paragraphs(ast.get_docstring(getter[0]))[0].removeprefix("Args: "))
        if about_arg:
            lines.append(f"    arg: {about_arg[0]}")
    return "\n".join(lines)


def _parse_or_usage(argv):
    """absl flags parsing; a config or flag error prints one line and the usage, exit 1."""
    from lib.train.config import parse_flags

    try:
        return parse_flags(flags.FLAGS, argv)
    except Exception as e:  # flags.Error and the config errors parse_flags restates
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        app.usage(shorthelp=True, detailed_error=message, exitcode=1)


def _register_for_help(names) -> None:
    """List our flags under the main module in `--helpshort` and usage messages."""
    main = sys.argv[0]
    for name in names:
        flags.FLAGS.register_key_flag_for_module(main, flags.FLAGS[name])


def main(
    run: Callable,
    config_help: str,
    *,
    workdir_help: str = "where results.json / results.md go (default: only print)",
    workdir_required: bool = False,
    project: str | None = None,
) -> None:
    """Command-line entry of a launch script: parse the flags, then `run(config, workdir)`.

    Args:
      run: `run(config, workdir)`; its return value is ignored (exit 0 when it returns).
      config_help: the `--config` flag's help (which config files this launcher takes).
      workdir_help: the `--workdir` flag's help.
      workdir_required: whether a run needs `--workdir` (`--dry_run` and `--list` do not).
      project: the folder under research/ whose configs `--list` shows (None: all).
    """
    from lib.train.config import define_config_flag

    config = define_config_flag(help_string=config_help)
    workdir = flags.DEFINE_string("workdir", None, workdir_help)
    dry_run = flags.DEFINE_bool(
        "dry_run", False, "print the resolved config (after overrides) and exit without running"
    )
    list_configs = flags.DEFINE_bool(
        "list", False, "list the projects' config files and the `arg` each accepts, then exit"
    )
    _register_for_help(["config", "workdir", "dry_run", "list"])

    def _main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments {argv[1:]} (flags look like --name=value)")
        if list_configs.value:
            print(describe_configs(project))
            return None
        if config.value is None:
            raise app.UsageError("--config is required (--list shows the config files)")
        if dry_run.value:
            print(config.value.to_json_best_effort(indent=2, sort_keys=True))
            return None
        if workdir_required and not workdir.value:
            raise app.UsageError("--workdir is required (it holds checkpoints and results)")
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
        from lib.data.registry import DatasetNotPreparedError
        from lib.train.checkpoint import CheckpointMismatchError, CheckpointWriteError
        from lib.train.workdir import ConfigChangedError

        try:
            run(config.value, workdir.value)
        except (
            DatasetNotPreparedError, ConfigChangedError, CheckpointMismatchError,
            CheckpointWriteError,
        ) as e:  # fmt: skip
            # errors whose message is the whole story (what is wrong, the way out): no traceback
            print(f"error: {e}", file=sys.stderr)
            return 1
        return None  # app.run exits with main's return value: None is status 0

    app.run(_main, flags_parser=_parse_or_usage)
