"""Spectral features, the feature cache and sequence building."""
from __future__ import annotations

import logging
import os
import types
import warnings

import numpy as np
import pytest
from scipy import signal

from moodops.components.datasets.deap.deap import Deap
from moodops.components.datasets.formats.legacy_pickle import dump_py2
from moodops.components.datasets.deap.synthetic_deap import synthesize_subject
from moodops.components.errors import ConfigError, UnknownNameError
from moodops.components.features import (
    DEFAULT_BANDS,
    FeatureCache,
    FeatureConfig,
    build_features,
    cache_key,
    differential_entropy,
    make_sequences,
    power_spectral_density,
)
from moodops.components.features import cache as cache_module

FS = 128.0
N_SUBJECTS, N_TRIALS, SECONDS = 3, 6, 8


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """60 s of white noise at 128 Hz, 3 channels."""
    return np.random.default_rng(0).standard_normal((3, int(60 * FS))).astype(np.float32)


def _sine(freq: float, seconds: float = 10.0, fs: float = FS, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    rng = np.random.default_rng(1)
    return (np.sin(2 * np.pi * freq * t)[None] + 0.01 * rng.standard_normal((channels, len(t)))).astype(np.float32)


def _reference_de(x: np.ndarray, fs: float, bands=DEFAULT_BANDS, win_s: float = 1.0) -> np.ndarray:
    """sosfiltfilt + 0.5 ln(2πe var) per non-overlapping window → (windows, channels, bands)."""
    win = int(win_s * fs)
    n_win = x.shape[-1] // win
    out = []
    for band in bands.values():
        sos = signal.butter(4, band, btype="bandpass", fs=fs, output="sos")
        y = signal.sosfiltfilt(sos, x.astype(np.float64), axis=-1)[..., : n_win * win]
        var = y.reshape(*y.shape[:-1], n_win, win).var(axis=-1)
        out.append(0.5 * np.log(2 * np.pi * np.e * var))
    return np.moveaxis(np.stack(out, axis=-1), -2, -3)


# --------------------------------------------------------------------------- differential entropy


def test_bandpass_de_matches_sosfiltfilt_reference_away_from_edges(noise):
    de = differential_entropy(noise, FS, method="bandpass")
    ref = _reference_de(noise, FS)
    assert de.shape == ref.shape == (60, 3, 5)
    assert de.dtype == np.float32
    inner = slice(10, 50)  # windows at least 10 s from either edge
    np.testing.assert_allclose(de[inner], ref[inner], atol=1e-3, rtol=0)
    # Near the edges the two may differ, but not wildly.
    np.testing.assert_allclose(de, ref, atol=1.0, rtol=0)


def test_bandpass_de_matches_reference_for_custom_bands(noise):
    bands = {"low": (2.0, 6.0), "mid": (10.0, 20.0)}
    de = differential_entropy(noise[:1], FS, bands=bands)
    ref = _reference_de(noise[:1], FS, bands)
    assert de.shape == (60, 1, 2)
    np.testing.assert_allclose(de[10:50], ref[10:50], atol=1e-3, rtol=0)


def test_de_of_gaussian_noise_is_gaussian_entropy():
    # Unit-variance white noise: the variance in a band is bandwidth / nyquist.
    x = np.random.default_rng(5).standard_normal((4, int(60 * FS))).astype(np.float32)
    de = differential_entropy(x, FS, bands={"b": (20.0, 40.0)})[10:50].mean()
    expected = 0.5 * np.log(2 * np.pi * np.e * 20.0 / 64.0)
    assert de == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("method", ["bandpass", "stft"])
def test_output_shape_with_leading_axes_and_overlap(method):
    seconds = 10
    x = np.random.default_rng(2).standard_normal((2, 3, 4, int(seconds * FS))).astype(np.float32)
    out = differential_entropy(x, FS, method=method)
    assert out.shape == (2, 3, seconds, 4, 5)
    out = differential_entropy(x, FS, step_s=0.5, method=method)
    win, step, n_times = 128, 64, seconds * 128
    n_windows = 1 + (n_times - win) // step
    assert n_windows == 19
    assert out.shape == (2, 3, n_windows, 4, 5)
    assert np.isfinite(out).all()
    # A trailing remainder shorter than a window is dropped.
    out = differential_entropy(x[..., : int(3.7 * FS)], FS, window_s=1.0, method=method)
    assert out.shape == (2, 3, 3, 4, 5)


@pytest.mark.parametrize("method", ["bandpass", "stft"])
def test_overlapping_windows_interleave_non_overlapping_ones(method, noise):
    full = differential_entropy(noise[:, : int(20 * FS)], FS, method=method)
    half = differential_entropy(noise[:, : int(20 * FS)], FS, step_s=0.5, method=method)
    np.testing.assert_allclose(half[::2], full, atol=1e-5)


@pytest.mark.parametrize("method", ["bandpass", "stft"])
def test_batch_equals_per_trial(method):
    x = np.random.default_rng(3).standard_normal((4, 5, int(12 * FS))).astype(np.float32)
    batch = differential_entropy(x, FS, method=method, step_s=0.5)
    for t in range(len(x)):
        single = differential_entropy(x[t], FS, method=method, step_s=0.5)
        np.testing.assert_allclose(batch[t], single, rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", ["bandpass", "stft"])
def test_10hz_sine_peaks_in_alpha(method):
    de = differential_entropy(_sine(10.0), FS, method=method)
    names = list(DEFAULT_BANDS)
    assert (de.argmax(axis=-1) == names.index("alpha")).all()


@pytest.mark.parametrize(("freq", "band"), [(2.5, "delta"), (6.0, "theta"), (22.0, "beta"), (40.0, "gamma")])
def test_sine_peaks_in_its_band(freq, band):
    for method in ("bandpass", "stft"):
        de = differential_entropy(_sine(freq), FS, method=method)
        assert (de[2:-2].argmax(axis=-1) == list(DEFAULT_BANDS).index(band)).all(), method


def test_white_noise_ranks_bands_by_bandwidth(noise):
    widths = np.array([hi - lo for lo, hi in DEFAULT_BANDS.values()])
    order = np.argsort(widths)
    assert list(order) == [0, 1, 2, 3, 4]  # delta < theta < alpha < beta < gamma in width

    bandpass = differential_entropy(noise, FS, method="bandpass").mean(axis=(0, 1))
    assert (np.diff(bandpass[order]) > 0).all(), bandpass
    # DE of a band ~ 0.5 ln(width) + const for white noise.
    np.testing.assert_allclose(np.diff(bandpass), 0.5 * np.diff(np.log(widths)), atol=0.05)

    # STFT DE is the log *mean* power per bin: flat for white noise, and the
    # band's total power (mean · number of bins) ranks like the bandwidth.
    stft = differential_entropy(noise, FS, method="stft").mean(axis=(0, 1))
    assert np.ptp(stft) < 0.5
    freqs = np.fft.rfftfreq(128, 1 / FS)
    n_bins = np.array([((freqs >= lo) & (freqs < hi)).sum() for lo, hi in DEFAULT_BANDS.values()])
    total = stft + np.log(n_bins)
    assert (np.diff(total[order]) > 0).all(), total


def test_de_scales_with_amplitude(noise):
    de = differential_entropy(noise, FS)
    de10 = differential_entropy(10 * noise, FS)
    np.testing.assert_allclose(de10 - de, np.log(10.0), atol=1e-4)
    s = differential_entropy(noise, FS, method="stft")
    s10 = differential_entropy(10 * noise, FS, method="stft")
    np.testing.assert_allclose(s10 - s, 2 * np.log(10.0), atol=1e-4)


def test_bands_are_clipped_to_nyquist_with_warning():
    x = np.random.default_rng(4).standard_normal((2, 64 * 10)).astype(np.float32)
    with pytest.warns(UserWarning, match="Nyquist") as record:
        out = differential_entropy(x, 64.0)
    assert out.shape == (10, 2, 5)
    assert np.isfinite(out).all()
    messages = [str(w.message) for w in record if "Nyquist" in str(w.message)]
    assert len(messages) == 1 and "gamma" in messages[0]


def test_no_warning_when_bands_fit():
    x = np.random.default_rng(4).standard_normal((2, 128 * 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        differential_entropy(x, FS)


def test_band_entirely_above_nyquist_is_an_error():
    x = np.zeros((2, 640), np.float32)
    with pytest.raises(ConfigError, match="Nyquist"):
        differential_entropy(x, 64.0, bands={"high": (40.0, 50.0)})
    with pytest.raises(ConfigError, match="Nyquist"):
        power_spectral_density(x, 64.0, bands={"edge": (32.0, 40.0)})


@pytest.mark.parametrize("band", [(8.0, 4.0), (5.0, 5.0), (-1.0, 4.0)])
def test_invalid_band_edges(band):
    with pytest.raises(ConfigError, match="low < high"):
        differential_entropy(np.zeros((1, 256), np.float32), FS, bands={"b": band})


def test_method_typo_suggests_bandpass():
    with pytest.raises(ConfigError) as info:
        differential_entropy(np.zeros((1, 256), np.float32), FS, method="bandpas")
    assert "Did you mean 'bandpass'" in str(info.value)
    assert "'stft'" in str(info.value)


def test_window_errors():
    x = np.zeros((2, 100), np.float32)
    with pytest.raises(ConfigError, match="fewer than one"):
        differential_entropy(x, FS, window_s=1.0)
    with pytest.raises(ConfigError, match="window_s"):
        differential_entropy(x, FS, window_s=0.001)
    with pytest.raises(ConfigError, match="step_s"):
        differential_entropy(x, FS, window_s=0.5, step_s=0.001)
    with pytest.raises(ConfigError, match="shape"):
        differential_entropy(np.zeros(256, np.float32), FS)


def test_power_spectral_density_shape_and_alpha_peak():
    x = _sine(10.0, seconds=10.0, channels=3)
    psd = power_spectral_density(x, FS)
    assert psd.shape == (10, 3, 5)
    assert psd.dtype == np.float32
    assert (psd.argmax(axis=-1) == list(DEFAULT_BANDS).index("alpha")).all()
    batched = power_spectral_density(np.stack([x, 2 * x]), FS, step_s=0.5)
    assert batched.shape == (2, 19, 3, 5)
    np.testing.assert_allclose(batched[1] - batched[0], np.log(4.0), atol=1e-4)
    linear = power_spectral_density(x, FS, log=False)
    np.testing.assert_allclose(np.log(linear), psd, atol=1e-4)


# --------------------------------------------------------------------------- FeatureConfig


def test_feature_config_validation():
    with pytest.raises(ConfigError, match="Did you mean 'bandpass'"):
        FeatureConfig(method="bandpas")
    with pytest.raises(ConfigError, match="Did you mean .psd."):
        FeatureConfig(kind="pds")
    with pytest.raises(ConfigError, match="window_s"):
        FeatureConfig(window_s=0)
    FeatureConfig(kind="psd", method="anything")  # the method only matters for DE


# --------------------------------------------------------------------------- build + cache


def _files(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def _arrow_files(folder) -> list[str]:
    return [f for f in _files(folder) if f.endswith(".arrow")]


def _assert_same_features(a, b):
    assert a.x.shape == b.x.shape
    np.testing.assert_array_equal(a.x, b.x)
    assert a.meta.column_names == b.meta.column_names
    assert a.meta.equals(b.meta)


@pytest.fixture(scope="module")
def fresh(deap_master):
    """Features of the pristine fixture computed without a cache."""
    return build_features(Deap(deap_master), FeatureConfig(), cache_dir=None)


def test_build_features_layout(fresh, deap_master):
    fs = fresh
    assert fs.x.shape == (N_SUBJECTS * N_TRIALS * SECONDS, 32, 5)
    assert fs.x.dtype == np.float32
    assert fs.axes == ("channel", "band")
    assert fs.info["cache_hits"] == 0
    assert fs.info["subjects"] == [1, 2, 3]
    assert set(fs.meta.column_names) >= {"subject", "session", "trial", "window", "valence", "arousal",
                                         "dominance", "liking"}
    assert np.bincount(fs.column("subject"))[1:].tolist() == [N_TRIALS * SECONDS] * N_SUBJECTS
    assert fs.column("window").max() == SECONDS - 1
    # Matches differential_entropy on the loaded recordings.
    recs = Deap(deap_master).load_subject(2)
    expected = differential_entropy(np.stack([r.data for r in recs]), 128.0)
    rows = fs.column("subject") == 2
    np.testing.assert_allclose(fs.x[rows], expected.reshape(-1, 32, 5), atol=1e-6)
    np.testing.assert_array_equal(fs.column("valence")[rows][::SECONDS], [r.labels["valence"] for r in recs])


def test_second_build_hits_cache(deap_master, tmp_path, fresh):
    cache = tmp_path / "cache"
    first = build_features(Deap(deap_master), FeatureConfig(), cache)
    assert first.info["cache_hits"] == 0
    assert len(_arrow_files(cache)) == N_SUBJECTS
    calls = []
    second = build_features(Deap(deap_master), FeatureConfig(), cache, progress=lambda *a: calls.append(a))
    assert second.info["cache_hits"] == N_SUBJECTS
    assert calls == [(1, 3, 1, True), (2, 3, 2, True), (3, 3, 3, True)]
    _assert_same_features(first, second)
    _assert_same_features(fresh, second)
    # A subset reuses the per-subject entries.
    subset = build_features(Deap(deap_master, subjects=[2]), FeatureConfig(), cache)
    assert subset.info["cache_hits"] == 1
    np.testing.assert_array_equal(subset.x, fresh.x[fresh.column("subject") == 2])


def test_changed_config_is_a_miss(deap_master, tmp_path):
    cache = tmp_path / "cache"
    build_features(Deap(deap_master), FeatureConfig(), cache)
    other = build_features(Deap(deap_master), FeatureConfig(window_s=2.0), cache)
    assert other.info["cache_hits"] == 0
    assert other.x.shape == (N_SUBJECTS * N_TRIALS * SECONDS // 2, 32, 5)
    assert len(_arrow_files(cache)) == 2 * N_SUBJECTS
    stft = build_features(Deap(deap_master), FeatureConfig(method="stft"), cache)
    assert stft.info["cache_hits"] == 0
    assert build_features(Deap(deap_master), FeatureConfig(window_s=2.0), cache).info["cache_hits"] == N_SUBJECTS


def test_rewritten_subject_file_is_not_served_stale(deap_root, tmp_path, rewrite_subject):
    cache = tmp_path / "cache"
    before = build_features(Deap(deap_root), FeatureConfig(), cache)
    path = deap_root / "data_preprocessed_python" / "s01.dat"
    st = path.stat()
    data, labels = synthesize_subject(1, n_trials=N_TRIALS, seconds=SECONDS, seed=123, effect=3.0)
    with path.open("wb") as f:
        dump_py2({"labels": labels, "data": data}, f)
    assert path.stat().st_size == st.st_size  # same shape: only the mtime can tell
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))

    after = build_features(Deap(deap_root), FeatureConfig(), cache)

    assert after.info["cache_hits"] == N_SUBJECTS - 1
    s1_before = before.x[before.column("subject") == 1]
    s1_after = after.x[after.column("subject") == 1]
    assert not np.allclose(s1_before, s1_after)
    uncached = build_features(Deap(deap_root), FeatureConfig(), None)
    _assert_same_features(uncached, after)
    np.testing.assert_array_equal(after.column("valence")[after.column("subject") == 1][::SECONDS], labels[:, 0])
    # The other subjects are unchanged.
    np.testing.assert_array_equal(before.x[before.column("subject") != 1], after.x[after.column("subject") != 1])


class _InterruptingOS(types.ModuleType):
    """Stands in for ``os`` inside the cache module: ``replace`` is interrupted."""

    def __init__(self) -> None:
        super().__init__("os")
        self.calls = 0

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        self.calls += 1
        assert os.path.exists(src)  # the temporary file was written before the rename
        raise KeyboardInterrupt


def test_interrupted_build_leaves_no_partial_entry(deap_master, tmp_path, monkeypatch, fresh):
    cache = tmp_path / "cache"
    fake = _InterruptingOS()
    monkeypatch.setattr(cache_module, "os", fake)

    with pytest.raises(KeyboardInterrupt):
        build_features(Deap(deap_master), FeatureConfig(), cache)

    assert fake.calls == 1
    files = _files(cache) if cache.exists() else []
    assert not [f for f in files if f.endswith(".arrow")]
    assert not [f for f in files if f.endswith(".tmp")]
    assert files == []

    monkeypatch.undo()
    again = build_features(Deap(deap_master), FeatureConfig(), cache)
    assert again.info["cache_hits"] == 0
    _assert_same_features(fresh, again)
    assert len(_arrow_files(cache)) == N_SUBJECTS
    assert build_features(Deap(deap_master), FeatureConfig(), cache).info["cache_hits"] == N_SUBJECTS


def test_damaged_cache_entry_is_a_miss_and_rebuilt(deap_master, tmp_path, fresh, caplog):
    cache = tmp_path / "cache"
    build_features(Deap(deap_master), FeatureConfig(), cache)
    entries = _arrow_files(cache)
    assert len(entries) == N_SUBJECTS
    damaged = cache / entries[0]
    damaged.write_bytes(b"ARROW1 but not really" + bytes(range(256)) * 4)

    with caplog.at_level(logging.WARNING, logger="moodops.components.features.cache"):
        rebuilt = build_features(Deap(deap_master), FeatureConfig(), cache)

    assert rebuilt.info["cache_hits"] == N_SUBJECTS - 1
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    _assert_same_features(fresh, rebuilt)
    # The entry was rewritten and is readable again.
    assert build_features(Deap(deap_master), FeatureConfig(), cache).info["cache_hits"] == N_SUBJECTS


def test_empty_cache_file_is_a_miss(tmp_path):
    import pyarrow as pa

    cache = FeatureCache(tmp_path)
    key = cache_key({"k": 1})
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    meta = pa.table({"subject": np.array([1, 1], np.int32)})
    path = cache.put(key, x, meta, {"note": "t"})
    got_x, got_meta, got_extra = cache.get(key)
    assert got_extra == {}
    np.testing.assert_array_equal(got_x, x)
    assert got_meta.equals(meta)
    path.write_bytes(b"")
    assert cache.get(key) is None
    assert cache.get(cache_key({"k": 2})) is None


def test_cache_key_is_order_independent_and_sensitive():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


# --------------------------------------------------------------------------- sequences


def _row_index(fs) -> dict[tuple[int, int, int], int]:
    keys = zip(fs.column("subject"), fs.column("trial"), fs.column("window"))
    return {(int(s), int(t), int(w)): i for i, (s, t, w) in enumerate(keys)}


@pytest.mark.parametrize(("seq_len", "step", "per_trial"), [(3, None, 2), (4, None, 2), (3, 1, 6), (8, None, 1),
                                                            (2, 3, 3)])
def test_make_sequences_shapes_and_trial_boundaries(fresh, seq_len, step, per_trial):
    y = np.arange(fresh.n_samples) % 2
    base = type(fresh)(fresh.x, fresh.meta, fresh.axes, y, ("a", "b"), dict(fresh.info))
    seq = make_sequences(base, seq_len, step)
    n = N_SUBJECTS * N_TRIALS * per_trial
    assert seq.x.shape == (n, seq_len, 32, 5)
    assert seq.axes == ("window", "channel", "band")
    assert seq.meta.num_rows == n
    assert seq.class_names == ("a", "b")
    index = _row_index(fresh)
    for i in range(n):
        s, t, w = (int(seq.column(c)[i]) for c in ("subject", "trial", "window"))
        rows = [index.get((s, t, w + j)) for j in range(seq_len)]
        assert None not in rows, "sequence runs past its trial's end"
        np.testing.assert_array_equal(seq.x[i], fresh.x[rows])
        assert seq.y[i] == y[rows[0]]
        assert w % (step or seq_len) == 0
    # Each trial contributes the same number of sequences.
    trials = list(zip(seq.column("subject"), seq.column("trial")))
    assert len(set(trials)) == N_SUBJECTS * N_TRIALS
    assert all(trials.count(k) == per_trial for k in set(trials))


def test_make_sequences_of_one(fresh):
    seq = make_sequences(fresh, 1)
    assert seq.x.shape == (fresh.n_samples, 1, 32, 5)
    np.testing.assert_array_equal(seq.x[:, 0], fresh.x)


def test_make_sequences_errors(fresh):
    with pytest.raises(ConfigError, match="seq_len"):
        make_sequences(fresh, 0)
    with pytest.raises(ConfigError, match="seq_len"):
        make_sequences(fresh, SECONDS + 1)


def test_band_from_zero_hz_is_a_lowpass_for_bandpass_de():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1280)).astype(np.float32)
    low = differential_entropy(x, 128.0, bands={"slow": (0.0, 4.0)})
    wide = differential_entropy(x, 128.0, bands={"wide": (0.0, 30.0)})
    assert np.isfinite(low).all() and (wide > low).all()
