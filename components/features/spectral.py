"""Spectral EEG features, vectorised over every leading axis and every window.

All functions take ``x`` with shape ``(..., n_channels, n_times)`` and return
``(..., n_windows, n_channels, n_bands)``. Windows are ``window_s`` long and
start every ``step_s`` (default: ``window_s``, no overlap); a trailing
remainder shorter than a window is dropped.
"""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from moodops.components.errors import ConfigError, invalid_choice

logger = logging.getLogger(__name__)

DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 14.0),
    "beta": (14.0, 31.0),
    "gamma": (31.0, 50.0),
}
DE_METHODS = ("bandpass", "stft")
#: Where a trial's windows are counted from (see ``FeatureConfig.window_origin``).
WINDOW_ORIGINS = ("start", "end")
BUTTERWORTH_ORDER = 4
_LOG_2PIE = math.log(2 * math.pi * math.e)


def resolve_bands(
    bands: Mapping[str, Sequence[float]] | None, sfreq: float
) -> dict[str, tuple[float, float]]:
    """Validate bands and clip their upper edges to just below Nyquist (with a warning)."""
    bands = DEFAULT_BANDS if bands is None else bands
    nyquist = sfreq / 2.0
    out: dict[str, tuple[float, float]] = {}
    for name, edges in bands.items():
        lo, hi = float(edges[0]), float(edges[1])
        if not 0.0 <= lo < hi:
            raise ConfigError(f"band '{name}': `0 <= low < high` must hold, but got (low={lo}, high={hi})")
        if lo >= nyquist:
            raise ConfigError(
                f"band '{name}' ({lo}-{hi} Hz) lies above the Nyquist frequency {nyquist} Hz of sfreq={sfreq}"
            )
        if hi >= nyquist:
            clipped = nyquist * 0.99
            warnings.warn(
                f"band '{name}' ({lo}-{hi} Hz) clipped to {lo}-{clipped:.2f} Hz: "
                f"the Nyquist frequency of sfreq={sfreq} is {nyquist} Hz",
                UserWarning,
                stacklevel=3,
            )
            hi = clipped
        out[name] = (lo, hi)
    if not out:
        raise ConfigError("at least one frequency band is needed")
    return out


def _window_params(n_times: int, sfreq: float, window_s: float, step_s: float | None) -> tuple[int, int, int]:
    win = int(round(window_s * sfreq))
    step = win if step_s is None else int(round(step_s * sfreq))
    if win < 2:
        raise ConfigError(f"The 'window_s' parameter must give at least 2 samples. Got {window_s} s at {sfreq} Hz.")
    if step < 1:
        raise ConfigError(f"The 'step_s' parameter must give at least 1 sample. Got {step_s} s at {sfreq} Hz.")
    if n_times < win:
        raise ConfigError(f"the signal has {n_times} samples, fewer than one {window_s}-s window ({win} samples)")
    return win, step, 1 + (n_times - win) // step


def _windows(x: np.ndarray, win: int, step: int) -> np.ndarray:
    """(..., n_times) → view (..., n_windows, win)."""
    return np.lib.stride_tricks.sliding_window_view(x, win, axis=-1)[..., ::step, :]


def _to_output(values: np.ndarray) -> np.ndarray:
    """(..., n_channels, n_windows, n_bands) → (..., n_windows, n_channels, n_bands)."""
    return np.ascontiguousarray(np.swapaxes(values, -3, -2))


def zero_phase_butterworth_gain(freqs: np.ndarray, band: tuple[float, float], sfreq: float,
                                order: int = BUTTERWORTH_ORDER) -> np.ndarray:
    """|H(f)|² of a Butterworth band-pass: the response of forward-backward filtering."""
    from scipy import signal

    if band[0] <= 0.0:  # a band from 0 Hz is a low-pass
        sos = signal.butter(order, band[1], btype="lowpass", fs=sfreq, output="sos")
    else:
        sos = signal.butter(order, band, btype="bandpass", fs=sfreq, output="sos")
    _, h = signal.sosfreqz(sos, worN=freqs, fs=sfreq)
    return np.abs(h) ** 2


