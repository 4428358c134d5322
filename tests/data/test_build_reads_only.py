"""`build(config)` only reads data: a missing data set stops with the exact prepare command,
and a prepared one is opened without writing anything under the data folder.

One case per project (its smoke config); add a project by adding its config to PROJECTS.
"""

import importlib

import pytest

import lib.data as data
from lib.data.__main__ import main as cli_main
from lib.data.testing import assert_unchanged, snapshot
from lib.train.config import load_config

PROJECTS = {
    "deconstructing": "research/deconstructing/configs/forecast.py:lorenz96,gru,smoke",
    "universal_transformer": "research/universal_transformer/configs/algorithmic.py:copy,ut,smoke",
}


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_build_never_prepares_and_never_writes(project, tmp_path):
    data_dir = tmp_path / "data"
    config = load_config(PROJECTS[project], [f"data.data_dir={data_dir}"])
    build = importlib.import_module(f"research.{project}.model").build

    with pytest.raises(data.DatasetNotPreparedError) as e:
        build(config)
    assert not data_dir.exists()  # nothing prepared, not even a folder
    command = str(e.value).splitlines()[-1].strip()
    assert command.startswith("python -m lib.data prepare ") and f"--data_dir {data_dir}" in command

    assert cli_main(command.split()[3:]) == 0  # the printed command is all it takes
    before = snapshot(data_dir)
    built = build(config)
    batch = next(iter(built["train_data"]))
    next(iter(built["eval_data"]()))
    assert batch["inputs"].shape[0] == config.data.batch_size
    assert_unchanged(data_dir, before)
