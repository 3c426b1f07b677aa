"""Extra model inputs built alongside x: raw windows, other modalities, the dfc feature, the cache."""
from __future__ import annotations

import numpy as np
import pytest

from moodops.components.datasets.deap.deap import Deap
from moodops.components.errors import ConfigError, DataError
from moodops.components.features import FeatureCache, FeatureConfig, build_features, make_sequences


def test_raw_windows_are_the_windows_of_x(deap_master):
    config = FeatureConfig(window_s=1.0, extras=("raw",))
    features = build_features(Deap(deap_master, subjects=[1]), config, None)
    raw = features.extra["raw"]
    assert raw.shape == (len(features.x), 32, 128)
    trial = Deap(deap_master, subjects=[1]).load_subject(1)[0]
    # Row k of trial 0 is samples [128k, 128k+128) of that trial's EEG.
    np.testing.assert_array_equal(raw[3], trial.data[:, 3 * 128:4 * 128].astype(np.float32))
    # The DE of a raw window equals the x row computed from the whole trial (same windows).
    from moodops.components.features import differential_entropy

    np.testing.assert_allclose(differential_entropy(raw[5], 128.0, method="stft")[0],
                               FeatureConfig(method="stft").compute(trial.data, 128.0)[5], rtol=1e-4, atol=1e-4)
    sequences = make_sequences(features, 4)
    assert sequences.extra["raw"].shape == (len(sequences.x), 4, 32, 128)
    np.testing.assert_array_equal(sequences.extra["raw"][0, 1], raw[1])


def test_extras_are_cached_and_part_of_the_key(deap_master, tmp_path):
    cache = tmp_path / "cache"
    plain = build_features(Deap(deap_master, subjects=[1, 2]), FeatureConfig(), cache)
    with_raw = build_features(Deap(deap_master, subjects=[1, 2]), FeatureConfig(extras=("raw",)), cache)
    assert with_raw.info["cache_hits"] == 0 and plain.extra == {}
    again = build_features(Deap(deap_master, subjects=[1, 2]), FeatureConfig(extras=("raw",)), cache)
    assert again.info["cache_hits"] == 2
    np.testing.assert_array_equal(again.extra["raw"], with_raw.extra["raw"])
    np.testing.assert_array_equal(again.x, plain.x)


def test_cache_round_trips_extra_arrays(tmp_path):
    import pyarrow as pa

    cache = FeatureCache(tmp_path)
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    eye = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]], np.float32)
    cache.put("k" * 32, x, pa.table({"subject": [1, 1, 1]}), {}, {"eye": eye})
    got_x, meta, extra = cache.get("k" * 32)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(extra["eye"], eye)  # NaN (a missing window) survives
    assert meta.column_names == ["subject"]


class _DeapWithEye(Deap):
    """DEAP plus a per-window 'eye' array whose window count a test can break."""

    modalities = ("eeg", "raw_eeg", "eye")
    windows_off_by = 0

    def load_subject(self, subject):
        recordings = super().load_subject(subject)
        for r in recordings:
            n = r.data.shape[-1] // 128 + self.windows_off_by
            r.extra["eye"] = np.full((n, 3), float(r.trial), np.float32)
        return recordings


def test_other_modality_rows_follow_their_trial(deap_master):
    features = build_features(_DeapWithEye(deap_master, subjects=[1]), FeatureConfig(extras=("eye",)), None)
    np.testing.assert_array_equal(features.extra["eye"][:, 0], features.column("trial").astype(np.float32))


def test_window_count_mismatch_names_the_trial(deap_master):
    dataset = _DeapWithEye(deap_master, subjects=[2])
    dataset.windows_off_by = -1
    with pytest.raises(DataError, match=r"deap subject 2 session 1 trial 1: 'eye' has 7 windows but the EEG has 8"):
        build_features(dataset, FeatureConfig(extras=("eye",)), None)
    with pytest.raises(DataError, match="no 'face' features"):
        build_features(Deap(deap_master, subjects=[1]), FeatureConfig(extras=("face",)), None)
    with pytest.raises(ConfigError, match="Allowed values are 'raw', 'eye', 'face', 'psd'"):
        FeatureConfig(extras=("eyes",))


def test_dfc_feature_builds_connectivity_windows(deap_master):
    features = build_features(Deap(deap_master, subjects=[1]), FeatureConfig(kind="dfc", window_s=2.0), None)
    assert features.axes == ("channel", "channel")
    assert features.x.shape[1:] == (32, 32) and len(features.x) == 6 * 4
    np.testing.assert_allclose(np.diagonal(features.x, axis1=1, axis2=2), 1.0)
    np.testing.assert_allclose(features.x, np.swapaxes(features.x, 1, 2), atol=1e-6)


def test_dfc_is_the_pearson_of_the_window_and_psd_nodes_use_their_own_bands(deap_master, tmp_path):
    """The DFCN's inputs: x = Eq. 1 per window, extra psd = Welch band power in the bands feature_params
    gives psd (not the shared default), both cut from the same windows; the settings are part of the key."""
    from moodops.components.features import power_spectral_density

    bands = {"theta": (4.0, 8.0), "slow_alpha": (8.0, 10.0), "alpha": (8.0, 12.0), "beta": (12.0, 30.0),
             "gamma": (30.0, 45.0)}
    config = FeatureConfig(kind="dfc", window_s=2.0, extras=("psd",), params={"psd": {"bands": bands}})
    cache = tmp_path / "cache"
    features = build_features(Deap(deap_master, subjects=[1]), config, cache)
    trial = Deap(deap_master, subjects=[1]).load_subject(1)[0].data.astype(np.float32)
    window = trial[:, 2 * 256:3 * 256]  # window 2 of trial 0
    np.testing.assert_allclose(features.x[2], np.corrcoef(window), atol=1e-5)
    assert features.extra["psd"].shape == (len(features.x), 32, 5)
    np.testing.assert_allclose(features.extra["psd"][2],
                               power_spectral_density(window, 128.0, bands, window_s=2.0)[0], rtol=1e-4, atol=1e-4)
    default = build_features(Deap(deap_master, subjects=[1]), FeatureConfig(kind="dfc", window_s=2.0,
                                                                             extras=("psd",)), cache)
    assert default.info["cache_hits"] == 0  # other bands, another cache entry
    assert not np.allclose(default.extra["psd"], features.extra["psd"])
    np.testing.assert_array_equal(default.x, features.x)
