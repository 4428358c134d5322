"""lib.train.study: variants x seeds through a run function; rows, summary and results files."""

import json
import os

import ml_collections
import numpy as np
import pytest

from lib.train import study


def _config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = ml_collections.ConfigDict({"mixer": "gru", "dim": 8})
    return c


def test_run_study_rows_summary_and_files(tmp_path):
    seen = []

    def run(config, workdir):  # a stand-in for launch.train.run: metrics from the config
        seen.append((config.model.mixer, config.model.dim, config.seed, workdir))
        return {"step": 3, "eval_loss": config.model.dim + 0.5 * config.seed, "note": "ok"}

    base = _config()
    rows = study.run_study(
        base, str(tmp_path), variants=[("a", {"model.dim": 16}), ("b", {"model.mixer": "gla"})],
        run=run, seeds=(0, 1, 2), keys=("eval_loss",),
    )  # fmt: skip
    assert base.model.dim == 8 and base.seed == 0  # the base config is not changed
    assert [(m, d, s) for m, d, s, _ in seen] == [
        ("gru", 16, 0), ("gru", 16, 1), ("gru", 16, 2), ("gla", 8, 0), ("gla", 8, 1), ("gla", 8, 2)
    ]  # fmt: skip
    assert seen[4][3] == os.path.join(str(tmp_path), "b", "seed1")
    assert [r["variant"] for r in rows] == ["a"] * 3 + ["b"] * 3
    saved = json.load(open(tmp_path / "results.json"))
    summary = {r["variant"]: r for r in saved["summary"]}
    vals = np.array([16.0, 16.5, 17.0])
    assert summary["a"]["seeds"] == 3
    np.testing.assert_allclose(summary["a"]["eval_loss_mean"], vals.mean())
    np.testing.assert_allclose(summary["a"]["eval_loss_std"], np.std(vals, ddof=1))
    assert (summary["b"]["eval_loss_min"], summary["b"]["eval_loss_max"]) == (8.0, 9.0)
    assert "| variant |" in (tmp_path / "results.md").read_text()


def test_run_study_errors():
    run = lambda c, w: {}
    with pytest.raises(KeyError, match="model.width"):
        study.run_study(_config(), "/nonexistent", variants=[("a", {"model.width": 3})], run=run)
    with pytest.raises(ValueError, match="repeat"):
        study.run_study(_config(), "/x", variants=[("a", {}), ("a", {})], run=run)
    with pytest.raises(ValueError, match="folder name"):
        study.run_study(_config(), "/x", variants=[("a/b", {})], run=run)
    with pytest.raises(TypeError):
        study.run_study(_config(), "/x", variants=[("a", {"model.dim": "wide"})], run=run)