def differential_entropy(
    x: np.ndarray,
    sfreq: float,
    bands: Mapping[str, Sequence[float]] | None = None,
    window_s: float = 1.0,
    step_s: float | None = None,
    method: str = "bandpass",
) -> np.ndarray:
    """Differential entropy per window, channel and band.

    Parameters
    ----------
    x : ndarray, shape (..., n_channels, n_times)
    sfreq : float
        Sampling rate in Hz.
    bands : mapping name → (low, high) Hz, optional
        Default :data:`DEFAULT_BANDS` (delta 1–4, theta 4–8, alpha 8–14,
        beta 14–31, gamma 31–50 Hz); edges at or above Nyquist are clipped with
        a warning.
    window_s, step_s : float
        Window length and hop in seconds (hop defaults to the window length).
    method : {"bandpass", "stft"}
        ``"bandpass"``: the whole signal is band-passed by a zero-phase
        (forward-backward) order-4 Butterworth filter, then each window gives
        ``0.5 · ln(2πe · variance)`` (natural log; the DE of a Gaussian). The
        forward-backward response ``|H(f)|²`` is applied in the frequency domain
        to the odd-reflection-padded signal, which equals
        ``scipy.signal.sosfiltfilt`` away from the edges at a fraction of its cost.
        ``"stft"``: the SEED reference: each window is Hann-tapered and
        Fourier-transformed; the band value is ``ln`` of the mean power over the
        FFT bins with ``low <= f < high``. (SEED's own code reports
        ``log2(100 · mean power)``, an affine change of the same number.)

    Returns
    -------
    de : ndarray, shape (..., n_windows, n_channels, n_bands), float32
    """
    if method not in DE_METHODS:
        raise ConfigError(invalid_choice("method", method, DE_METHODS))
    x = np.asarray(x)
    if x.ndim < 2:
        raise ConfigError(f"x must have shape (..., n_channels, n_times), got shape {x.shape}")
    bands = resolve_bands(bands, sfreq)
    win, step, _ = _window_params(x.shape[-1], sfreq, window_s, step_s)
    if method == "stft":
        power = _band_power_stft(x, sfreq, bands, win, step)
        return _to_output(np.log(np.maximum(power, np.finfo(np.float32).tiny)).astype(np.float32))
    return _to_output(_de_bandpass(x, sfreq, bands, win, step))


def _de_bandpass(x: np.ndarray, sfreq: float, bands: dict[str, tuple[float, float]], win: int, step: int) -> np.ndarray:
    import scipy.fft

    n = x.shape[-1]
    pad = min(n - 1, int(round(3 * sfreq)))  # odd reflection, as sosfiltfilt pads
    x = np.asarray(x, dtype=np.float32)
    if pad > 0:
        left = 2 * x[..., :1] - x[..., pad:0:-1]
        right = 2 * x[..., -1:] - x[..., -2:-pad - 2:-1]
        x = np.concatenate([left, x, right], axis=-1)
    n_fft = scipy.fft.next_fast_len(x.shape[-1], real=True)
    spectrum = scipy.fft.rfft(x, n=n_fft, axis=-1, workers=-1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sfreq)
    out = []
    for band in bands.values():
        gain = zero_phase_butterworth_gain(freqs, band, sfreq).astype(np.float32)
        filtered = scipy.fft.irfft(spectrum * gain, n=n_fft, axis=-1, workers=-1)[..., pad:pad + n]
        var = _windows(filtered, win, step).var(axis=-1, dtype=np.float64)
        out.append(0.5 * (_LOG_2PIE + np.log(np.maximum(var, 1e-30))))
    return np.stack(out, axis=-1).astype(np.float32)


def _band_power_stft(x: np.ndarray, sfreq: float, bands: dict[str, tuple[float, float]], win: int, step: int) -> np.ndarray:
    import scipy.fft

    frames = _windows(np.asarray(x, dtype=np.float32), win, step) * np.hanning(win).astype(np.float32)
    power = np.abs(scipy.fft.rfft(frames, axis=-1, workers=-1)) ** 2
    freqs = np.fft.rfftfreq(win, 1.0 / sfreq)
    weights = _band_matrix(freqs, bands)
    return power @ weights  # (..., n_channels, n_windows, n_bands)


def _band_matrix(freqs: np.ndarray, bands: dict[str, tuple[float, float]]) -> np.ndarray:
    """(n_freqs, n_bands) matrix that averages the bins of each band."""
    weights = np.zeros((len(freqs), len(bands)), dtype=np.float32)
    for k, (lo, hi) in enumerate(bands.values()):
        mask = (freqs >= lo) & (freqs < hi)
        if not mask.any():
            raise ConfigError(
                f"band {lo}-{hi} Hz holds no frequency bin at a resolution of {freqs[1] - freqs[0]:.3g} Hz; "
                "use a longer window"
            )
        weights[mask, k] = 1.0 / mask.sum()
    return weights


def power_spectral_density(
    x: np.ndarray,
    sfreq: float,
    bands: Mapping[str, Sequence[float]] | None = None,
    window_s: float = 1.0,
    step_s: float | None = None,
    segment_s: float | None = None,
    log: bool = True,
) -> np.ndarray:
    """Band power per window by Welch's method.

    Each window is split into Hann-tapered segments of ``segment_s`` (default:
    half the window) with 50 % overlap; their periodograms are averaged, and
    the band value is the mean power spectral density over bins with
    ``low <= f < high``, as ``ln`` when ``log`` (default).

    Parameters
    ----------
    x : ndarray, shape (..., n_channels, n_times)

    Returns
    -------
    psd : ndarray, shape (..., n_windows, n_channels, n_bands), float32
    """
    from scipy import signal

    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise ConfigError(f"x must have shape (..., n_channels, n_times), got shape {x.shape}")
    bands = resolve_bands(bands, sfreq)
    win, step, _ = _window_params(x.shape[-1], sfreq, window_s, step_s)
    nperseg = max(2, min(win, int(round((segment_s or window_s / 2) * sfreq))))
    freqs, pxx = signal.welch(_windows(x, win, step), fs=sfreq, nperseg=nperseg, axis=-1)
    values = pxx.astype(np.float32) @ _band_matrix(freqs, bands)
    if log:
        values = np.log(np.maximum(values, np.finfo(np.float32).tiny))
    return _to_output(values.astype(np.float32))
