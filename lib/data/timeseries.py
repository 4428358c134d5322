"""Time-series data from PyPI packages: UCR/UEA classification sets shipped in `sktime`
(Dau et al. 2019; Bagnall et al. 2018) and `statsmodels` series (sunspots, Mauna Loa CO2).

The files are read straight from the package: from an installed copy when there is one,
else from its wheel fetched by `pip download --no-deps` (never imported, so neither package
needs to be installed). UCR: `inputs` float32 [T, D] zero-padded, `mask` [T] (1 on real
steps), `label` int32; validation is a stratified, seeded part of the official train set.
Series: windows of `seq_len + 1` steps from contiguous chronological splits, standardized by
the train split's mean and std, read as next-step `inputs`/`targets` [seq_len, 1].
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import Builder
from lib.data.images import stratified_split

SKTIME = "sktime==1.2.0"
STATSMODELS = "statsmodels>=0.14"


@functools.cache
def download_wheel(requirement: str) -> str:
    """Path of the wheel of `requirement` fetched by pip into a temporary folder (once per
    process); only inside `python -m lib.data prepare` (see `registry.check_download_allowed`)."""
    from lib.data.registry import check_download_allowed

    check_download_allowed(requirement)
    dest = tempfile.mkdtemp(prefix="brainseq_wheel_")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        requirement,
        "-d",
        dest,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(Path(dest).glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (is PyPI reachable?):\n{result.stderr[-2000:]}"
        )
    return str(wheels[0])


def package_file(requirement: str, member: str, archive: str = "") -> bytes:
    """Bytes of `member` (a path inside the package, e.g. "sktime/datasets/data/...").

    Looks in `archive` (a wheel or zip) if given, else in an installed copy of the package,
    else in its wheel downloaded with pip into a temporary folder.
    """
    if not archive:
        name = member.split("/")[0]
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            path = Path(list(spec.submodule_search_locations)[0]).parent / member
            if path.exists():
                return path.read_bytes()
        archive = download_wheel(requirement)
    with zipfile.ZipFile(archive) as z:
        return z.read(member)


def parse_ts(text: str):
    """Parses a sktime/UEA `.ts` file.

    Returns:
      (series, labels, class_names): a list of float arrays [T_i, D] (NaN for "?"), the
      label strings, and the class names in the order the header lists them.
    """
    header, series, labels = {}, [], []
    in_data = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower().startswith("@data"):
                in_data = True
            elif line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                header[key.lower()] = value.strip()
            continue
        *dims, label = line.split(":")
        arrays = [
            np.array([float("nan") if v == "?" else float(v) for v in d.split(",")]) for d in dims
        ]
        length = max(len(a) for a in arrays)
        series.append(
            np.stack(
                [np.pad(a, (0, length - len(a)), constant_values=np.nan) for a in arrays], axis=1
            )
        )
        labels.append(label.strip())
    if not in_data:
        raise ValueError("not a .ts file: no @data line")
    class_label = header.get("classlabel", "").split()
    names = class_label[1:] if class_label and class_label[0] == "true" else sorted(set(labels))
    return series, labels, names


class _Ucr(Builder, skip_registration=True):
    PROBLEM = "GunPoint"
    DEFAULTS = {"validation_fraction": 0.2, "seed": 0, "archive": ""}
    LOCATION_KEYS = ("archive",)
    SOURCE = f"PyPI wheel {SKTIME} (sktime/datasets/data)"

    def _read(self, part):
        member = f"sktime/datasets/data/{self.PROBLEM}/{self.PROBLEM}_{part}.ts"
        return parse_ts(package_file(SKTIME, member, self.cfg["archive"]).decode("utf-8"))

    def _load(self):
        if not hasattr(self, "_parts"):
            self._parts = {p: self._read(p) for p in ("TRAIN", "TEST")}
        return self._parts

    def _shape(self):
        series = [s for p in self._load().values() for s in p[0]]
        return max(len(s) for s in series), series[0].shape[1]

    def _features(self):
        length, dims = self._shape()
        return tfds.features.FeaturesDict(
            {
                "inputs": tfds.features.Tensor(shape=(length, dims), dtype=np.float32),
                "mask": tfds.features.Tensor(shape=(length,), dtype=np.float32),
                "label": tfds.features.Tensor(shape=(), dtype=np.int32),
            }
        )

    def _metadata(self):
        length, dims = self._shape()
        names = self._load()["TRAIN"][2]
        return {
            "task": "sequence_classification",
            "problem": self.PROBLEM,
            "seq_len": length,
            "input_dim": dims,
            "num_classes": len(names),
            "class_names": names,
        }

    def _splits(self):
        parts = self._load()
        names = parts["TRAIN"][2]
        length, _ = self._shape()

        def encode(series, labels, idx):
            for key, i in enumerate(idx):
                s = series[i]
                valid = ~np.isnan(s).all(axis=1)
                x = np.zeros((length, s.shape[1]), np.float32)
                x[: len(s)] = np.nan_to_num(s)
                m = np.zeros(length, np.float32)
                m[: len(s)] = valid
                yield key, {"inputs": x, "mask": m, "label": np.int32(names.index(labels[i]))}

        train_series, train_labels, _ = parts["TRAIN"]
        y = np.array([names.index(v) for v in train_labels])
        frac = self.cfg["validation_fraction"]
        idx = stratified_split(y, {"validation": frac, "train": 1.0}, self.cfg["seed"])
        test_series, test_labels, _ = parts["TEST"]
        out = {"train": encode(train_series, train_labels, idx["train"])}
        if len(idx["validation"]):
            out["validation"] = encode(train_series, train_labels, idx["validation"])
        out["test"] = encode(test_series, test_labels, range(len(test_series)))
        return out


def _ucr(class_name: str, problem: str, doc: str):
    cls = type(class_name, (_Ucr,), {"PROBLEM": problem, "__doc__": doc, "__module__": __name__})
    globals()[class_name] = cls
    return cls


UCR_PROBLEMS = {
    "ucr_gunpoint": ("UcrGunpoint", "GunPoint", "GunPoint: hand motion, gun vs point (2 classes)."),
    "ucr_italy_power_demand": (
        "UcrItalyPowerDemand",
        "ItalyPowerDemand",
        "ItalyPowerDemand: daily load curves, winter vs summer.",
    ),
    "ucr_arrowhead": ("UcrArrowhead", "ArrowHead", "ArrowHead: outline shapes (3 classes)."),
    "ucr_osuleaf": ("UcrOsuleaf", "OSULeaf", "OSULeaf: leaf outlines (6 classes)."),
    "ucr_acsf1": ("UcrAcsf1", "ACSF1", "ACSF1: appliance power signatures (10 classes)."),
    "ucr_japanese_vowels": (
        "UcrJapaneseVowels",
        "JapaneseVowels",
        "JapaneseVowels: 12 LPC cepstra of 9 speakers, variable length.",
    ),
    "ucr_basic_motions": (
        "UcrBasicMotions",
        "BasicMotions",
        "BasicMotions: 6-axis accelerometer/gyroscope, 4 activities.",
    ),
}
for _cls_name, _problem, _doc in UCR_PROBLEMS.values():
    _ucr(_cls_name, _problem, _doc)


# ----------------------------------------------------------------------------- statsmodels
def read_csv_column(raw: bytes, column: str) -> np.ndarray:
    """One numeric column of a CSV file (empty cells become NaN)."""
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    return np.array([float(r[column]) if r[column] not in ("", "NA") else np.nan for r in rows])


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN gaps (edges take the nearest value)."""
    x = np.asarray(x, float)
    ok = ~np.isnan(x)
    return np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])


