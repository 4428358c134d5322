"""Audio features for the speech data sets: log-mel spectrograms (Davis & Mermelstein 1980)
and cochlear-style spike trains (a gammatone filterbank, Patterson et al. 1992, rectified and
fed to integrate-and-fire units: an SHD-like encoding, Cramer et al. 2020).

Each feature class is a view (see lib/data/registry.py) of a stored waveform data set.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000


def hz_to_mel(f):
    return 2595 * np.log10(1 + np.asarray(f, float) / 700)


def mel_to_hz(m):
    return 700 * (10 ** (np.asarray(m, float) / 2595) - 1)


@functools.lru_cache(maxsize=8)
def mel_filterbank(num_mels: int, n_fft: int, sample_rate: int, fmin=20.0, fmax=None):
    """Triangular mel filters (HTK mel scale): float32 [num_mels, n_fft // 2 + 1]."""
    fmax = fmax or sample_rate / 2
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), num_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    bank = np.zeros((num_mels, len(freqs)), np.float32)
    for i in range(num_mels):
        lo, mid, hi = edges[i : i + 3]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        bank[i] = np.maximum(0, np.minimum(up, down))
    return bank


def log_mel(x, sample_rate=SAMPLE_RATE, num_mels=40, win=400, hop=160, n_fft=512):
    """Log-mel spectrogram float32 [frames, num_mels] (25 ms Hann windows, 10 ms hop)."""
    x = np.asarray(x, np.float32)
    frames = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win).astype(np.float32), n_fft)) ** 2
    return np.log(spec @ mel_filterbank(num_mels, n_fft, sample_rate).T + 1e-6).astype(np.float32)


def erb_space(fmin: float, fmax: float, num: int) -> np.ndarray:
    """Centre frequencies equally spaced on the ERB-rate scale (Glasberg & Moore 1990)."""
    erb = lambda f: 21.4 * np.log10(1 + 0.00437 * f)
    inv = lambda e: (10 ** (e / 21.4) - 1) / 0.00437
    return inv(np.linspace(erb(fmin), erb(fmax), num))


@functools.lru_cache(maxsize=4)
def gammatone_bank(num_channels: int, sample_rate: int, fmin=100.0, fmax=7000.0):
    """(centre frequencies, list of IIR gammatone filters (b, a)) from scipy.signal."""
    centres = erb_space(fmin, fmax, num_channels)
    return centres, [signal.gammatone(f, "iir", fs=sample_rate) for f in centres]


@functools.lru_cache(maxsize=4)
def _gammatone_response(num_channels: int, sample_rate: int, n_fft: int):
    """Frequency responses [num_channels, n_fft // 2 + 1] of the gammatone bank."""
    _, bank = gammatone_bank(num_channels, sample_rate)
    w = 2 * np.pi * np.fft.rfftfreq(n_fft)
    return np.stack([signal.freqz(b, a, worN=w)[1] for b, a in bank])


def gammatone_filter(x, sample_rate=SAMPLE_RATE, num_channels=64) -> np.ndarray:
    """The signal through the gammatone bank: float [n, num_channels].

    Filtering is done in the frequency domain on a zero-padded copy (twice the length, so
    the filters' impulse responses, which decay within tens of ms, do not wrap around);
    it equals `scipy.signal.lfilter` per channel up to that truncation.
    """
    x = np.asarray(x, np.float64)
    n_fft = 1 << int(np.ceil(np.log2(2 * len(x))))
    h = _gammatone_response(num_channels, sample_rate, n_fft)
    return np.fft.irfft(np.fft.rfft(x, n_fft)[None] * h, n_fft)[:, : len(x)].T


def if_spike_counts(drive: np.ndarray, gain: float, bin_size: int) -> np.ndarray:
    """Spike counts per bin of non-leaky integrate-and-fire units (threshold 1, subtractive
    reset) driven by `gain * drive` per sample.

    Exact and vectorized: after n samples a unit has fired floor(gain * sum(drive[:n])) times.

    Args:
      drive: non-negative input [n, channels].
      gain: input scale per sample.
      bin_size: samples per output bin (a trailing partial bin is dropped).

    Returns:
      float32 [n // bin_size, channels].
    """
    fired = np.floor(gain * np.cumsum(drive, axis=0))
    edges = fired[bin_size - 1 :: bin_size]
    return np.diff(edges, axis=0, prepend=np.zeros((1, drive.shape[1]))).astype(np.float32)


def cochlear_spikes(x, sample_rate=SAMPLE_RATE, num_channels=64, bin_ms=10.0, gain=2000.0):
    """Spike counts [bins, num_channels]: gammatone filters, half-wave rectification and
    cube-root compression (hair cells), then per channel an integrate-and-fire unit
    (`if_spike_counts`, `gain` spikes per second at unit drive) counted in `bin_ms` bins."""
    drive = np.cbrt(np.maximum(gammatone_filter(x, sample_rate, num_channels), 0))
    return if_spike_counts(drive, gain / sample_rate, int(round(sample_rate * bin_ms / 1000)))


class LogMel:
    """Log-mel features as `inputs` float32 [98, 40] (25 ms windows, 10 ms hop)."""

    @staticmethod
    def update_metadata(meta):
        return {**meta, "seq_len": 98, "input_dim": 40, "features": "log_mel"}

    @staticmethod
    def postprocess(example, metadata):
        return {**example, "inputs": log_mel(example["inputs"])}


class CochlearSpikes:
    """Cochlear spike counts as `inputs` float32 [100, 64] (10 ms bins, 64 channels)."""

    @staticmethod
    def update_metadata(meta):
        return {**meta, "seq_len": 100, "input_dim": 64, "features": "cochlear_spikes"}

    @staticmethod
    def postprocess(example, metadata):
        return {**example, "inputs": cochlear_spikes(example["inputs"])}
