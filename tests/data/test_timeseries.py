"""Tests of the time-series data: the .ts parser on files in the real format, UCR builders
from a fake wheel, statsmodels series, and (slow) the real sktime / statsmodels wheels."""

import zipfile

import numpy as np
import pytest

import lib.data as data
from lib.data import timeseries as ts

UNIVARIATE = """# a comment
@problemName Toy
@timeStamps false
@univariate true
@equalLength true
@seriesLength 4
@classLabel true a b
@data
1,2,3,4:a
2,3,4,5:b
0,0,?,1:a
5,4,3,2:b
1,1,1,1:a
2,2,2,2:b
3,3,3,3:a
4,4,4,4:b
9,9,9,9:a
8,8,8,8:b
"""
MULTIVARIATE = """@problemName Toy2
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2
@data
1,2,3:4,5,6:2
7,8:9,10:1
"""


def test_parse_ts_univariate_and_multivariate():
    series, labels, names = ts.parse_ts(UNIVARIATE)
    assert names == ["a", "b"] and labels[:2] == ["a", "b"] and len(series) == 10
    np.testing.assert_array_equal(series[0][:, 0], [1, 2, 3, 4])
    assert np.isnan(series[2][2, 0])
    series, labels, names = ts.parse_ts(MULTIVARIATE)
    assert series[0].shape == (3, 2) and series[1].shape == (2, 2)
    np.testing.assert_array_equal(series[1], [[7, 9], [8, 10]])
    with pytest.raises(ValueError, match="@data"):
        ts.parse_ts("@problemName x\n1,2:a\n")


def _fake_wheel(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return str(path)


def test_ucr_builder_from_fake_wheel(tmp_path):
    root = "sktime/datasets/data/GunPoint/GunPoint_"
    wheel = _fake_wheel(
        tmp_path / "sktime.whl", {root + "TRAIN.ts": UNIVARIATE, root + "TEST.ts": UNIVARIATE}
    )
    data.prepare("ucr_gunpoint", tmp_path, archive=wheel, validation_fraction=0.2)
    meta = data.info("ucr_gunpoint", tmp_path)
    assert meta["splits"] == {"train": 8, "validation": 2, "test": 10}
    assert meta["num_classes"] == 2 and meta["seq_len"] == 4
    test = next(data.load("ucr_gunpoint", "test", batch_size=10, shuffle=False, data_dir=tmp_path))
    assert test["inputs"].shape == (10, 4, 1) and test["label"].dtype == np.int32
    np.testing.assert_array_equal(test["label"], [0, 1] * 5)
    np.testing.assert_array_equal(test["inputs"][2, :, 0], [0, 0, 0, 1])  # "?" -> 0
    val = next(data.load("ucr_gunpoint", "validation", batch_size=2, data_dir=tmp_path))
    assert sorted(val["label"].tolist()) == [0, 1]  # stratified


def test_variable_length_padding_and_mask(tmp_path):
    root = "sktime/datasets/data/JapaneseVowels/JapaneseVowels_"
    wheel = _fake_wheel(
        tmp_path / "w.whl", {root + "TRAIN.ts": MULTIVARIATE, root + "TEST.ts": MULTIVARIATE}
    )
    data.prepare("ucr_japanese_vowels", tmp_path, archive=wheel, validation_fraction=0.0)
    batch = next(
        data.load("ucr_japanese_vowels", "test", batch_size=2, shuffle=False, data_dir=tmp_path)
    )
    np.testing.assert_array_equal(batch["mask"], [[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(batch["inputs"][1], [[7, 9], [8, 10], [0, 0]])


def test_series_windows_are_chronological_and_standardized(tmp_path):
    values = np.arange(100, dtype=float) ** 1.5
    cells = [str(v) for v in values]
    cells[10] = ""  # a gap, filled by linear interpolation
    values[10] = (values[9] + values[11]) / 2
    csv = "YEAR,SUNACTIVITY\n" + "".join(f"{1700 + i},{v}\n" for i, v in enumerate(cells))
    wheel = _fake_wheel(tmp_path / "sm.whl", {"statsmodels/datasets/sunspots/sunspots.csv": csv})
    data.prepare("sunspots", tmp_path, archive=wheel, seq_len=8)
    meta = data.info("sunspots", tmp_path)
    assert meta["split_ranges"] == {"train": [0, 70], "validation": [70, 80], "test": [80, 100]}
    np.testing.assert_allclose(meta["mean"], values[:70].mean())
    batch = next(
        data.load("sunspots", "test", batch_size=12, shuffle=False, num_epochs=1, data_dir=tmp_path)
    )
    z = (values - meta["mean"]) / meta["std"]
    np.testing.assert_allclose(batch["inputs"][0, :, 0], z[80:88], rtol=1e-5)
    np.testing.assert_allclose(batch["targets"][-1, :, 0], z[92:100], rtol=1e-5)


def test_fill_gaps():
    np.testing.assert_array_equal(ts.fill_gaps([np.nan, 1, np.nan, 3, np.nan]), [1, 1, 2, 3, 3])


@pytest.mark.slow
def test_real_sktime_and_statsmodels_wheels(tmp_path):
    """pip download of the real wheels (PyPI is reachable in CI): official UCR/UEA sizes."""
    from lib.data.registry import downloads_allowed

    sizes = {}
    with downloads_allowed():
        for problem in ("GunPoint", "ItalyPowerDemand", "JapaneseVowels"):
            for part in ("TRAIN", "TEST"):
                member = f"sktime/datasets/data/{problem}/{problem}_{part}.ts"
                raw = ts.package_file(ts.SKTIME, member)
                sizes[problem, part] = len(ts.parse_ts(raw.decode())[0])
    assert sizes == {
        ("GunPoint", "TRAIN"): 50,
        ("GunPoint", "TEST"): 150,
        ("ItalyPowerDemand", "TRAIN"): 67,
        ("ItalyPowerDemand", "TEST"): 1029,
        ("JapaneseVowels", "TRAIN"): 270,
        ("JapaneseVowels", "TEST"): 370,
    }
    with downloads_allowed():
        raw = ts.package_file(ts.STATSMODELS, "statsmodels/datasets/sunspots/sunspots.csv")
    sun = ts.read_csv_column(raw, "SUNACTIVITY")
    assert len(sun) == 309 and sun[0] == 5.0  # 1700-2008; 1700 had 5


def test_too_short_split_raises(tmp_path):
    csv = "YEAR,SUNACTIVITY\n" + "".join(f"{1700 + i},{i}\n" for i in range(40))
    wheel = _fake_wheel(tmp_path / "sm.whl", {"statsmodels/datasets/sunspots/sunspots.csv": csv})
    with pytest.raises(ValueError, match="fewer than seq_len"):
        data.prepare("sunspots", tmp_path, archive=wheel, seq_len=8)
