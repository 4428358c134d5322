"""Tests of the speech data: WAV reading, features checked on pure tones (log-mel, gammatone
bank vs lfilter, integrate-and-fire spikes vs a loop), pink noise, and (with espeak-ng)
speaker-disjoint splits and exact mixtures."""

import io
import shutil
import wave

import numpy as np
import pytest
from scipy import signal

import lib.data as data
from lib.data import audio_features as af
from lib.data import speech

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="Debian package espeak-ng not installed"
)


def _tone(freq, seconds=1.0, rate=16000, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32
    )


def test_read_wav_and_resample():
    rng = np.random.default_rng(0)
    pcm = rng.integers(-20000, 20000, (2205, 2)).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(pcm.tobytes())
    x, rate = speech.read_wav(buf.getvalue())
    assert rate == 22050
    np.testing.assert_allclose(x, pcm[:, 0] / 32768)
    assert len(speech.resample(x, 22050)) == 1600


def test_place_offsets_and_normalizes():
    rng = np.random.default_rng(1)
    out = speech.place(np.concatenate([np.zeros(50), _tone(440, 0.25)]), 16000, rng)
    assert out.shape == (16000,) and np.isclose(np.abs(out).max(), 0.9)
    long = speech.place(_tone(440, 2.0), 16000, rng)
    assert long.shape == (16000,)


def test_log_mel_peaks_at_the_tone():
    centres = af.mel_to_hz(np.linspace(af.hz_to_mel(20), af.hz_to_mel(8000), 42))[1:-1]
    for freq in (300, 1000, 3000):
        m = af.log_mel(_tone(freq))
        assert m.shape == (98, 40)
        peak = centres[m.mean(axis=0).argmax()]
        assert abs(np.log(peak / freq)) < 0.15


def test_gammatone_bank_matches_lfilter_and_tones():
    x = np.random.default_rng(2).normal(size=4000)
    _, bank = af.gammatone_bank(16, 16000)
    ref = np.stack([signal.lfilter(b, a, x) for b, a in bank], axis=1)
    np.testing.assert_allclose(
        af.gammatone_filter(x, num_channels=16), ref, atol=2e-3 * np.abs(ref).max()
    )
    centres, _ = af.gammatone_bank(64, 16000)
    for freq in (500, 2000):
        spikes = af.cochlear_spikes(_tone(freq))
        assert spikes.shape == (100, 64)
        best = centres[spikes.sum(axis=0).argmax()]
        assert abs(np.log(best / freq)) < 0.1
    assert af.cochlear_spikes(np.zeros(16000)).sum() == 0
    assert (
        af.cochlear_spikes(_tone(1000, amp=0.8)).sum()
        > af.cochlear_spikes(_tone(1000, amp=0.1)).sum()
    )


def test_integrate_and_fire_counts_match_a_loop():
    drive = np.random.default_rng(3).uniform(0, 1, (200, 3))
    counts = af.if_spike_counts(drive, 0.3, 20)
    v, spikes = np.zeros(3), np.zeros((10, 3))
    for t in range(200):
        v += 0.3 * drive[t]
        fired = np.floor(v)
        spikes[t // 20] += fired
        v -= fired
    np.testing.assert_array_equal(counts, spikes)


def test_pink_noise_spectrum():
    x = speech.pink_noise(np.random.default_rng(4), 2**15)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(2**15)
    band = (f > 1e-3) & (f < 0.3)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert abs(slope + 1) < 0.1 and abs(x.std() - 1) < 1e-3


@needs_espeak
def test_spoken_digits_speaker_disjoint(tmp_path):
    data.prepare("spoken_digits", tmp_path, utterances_per_word=3, max_speakers=12)
    meta = data.info("spoken_digits", tmp_path)
    groups = {k: set(v) for k, v in meta["speaker_splits"].items()}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["validation"])
    for split in ("train", "test"):
        batch = next(
            data.load(
                "spoken_digits",
                split,
                batch_size=8,
                num_epochs=1,
                drop_remainder=False,
                data_dir=tmp_path,
            )
        )
        assert set(batch["speaker"].tolist()) <= groups[split]
        assert batch["inputs"].shape[1:] == (16000,)
        assert np.all(np.abs(batch["inputs"]).max(axis=1) > 0.5)  # peak-normalized speech
    spikes = next(data.load("spoken_digits_spikes", "train", batch_size=2, data_dir=tmp_path))
    assert spikes["inputs"].shape == (2, 100, 64) and spikes["inputs"].sum() > 0


@pytest.mark.slow
@needs_espeak
def test_speech_mixtures_are_exact_sums(tmp_path):
    data.prepare("speech_mixtures", tmp_path, utterances_per_word=1, max_speakers=10)
    batch = next(data.load("speech_mixtures", "train", batch_size=8, data_dir=tmp_path))
    np.testing.assert_array_equal(batch["inputs"], batch["sources"].sum(axis=1))
    target, noise = batch["sources"][:, 0], batch["sources"][:, 1]
    snr = 10 * np.log10(np.mean(target**2, axis=1) / np.mean(noise**2, axis=1))
    np.testing.assert_allclose(snr, batch["snr_db"], atol=1e-3)
    assert np.all((batch["snr_db"] >= -5) & (batch["snr_db"] <= 10))
