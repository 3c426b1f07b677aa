"""Dynamic functional connectivity: Pearson correlation of the signals per window (Zheng et al. Eq. 1, feature
``dfc``), and the spectral reading kept as ``spectral_dfc``."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from moodops.components.errors import ConfigError
from moodops.components.features import pearson_connectivity, spectral_connectivity

FS = 128.0


@pytest.fixture(scope="module")
def eeg() -> np.ndarray:
    """(trials=2, channels=5, 10 s) of coloured noise: channels share some spectral shape."""
    rng = np.random.default_rng(1)
    white = rng.standard_normal((2, 5, int(10 * FS)))
    b, a = signal.butter(2, [6.0, 20.0], btype="bandpass", fs=FS)
    mixed = white + 3.0 * signal.lfilter(b, a, white[:, :1], axis=-1) * np.array([0, 1, 2, 0.5, 0])[:, None]
    return mixed.astype(np.float32)


def _slow(x: np.ndarray, fs: float, window_s: float, fmin: float, fmax: float, step_s: float | None = None,
          segment_s: float | None = None) -> np.ndarray:
    """Window by window, with scipy's Welch and numpy's corrcoef: (n_windows, C, C)."""
    win = int(round(window_s * fs))
    step = win if step_s is None else int(round(step_s * fs))
    nperseg = int(round((segment_s or window_s / 2) * fs))
    out = []
    for start in range(0, x.shape[-1] - win + 1, step):
        freqs, pxx = signal.welch(x[:, start:start + win], fs=fs, nperseg=nperseg, axis=-1)
        keep = (freqs >= fmin) & (freqs <= fmax)
        out.append(np.corrcoef(np.log(pxx[:, keep])))
    return np.stack(out)


def test_matches_welch_and_corrcoef_window_by_window(eeg: np.ndarray) -> None:
    got = spectral_connectivity(eeg, FS)  # defaults: 3-s windows, span of the default bands (1-50 Hz)
    assert got.dtype == np.float32 and got.shape == (2, 3, 5, 5)
    for trial in range(2):
        np.testing.assert_allclose(got[trial], _slow(eeg[trial], FS, 3.0, 1.0, 50.0), atol=1e-5)


def test_matches_slow_way_with_explicit_range_step_and_segment(eeg: np.ndarray) -> None:
    got = spectral_connectivity(eeg[0], FS, window_s=2.0, step_s=1.0, fmin=4.0, fmax=45.0, segment_s=0.5)
    want = _slow(eeg[0], FS, 2.0, 4.0, 45.0, step_s=1.0, segment_s=0.5)
    assert got.shape == want.shape == (9, 5, 5)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_default_range_follows_the_bands(eeg: np.ndarray) -> None:
    bands = {"theta": (4.0, 8.0), "beta": (14.0, 30.0)}
    got = spectral_connectivity(eeg[0], FS, bands=bands)
    np.testing.assert_allclose(got, _slow(eeg[0], FS, 3.0, 4.0, 30.0), atol=1e-5)
    assert not np.allclose(got, spectral_connectivity(eeg[0], FS), atol=1e-3)


def test_symmetric_unit_diagonal_and_bounded(eeg: np.ndarray) -> None:
    c = spectral_connectivity(eeg, FS, window_s=1.0)
    np.testing.assert_allclose(c, np.swapaxes(c, -1, -2), atol=1e-6)
    np.testing.assert_array_equal(np.diagonal(c, axis1=-2, axis2=-1), 1.0)
    assert c.min() >= -1.0 and c.max() <= 1.0


def test_same_signal_scaled_correlates_one(eeg: np.ndarray) -> None:
    x = eeg[0].copy()
    x[3] = -7.5 * x[1]  # same spectral shape; a gain (even negative) only shifts the log spectrum
    c = spectral_connectivity(x, FS)
    np.testing.assert_allclose(c[:, 1, 3], 1.0, atol=1e-5)
    assert (c[:, 0, 4] < 0.99).all()  # independent noise does not


def test_flat_channel_gives_zero_correlation_and_no_nan(eeg: np.ndarray) -> None:
    x = eeg.copy()
    x[0, 2] = 0.0
    x[1, 4] = 0.1  # a constant offset: Welch detrends it to round-off only
    c = spectral_connectivity(x, FS)
    assert np.isfinite(c).all()
    np.testing.assert_array_equal(c[0, :, 2, [0, 1, 3, 4]], 0.0)
    np.testing.assert_array_equal(c[1, :, 4, :4], 0.0)
    np.testing.assert_array_equal(c[0, :, 2, 2], 1.0)
    # the other channels are untouched
    np.testing.assert_allclose(c[0][:, [0, 1], :][:, :, [0, 1]],
                               spectral_connectivity(eeg[0, [0, 1]], FS), atol=1e-6)


def test_leading_axes_are_kept_and_independent(eeg: np.ndarray) -> None:
    stacked = np.stack([eeg, eeg[::-1]])  # (2, trials, channels, times)
    c = spectral_connectivity(stacked, FS)
    assert c.shape == (2, 2, 3, 5, 5)
    np.testing.assert_allclose(c[1, 0], spectral_connectivity(eeg[1], FS), atol=1e-6)
    np.testing.assert_allclose(c[0, 1], c[1, 0], atol=1e-6)


def test_remainder_shorter_than_a_window_is_dropped(eeg: np.ndarray) -> None:
    assert spectral_connectivity(eeg[0, :, : int(7.5 * FS)], FS).shape == (2, 5, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fmin": 30.0, "fmax": 10.0}, "fmin=30.0"),
        ({"fmin": -1.0, "fmax": 10.0}, "fmin=-1.0"),
        ({"fmin": 10.0, "fmax": 10.2}, "fmin=10.0"),  # fewer than 2 bins
        ({"window_s": 20.0}, "20.0-s window"),
        ({"window_s": 0.001}, "window_s"),
        ({"segment_s": -1.0}, "segment_s"),
        ({"bands": {"x": (80.0, 90.0)}}, "Nyquist"),
    ],
)
def test_bad_values_are_config_errors(eeg: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        spectral_connectivity(eeg, FS, **kwargs)


def test_needs_channels_and_times() -> None:
    with pytest.raises(ConfigError, match="n_channels, n_times"):
        spectral_connectivity(np.zeros(512), FS)


# --------------------------------------------------------------------------- Eq. 1: Pearson of the signal


def _bandpassed(x: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    sos = signal.butter(4, band, btype="bandpass", fs=FS, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)


@pytest.mark.parametrize("band", [(4.0, 45.0), (1.0, 50.0), (8.0, 13.0)], ids=["deap-4-45", "1-50", "alpha"])
def test_independent_channels_near_zero_shared_source_near_one_whatever_the_band_pass(band) -> None:
    rng = np.random.default_rng(3)
    n = int(60 * FS)
    independent = rng.standard_normal((6, n))
    source = rng.standard_normal(n)
    shared = source[None] * np.array([1.0, -2.0, 0.5])[:, None] + 0.05 * rng.standard_normal((3, n))
    x = _bandpassed(np.concatenate([independent, shared]), band)  # the filter every channel went through
    c = pearson_connectivity(x, FS, window_s=3.0)
    assert c.shape == (20, 9, 9)
    off = ~np.eye(6, dtype=bool)
    # 3 s of a band-limited signal has few independent samples: the narrow alpha band leaves ~15
    tolerance = 0.35 if band == (8.0, 13.0) else 0.15
    assert np.abs(c[:, :6, :6][:, off]).mean() < tolerance / 2 and np.abs(c[:, :6, :6][:, off]).max() < 2 * tolerance
    np.testing.assert_allclose(np.abs(c[:, 6:, 6:]), 1.0, atol=0.02)  # a gain, even negative, keeps |r| = 1
    assert (c[:, 6, 7] < -0.98).all() and (c[:, 6, 8] > 0.98).all()
    # the spectral reading, by contrast, sees mostly the shared filter in independent channels
    if band == (4.0, 45.0):
        spectral = spectral_connectivity(x[:6], FS, window_s=3.0, fmin=1.0, fmax=50.0)
        assert spectral[:, off].mean() > 0.8


def test_pearson_matches_corrcoef_window_by_window(eeg: np.ndarray) -> None:
    got = pearson_connectivity(eeg, FS, window_s=2.0, step_s=1.5)
    win, step = int(2 * FS), int(1.5 * FS)
    starts = range(0, eeg.shape[-1] - win + 1, step)
    assert got.dtype == np.float32 and got.shape == (2, len(starts), 5, 5)
    for trial in range(2):
        want = np.stack([np.corrcoef(eeg[trial, :, s:s + win]) for s in starts])
        np.testing.assert_allclose(got[trial], want, atol=1e-5)


def test_pearson_flat_channel_is_zero_not_nan(eeg: np.ndarray) -> None:
    x = eeg.copy()
    x[0, 2] = 0.0
    x[1, 4] = 3.0  # constant: no variance
    c = pearson_connectivity(x, FS)
    assert np.isfinite(c).all()
    np.testing.assert_array_equal(c[0, :, 2, [0, 1, 3, 4]], 0.0)
    np.testing.assert_array_equal(c[1, :, 4, :4], 0.0)
    np.testing.assert_array_equal(np.diagonal(c, axis1=-2, axis2=-1), 1.0)


def test_pearson_bad_input_is_a_config_error(eeg: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="n_channels, n_times"):
        pearson_connectivity(np.zeros(512), FS)
    with pytest.raises(ConfigError, match="20.0-s window"):
        pearson_connectivity(eeg, FS, window_s=20.0)
    with pytest.raises(ConfigError, match="sfreq"):
        pearson_connectivity(eeg, 0.0)