class _Series(Builder, skip_registration=True):
    MEMBER, COLUMN = "", ""
    DEFAULTS = {
        "seq_len": 32,
        "stride": 1,
        "validation_fraction": 0.1,
        "test_fraction": 0.2,
        "archive": "",
    }
    LOCATION_KEYS = ("archive",)
    SOURCE = f"PyPI wheel {STATSMODELS} (statsmodels/datasets)"

    def _features(self):
        return tfds.features.FeaturesDict(
            {"series": tfds.features.Tensor(shape=(self.cfg["seq_len"] + 1, 1), dtype=np.float32)}
        )

    def _metadata(self):
        return {"task": "forecasting", "seq_len": self.cfg["seq_len"], "input_dim": 1}

    def _splits(self):
        raw = package_file(STATSMODELS, self.MEMBER, self.cfg["archive"])
        x = fill_gaps(read_csv_column(raw, self.COLUMN))
        n = len(x)
        n_test = int(round(n * self.cfg["test_fraction"]))
        n_val = int(round(n * self.cfg["validation_fraction"]))
        bounds = {
            "train": (0, n - n_val - n_test),
            "validation": (n - n_val - n_test, n - n_test),
            "test": (n - n_test, n),
        }
        start, stop = bounds["train"]
        mean, std = float(x[start:stop].mean()), float(x[start:stop].std())
        self.update_metadata(
            mean=mean, std=std, num_steps=n, split_ranges={k: list(v) for k, v in bounds.items()}
        )
        z = (x - mean) / std
        window = self.cfg["seq_len"] + 1
        out = {}
        for split, (a, b) in bounds.items():
            if b == a:
                continue
            if b - a < window:
                raise ValueError(
                    f"the {split} split has {b - a} steps, fewer than seq_len + 1 = {window}; "
                    f"lower seq_len or raise {split}_fraction"
                )
            out[split] = (
                (i, {"series": z[s : s + window, None].astype(np.float32)})
                for i, s in enumerate(range(a, b - window + 1, self.cfg["stride"]))
            )
        return out

    @classmethod
    def postprocess(cls, example, metadata):
        s = np.asarray(example["series"], np.float32)
        return {"inputs": s[:-1], "targets": s[1:]}


class Sunspots(_Series):
    """Yearly sunspot numbers 1700-2008 (statsmodels.datasets.sunspots)."""

    MEMBER, COLUMN = "statsmodels/datasets/sunspots/sunspots.csv", "SUNACTIVITY"
    DEFAULTS = {**_Series.DEFAULTS, "seq_len": 16}  # the 31-year validation range fits


class Co2(_Series):
    """Weekly Mauna Loa CO2 1958-2001 (statsmodels.datasets.co2), gaps interpolated."""

    MEMBER, COLUMN = "statsmodels/datasets/co2/co2.csv", "co2"
    DEFAULTS = {**_Series.DEFAULTS, "seq_len": 104}
