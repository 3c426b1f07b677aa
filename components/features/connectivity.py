"""Dynamic functional connectivity (DFC): one channel × channel graph per window.

Both functions take ``x`` with shape ``(..., n_channels, n_times)`` and return
``(..., n_windows, n_channels, n_channels)``, windows cut exactly as in
:mod:`moodops.components.features.spectral` (``window_s`` long, every
``step_s``, trailing remainder dropped):

- :func:`pearson_connectivity` (feature ``dfc``) is the dynamic brain network
  of Zheng, Shao, Zhang & Zhu, "Prior-driven dynamic brain networks for
  multi-modal emotion recognition", MICCAI 2023 (LNCS, pp. 389–398,
  doi:10.1007/978-3-031-43993-3_38), §2 Eq. 1: "a functional connectivity
  network (i.e., matrix) by computing Pearson correlation coefficient between
  EEG from a pair of channels within the t-th time window",
  ``C_ij(t) = cov(x_i(t), x_j(t)) / (σ_x_i(t) σ_x_j(t))``, on the signal itself;
- :func:`spectral_connectivity` (feature ``spectral_dfc``) correlates the
  channels' log Welch spectra instead. It was moodops' first reading of Eq. 1
  and is kept under its own name only: on a band-limited release it mostly
  measures the filter (on DEAP's 4–45 Hz band-pass, independent white-noise
  channels correlate at about 0.92 spectrally and about 0.00 in time).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from moodops.components.errors import ConfigError
from moodops.components.features.spectral import _window_params, _windows, resolve_bands

#: A window whose standard deviation is at most this fraction of its largest
#: absolute value is flat: below float32 resolution its spectrum is round-off.
_FLAT_TOLERANCE = 1e-6


def pearson_connectivity(x: np.ndarray, sfreq: float, window_s: float = 3.0, step_s: float | None = None
                         ) -> np.ndarray:
    """Pearson correlation of the channels' signals within each window (Zheng et al. 2023, Eq. 1).

    Vectorised over every leading axis (trials) and every window: each
    window's channels are centred and scaled to unit norm, then one matrix
    product per window gives all channel pairs.

    Parameters
    ----------
    x : ndarray, shape (..., n_channels, n_times)
    sfreq : float
        Sampling rate in Hz.
    window_s, step_s : float
        Window length and hop in seconds (hop defaults to the window length:
        non-overlapping windows, as the paper's "divided non-overlapping sliding
        time window").

    Returns
    -------
    connectivity : ndarray, shape (..., n_windows, n_channels, n_channels), float32
        Symmetric, in [-1, 1], ones on the diagonal. Independent channels give
        values near 0 and channels sharing a source values near 1, whatever
        band-pass the recording went through. A channel that is flat in a
        window (no variance, up to float32 round-off) has correlation 0 with
        the others there, never NaN.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ConfigError(f"x must have shape (..., n_channels, n_times), got shape {x.shape}")
    if not sfreq > 0:
        raise ConfigError(f"The 'sfreq' parameter must be positive. Got {sfreq}.")
    win, step, _ = _window_params(x.shape[-1], sfreq, window_s, step_s)
    frames = np.swapaxes(_windows(np.asarray(x, dtype=np.float32), win, step), -3, -2)  # (..., W, C, win)
    centred = frames - frames.mean(axis=-1, keepdims=True, dtype=np.float64)
    norm = np.linalg.norm(centred, axis=-1, keepdims=True)
    scale = np.abs(frames).max(axis=-1, keepdims=True)
    valid = norm > _FLAT_TOLERANCE * np.sqrt(win) * scale
    unit = np.where(valid, centred / np.where(valid, norm, 1.0), 0.0)
    corr = np.clip(unit @ np.swapaxes(unit, -1, -2), -1.0, 1.0)
    corr[..., np.eye(x.shape[-2], dtype=bool)] = 1.0
    return np.ascontiguousarray(corr, dtype=np.float32)


def spectral_connectivity(
    x: np.ndarray,
    sfreq: float,
    bands: Mapping[str, Sequence[float]] | None = None,
    window_s: float = 3.0,
    step_s: float | None = None,
    fmin: float | None = None,
    fmax: float | None = None,
    segment_s: float | None = None,
) -> np.ndarray:
    """Pearson correlation between the channels' spectra, per window.

    In each window every channel is described by its Welch power spectral
    density (Hann-tapered segments of ``segment_s``, default half the window,
    50 % overlap, as :func:`~moodops.components.features.spectral.power_spectral_density`)
    at the bins with ``fmin <= f <= fmax``, taken as natural ``ln`` power: the
    log makes the correlation follow the spectral *shape* rather than the one
    or two strongest bins. The connectivity of two channels is the Pearson
    correlation of those vectors.

    Parameters
    ----------
    x : ndarray, shape (..., n_channels, n_times)
    sfreq : float
        Sampling rate in Hz.
    bands : mapping name → (low, high) Hz, optional
        Only used for the default frequency range: ``fmin``/``fmax`` default to
        the lowest/highest edge of :func:`resolve_bands` (``bands``), i.e.
        1–50 Hz for the default bands.
    window_s, step_s : float
        Window length and hop in seconds (hop defaults to the window length).
    fmin, fmax : float, optional
        Inclusive frequency range of the spectra that are correlated.
    segment_s : float, optional
        Welch segment length in seconds (default ``window_s / 2``).

    Returns
    -------
    connectivity : ndarray, shape (..., n_windows, n_channels, n_channels), float32
        Symmetric, in [-1, 1], with ones on the diagonal. A channel that is
        flat in a window (no spectrum to correlate) has correlation 0 with the
        other channels in that window, never NaN.
    """
    from scipy import signal

    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise ConfigError(f"x must have shape (..., n_channels, n_times), got shape {x.shape}")
    if not sfreq > 0:
        raise ConfigError(f"The 'sfreq' parameter must be positive. Got {sfreq}.")
    if fmin is None or fmax is None:
        resolved = resolve_bands(bands, sfreq)
        fmin = min(lo for lo, _ in resolved.values()) if fmin is None else fmin
        fmax = max(hi for _, hi in resolved.values()) if fmax is None else fmax
    fmin, fmax = float(fmin), float(fmax)
    if not 0.0 <= fmin < fmax:
        raise ConfigError(f"`0 <= fmin < fmax` must hold, but got (fmin={fmin}, fmax={fmax})")
    win, step, _ = _window_params(x.shape[-1], sfreq, window_s, step_s)
    if segment_s is not None and not segment_s > 0:
        raise ConfigError(f"The 'segment_s' parameter must be positive. Got {segment_s}.")
    nperseg = max(2, min(win, int(round((segment_s or window_s / 2) * sfreq))))

    frames = _windows(x, win, step)  # (..., C, W, win)
    freqs, pxx = signal.welch(frames, fs=sfreq, nperseg=nperseg, axis=-1)
    keep = (freqs >= fmin) & (freqs <= fmax)
    if keep.sum() < 2:
        raise ConfigError(
            f"the range fmin={fmin} to fmax={fmax} Hz holds {int(keep.sum())} frequency bin(s) at a resolution of "
            f"{freqs[1] - freqs[0]:.3g} Hz; a correlation needs at least 2: widen the range or use a longer "
            "window/segment"
        )
    features = np.log(np.maximum(pxx[..., keep].astype(np.float64), np.finfo(np.float32).tiny))
    features = np.swapaxes(features, -3, -2)  # (..., W, C, K)

    # Pearson correlation of all channel pairs at once: centre, scale to unit
    # norm, then one matrix product per window.
    centred = features - features.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(centred, axis=-1, keepdims=True)
    flat = np.swapaxes(_flat_windows(frames), -2, -1)[..., None]  # (..., W, C, 1)
    valid = (norm > 0) & ~flat
    unit = np.where(valid, centred / np.where(valid, norm, 1.0), 0.0)
    corr = np.clip(unit @ np.swapaxes(unit, -1, -2), -1.0, 1.0)
    eye = np.eye(x.shape[-2], dtype=bool)
    corr[..., eye] = 1.0
    return np.ascontiguousarray(corr, dtype=np.float32)


def _flat_windows(frames: np.ndarray) -> np.ndarray:
    """(..., C, W, win) → bool (..., C, W): windows that are constant up to round-off.

    Welch's detrending leaves a flat window only round-off, whose log spectrum
    would correlate at random; such a channel is treated as having no spectrum.
    """
    scale = np.abs(frames).max(axis=-1)
    return frames.std(axis=-1, dtype=np.float64) <= _FLAT_TOLERANCE * scale


__all__ = ["pearson_connectivity", "spectral_connectivity"]
