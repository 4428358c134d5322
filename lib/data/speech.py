"""Spoken digits and keywords synthesized offline by Debian's `espeak-ng` over many voices,
speeds and pitches: a stand-in for Speech Commands (Warden 2018) and the Heidelberg digits
(SHD, Cramer et al. 2020); and noisy / two-speaker mixtures for enhancement and separation.

Stored: `audio` int16 [16000] (1 s at 16 kHz, the utterance at a random offset), `label`,
`speaker`. Splits are by speaker (voice x variant): test voices are never heard in training.
Views (lib/data/audio_features.py): waveform, log-mel, cochlear spikes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import tensorflow_datasets as tfds
from scipy import signal

from lib.data.base import Builder, split_rng

SAMPLE_RATE = 16000
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
BASE_VOICES = (
    "en-gb",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
)
ESPEAK = "espeak-ng"


def read_wav(raw: bytes) -> tuple[np.ndarray, int]:
    """(samples float32 [n] in [-1, 1], sample rate) of a 16-bit PCM WAV (first channel)."""
    with wave.open(io.BytesIO(raw)) as w:
        if w.getsampwidth() != 2:
            raise ValueError("only 16-bit PCM WAV is supported")
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        x = frames.reshape(-1, w.getnchannels())[:, 0].astype(np.float32) / 32768
        return x, w.getframerate()


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling from `rate` to `target` Hz."""
    if rate == target:
        return x
    g = np.gcd(rate, target)
    return signal.resample_poly(x, target // g, rate // g).astype(np.float32)


def check_espeak(command: str = ESPEAK) -> None:
    if shutil.which(command) is None:
        raise FileNotFoundError(
            f"`{command}` not found. Install the speech synthesizer with:\n"
            "    sudo apt-get install espeak-ng"
        )


def espeak_variants(command: str = ESPEAK) -> list[str]:
    """Voice variant names (e.g. "m3", "f2", "klatt") that this espeak-ng offers, sorted."""
    out = subprocess.run([command, "--voices=variant"], capture_output=True, text=True).stdout
    names = [line.split()[4].split("/")[-1] for line in out.splitlines()[1:] if line.split()]
    return sorted(set(names))


def synthesize(text: str, voice: str, speed: int, pitch: int, command: str = ESPEAK):
    """espeak-ng speech of `text` as float32 [n] at 16 kHz."""
    cmd = [command, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.decode()[-500:]}")
    x, rate = read_wav(result.stdout)
    return resample(x, rate)


def place(x: np.ndarray, length: int, rng) -> np.ndarray:
    """`x` at a random offset in a zero buffer of `length` (cropped around its centre if
    longer), peak-normalized to 0.9."""
    x = x[np.flatnonzero(np.abs(x) > 1e-3)[0] :] if np.any(np.abs(x) > 1e-3) else x
    if len(x) > length:
        start = (len(x) - length) // 2
        x = x[start : start + length]
    out = np.zeros(length, np.float32)
    offset = int(rng.integers(0, length - len(x) + 1))
    out[offset : offset + len(x)] = x
    peak = np.abs(out).max()
    return out * (0.9 / peak) if peak > 0 else out


class _SpokenWords(Builder, skip_registration=True):
    WORDS: tuple[str, ...] = DIGITS
    DEFAULTS = {
        "utterances_per_word": 60,
        "max_speakers": 0,
        "validation_fraction": 0.1,
        "test_fraction": 0.2,
        "seed": 0,
        "command": ESPEAK,
    }
    LOCATION_KEYS = ("command",)
    SOURCE = "synthesized by Debian espeak-ng (voices x variants x speeds x pitches)"

    def speakers(self) -> list[str]:
        check_espeak(self.cfg["command"])
        variants = espeak_variants(self.cfg["command"])
        speakers = [f"{v}+{var}" for v in BASE_VOICES for var in variants]
        if self.cfg["max_speakers"]:
            keep = np.random.default_rng([self.cfg["seed"], 3]).permutation(len(speakers))
            speakers = [speakers[i] for i in sorted(keep[: self.cfg["max_speakers"]])]
        return speakers

    def speaker_splits(self, speakers):
        order = np.random.default_rng([self.cfg["seed"], 4]).permutation(len(speakers))
        n_test = max(1, int(round(len(speakers) * self.cfg["test_fraction"])))
        n_val = max(1, int(round(len(speakers) * self.cfg["validation_fraction"])))
        return {
            "test": sorted(order[:n_test]),
            "validation": sorted(order[n_test : n_test + n_val]),
            "train": sorted(order[n_test + n_val :]),
        }

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "audio": tfds.features.Tensor(shape=(SAMPLE_RATE,), dtype=np.int16),
                "label": tfds.features.Tensor(shape=(), dtype=np.int32),
                "speaker": tfds.features.Tensor(shape=(), dtype=np.int32),
            }
        )

    def _metadata(self):
        return {
            "task": "classification",
            "num_classes": len(self.WORDS),
            "class_names": list(self.WORDS),
            "sample_rate": SAMPLE_RATE,
        }

    def _splits(self):
        speakers = self.speakers()
        groups = self.speaker_splits(speakers)
        self.update_metadata(
            speakers=speakers, speaker_splits={k: [int(i) for i in v] for k, v in groups.items()}
        )
        if len(groups["train"]) < 1:
            raise ValueError("no training speakers left; raise max_speakers")
        return {split: self._examples(split, ids, speakers) for split, ids in groups.items()}

    def _examples(self, split, speaker_ids, speakers):
        rng = split_rng(self.cfg["seed"], split)
        frac = {
            "train": 1.0 - self.cfg["validation_fraction"] - self.cfg["test_fraction"],
            "validation": self.cfg["validation_fraction"],
            "test": self.cfg["test_fraction"],
        }
        per_word = max(1, int(round(self.cfg["utterances_per_word"] * frac[split])))
        key = 0
        for label, word in enumerate(self.WORDS):
            for _ in range(per_word):
                speaker = int(speaker_ids[rng.integers(len(speaker_ids))])
                speed, pitch = int(rng.integers(110, 221)), int(rng.integers(15, 86))
                x = synthesize(word, speakers[speaker], speed, pitch, self.cfg["command"])
                audio = place(x, SAMPLE_RATE, rng)
                yield (
                    key,
                    {
                        "audio": np.round(audio * 32767).astype(np.int16),
                        "label": np.int32(label),
                        "speaker": np.int32(speaker),
                    },
                )
                key += 1

    @classmethod
    def postprocess(cls, example, metadata):
        audio = np.asarray(example["audio"], np.float32) / 32767
        return {
            "inputs": audio,
            "label": np.int32(example["label"]),
            "speaker": np.int32(example["speaker"]),
        }


