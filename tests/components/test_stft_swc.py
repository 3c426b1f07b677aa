"""Mood Reader's input (§4.1): DE by STFT on 4-s non-overlapping Hann windows cut in reverse order,
grouped four at a time (SWC)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from moodops.components.errors import ConfigError
from moodops.components.features.build import FeatureConfig, make_sequences
from moodops.components.features.spectral import DEFAULT_BANDS
from moodops.components.types import FeatureSet

SFREQ = 200.0
PAPER = FeatureConfig(kind="de", method="stft", window_s=4.0, window_origin="end")


def test_a_known_sinusoid_gives_the_alpha_band_its_analytic_de():
    """A 10-Hz sine of amplitude A, on a bin of the 4-s window (0.25-Hz bins): the Hann-tapered FFT puts
    (A·N/4)² in its bin and (A·N/8)² in each neighbour, so alpha's mean power over its 24 bins
    (8 ≤ f < 14 Hz) is 3·A²·N²/32 / 24, and DE = ln of that."""
    amplitude, n = 3.0, int(4 * SFREQ)
    t = np.arange(4 * n) / SFREQ  # four windows
    x = amplitude * np.sin(2 * np.pi * 10.0 * t)[None]  # one channel
    de = PAPER.compute(x, SFREQ)
    assert de.shape == (4, 1, 5)
    alpha = list(DEFAULT_BANDS).index("alpha")
    expected = np.log(3 * amplitude ** 2 * n ** 2 / 32 / 24)
    np.testing.assert_allclose(de[:, 0, alpha], expected, atol=0.02)  # the symmetric Hann leaks a little
    others = np.delete(de[:, 0], alpha, axis=1)
    assert (others < expected - 8).all()  # nothing of the sine elsewhere (e⁻⁸ of its power at most)
    # four times the amplitude: DE rises by ln 16 in alpha
    np.testing.assert_allclose(PAPER.compute(4 * x, SFREQ)[:, 0, alpha] - de[:, 0, alpha], np.log(16), atol=1e-4)


def test_windows_are_cut_from_the_end_so_the_remainder_dropped_is_at_the_start():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, int(18 * SFREQ))).astype(np.float32)  # 18 s: four 4-s windows and 2 s over
    x[:, : int(2 * SFREQ)] *= 1000.0  # a burst in the first two seconds
    start = FeatureConfig(kind="de", method="stft", window_s=4.0).compute(x, SFREQ)
    end = PAPER.compute(x, SFREQ)
    assert start.shape == end.shape == (4, 2, 5)
    assert start[0].mean() > end[0].mean() + 5  # start origin sees the burst in window 0
    np.testing.assert_allclose(end, FeatureConfig(kind="de", method="stft", window_s=4.0).compute(
        x[:, int(2 * SFREQ):], SFREQ))  # end origin: exactly the last 16 s
    raw = PAPER.raw_windows(x, SFREQ)
    assert raw.shape == (4, 2, 800) and np.array_equal(raw[-1], x[:, -800:]) and np.array_equal(raw[0],
                                                                                              x[:, 400:1200])


def windows_table(n_windows: tuple[int, ...]) -> FeatureSet:
    trial = np.concatenate([np.full(n, k + 1) for k, n in enumerate(n_windows)])
    window = np.concatenate([np.arange(n) for n in n_windows])
    meta = pa.table({"subject": np.ones_like(trial, dtype=np.int32), "session": np.ones_like(trial, dtype=np.int32),
                     "trial": trial.astype(np.int32), "window": window.astype(np.int32)})
    x = window.astype(np.float32)[:, None, None] * np.ones((1, 2, 5), np.float32)
    return FeatureSet(x=x, meta=meta, axes=("channel", "band"), extra={"eye": window.astype(np.float32)[:, None]})


def test_swc_groups_four_windows_ending_on_each_trials_last_window():
    features = windows_table((6, 9))
    start = make_sequences(features, 4)
    end = make_sequences(features, 4, origin="end")
    firsts = lambda s: [list(map(int, s.x[i, :, 0, 0])) for i in range(len(s.x))]  # noqa: E731
    assert firsts(start) == [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]]
    assert firsts(end) == [[2, 3, 4, 5], [1, 2, 3, 4], [5, 6, 7, 8]]
    assert end.x.shape == (3, 4, 2, 5) and end.extra["eye"][:, :, 0].tolist() == [[2, 3, 4, 5], [1, 2, 3, 4],
                                                                                     [5, 6, 7, 8]]
    assert end.column("window").tolist() == [2, 1, 5] and end.column("trial").tolist() == [1, 2, 2]
    # "w/o SWC" (Table 1): one window per sample keeps every window
    assert make_sequences(features, 1, origin="end").x.shape == (15, 1, 2, 5)


def test_a_sample_spans_sixteen_seconds_the_encoder_segment_of_the_paper():
    x = np.random.default_rng(1).standard_normal((62, int(47.5 * SFREQ)))
    raw = PAPER.raw_windows(x, SFREQ)  # 11 windows of 800 samples
    assert raw.shape == (11, 62, 800)
    # four windows per sample → 3200 samples = 100 tokens of 32, the MBSM segment of 16 s at 200 Hz
    assert 4 * raw.shape[-1] == 16 * SFREQ and 4 * raw.shape[-1] // 32 == 100


def test_an_unknown_origin_is_a_clear_error():
    with pytest.raises(ConfigError, match="window_origin"):
        FeatureConfig(window_origin="middle")
    with pytest.raises(ConfigError, match="window_origin"):
        make_sequences(windows_table((4,)), 2, origin="middle")