class SpokenDigits(_SpokenWords):
    """Spoken digits "zero".."nine" by espeak-ng (a stand-in for SHD / spoken MNIST)."""

    WORDS = DIGITS


class SpokenKeywords(_SpokenWords):
    """The ten Speech Commands keywords ("yes", "no", ...) by espeak-ng."""

    WORDS = KEYWORDS


def pink_noise(rng, n: int) -> np.ndarray:
    """1/f noise by shaping white noise in the frequency domain, unit variance."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.arange(len(spectrum))
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return (x / x.std()).astype(np.float32)


class SpeechMixtures(_SpokenWords):
    """Mixtures for enhancement and separation: an utterance plus white, pink or babble noise,
    or plus a second speaker, at a random SNR. `sources` [2, 16000] (target, interference),
    `mixture` = their sum exactly, `snr_db`, `kind` (0 white, 1 pink, 2 babble, 3 speaker)."""

    WORDS = DIGITS + KEYWORDS
    DEFAULTS = {
        **_SpokenWords.DEFAULTS,
        "utterances_per_word": 20,
        "min_snr_db": -5.0,
        "max_snr_db": 10.0,
    }

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "mixture": tfds.features.Tensor(shape=(SAMPLE_RATE,), dtype=np.float32),
                "sources": tfds.features.Tensor(shape=(2, SAMPLE_RATE), dtype=np.float32),
                "snr_db": tfds.features.Tensor(shape=(), dtype=np.float32),
                "kind": tfds.features.Tensor(shape=(), dtype=np.int32),
                "label": tfds.features.Tensor(shape=(), dtype=np.int32),
            }
        )

    def _metadata(self):
        return {
            "task": "separation",
            "sample_rate": SAMPLE_RATE,
            "kinds": ["white", "pink", "babble", "speaker"],
            "class_names": list(self.WORDS),
        }

    def _examples(self, split, speaker_ids, speakers):
        rng = split_rng(self.cfg["seed"], split)
        clean = super()._examples(split, speaker_ids, speakers)
        pool = []
        for key, ex in clean:
            target = ex["audio"].astype(np.float32) / 32767
            kind = int(rng.integers(4))
            if kind == 0:
                noise = rng.normal(size=SAMPLE_RATE).astype(np.float32)
            elif kind == 1:
                noise = pink_noise(rng, SAMPLE_RATE)
            else:
                others = pool[-3:] if kind == 2 else pool[-1:]
                noise = np.sum(others, axis=0) if others else rng.normal(size=SAMPLE_RATE)
            noise = np.asarray(noise, np.float32)
            snr = float(rng.uniform(self.cfg["min_snr_db"], self.cfg["max_snr_db"]))
            gain = np.sqrt(np.mean(target**2) / (np.mean(noise**2) * 10 ** (snr / 10)))
            interference = (noise * gain).astype(np.float32)
            pool.append(target)
            yield (
                key,
                {
                    "mixture": target + interference,
                    "sources": np.stack([target, interference]),
                    "snr_db": np.float32(snr),
                    "kind": np.int32(kind),
                    "label": ex["label"],
                },
            )

    @classmethod
    def postprocess(cls, example, metadata):
        out = dict(example)
        out["inputs"] = np.asarray(out.pop("mixture"), np.float32)
        return out
