"""SEED's eye movements (SEED_Multimodal) and SEED-IV's raw EEG (eeg_raw_data): readers and synthetic writers."""
from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from moodops.components.datasets.formats.safe_pickle import load_pickle
from moodops.components.datasets.preprocess import Preprocess, preprocess
from moodops.components.datasets.seed.seed import (
    BANDS,
    CHANNELS,
    N_EYE_FEATURES,
    N_SEED_EYE_FEATURES,
    SEED_EYE_DIR,
    SEED_EYE_SUBJECTS,
    SEED_IV_SESSION_LABELS,
    Seed,
    SeedIV,
    eye_windows,
)
from moodops.components.datasets.seed.synthetic_seed import (
    SEED_EYE_FEATURES,
    SEED_LABELS,
    write_synthetic_seed,
    write_synthetic_seed_iv,
)
from moodops.components.errors import ConfigError, DataError
from moodops.components.features import FeatureConfig, build_features
from moodops.components.features.spectral import differential_entropy
from moodops.components.types import Recording

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
EYE_SECONDS = 13  # 3 whole 4-s windows per clip and 0-2 s left over
RAW_ONLY = Preprocess(l_freq=None, h_freq=None, notch=None)  # resampling only: fast


def _eye_dir(root: Path) -> Path:
    return root.joinpath(*SEED_EYE_DIR)


def _raw_files(root: Path, subject: int = 1) -> list[Path]:
    """A SEED subject's Preprocessed_EEG files in date (= session) order."""
    return sorted((root / "Preprocessed_EEG").glob(f"{subject}_*.mat"), key=lambda p: p.name.split("_")[1])


def _stored_clips(root: Path, subject: int, session: int) -> list[np.ndarray]:
    """The eye file's rows split into clips with the EEG's whole 4-s windows."""
    eeg = {k: v for k, v in scipy.io.loadmat(_raw_files(root, subject)[session - 1]).items() if not k.startswith("__")}
    windows = [eeg[k].shape[1] // 800 for k in sorted(eeg, key=lambda k: int(k.rsplit("_eeg", 1)[1]))]
    stored = load_pickle(_eye_dir(root) / f"{subject}_{session}")
    rows = np.concatenate([stored["train_data_eye"], stored["test_data_eye"]])
    return np.split(rows, np.cumsum(windows)[:-1])


@pytest.fixture(scope="module")
def seed_master(tmp_path_factory) -> Path:
    """A pristine synthetic SEED with eye files: 7 subjects (6 and 7 without eye data), 13-s clips. Never modify."""
    return write_synthetic_seed(tmp_path_factory.mktemp("seed"), n_subjects=7, seconds=EYE_SECONDS, seed=0)


@pytest.fixture(scope="module")
def small_seed_master(tmp_path_factory) -> Path:
    return write_synthetic_seed(tmp_path_factory.mktemp("seed1"), n_subjects=1, seconds=9, seed=4)


@pytest.fixture
def small_seed(small_seed_master, tmp_path) -> Path:
    """A private copy of a 1-subject synthetic SEED (9-s clips) that a test may damage."""
    return Path(shutil.copytree(small_seed_master, tmp_path / "seed"))


@pytest.fixture(scope="module")
def iv_master(tmp_path_factory) -> Path:
    """A pristine synthetic SEED-IV with raw EEG at 200 Hz: 1 subject, 1-2 windows (4-8 s) per trial."""
    return write_synthetic_seed_iv(tmp_path_factory.mktemp("iv"), n_subjects=1, windows_per_trial=(1, 2), seed=0,
                                   with_raw=True)


@pytest.fixture
def iv_root(iv_master, tmp_path) -> Path:
    return Path(shutil.copytree(iv_master, tmp_path / "iv"))


def _window_accuracy(train, test) -> float:
    """Logistic regression on single windows; mean imputation and z-scores fit on the training trials."""
    from sklearn.linear_model import LogisticRegression

    def stack(trials):
        return np.concatenate([x for x, _ in trials]), np.concatenate([np.full(len(x), c) for x, c in trials])

    (x, y), (x_test, y_test) = stack(train), stack(test)
    mean = np.nanmean(x, axis=0)
    x, x_test = np.where(np.isnan(x), mean, x), np.where(np.isnan(x_test), mean, x_test)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    clf = LogisticRegression(max_iter=2000).fit((x - mu) / sd, y)
    return float(clf.score((x_test - mu) / sd, y_test))


# --------------------------------------------------------------------------- SEED eye: synthetic layout


def test_synthetic_seed_eye_layout(seed_master):
    folder = _eye_dir(seed_master)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}_{k}" for s in (1, 2, 3, 4, 5) for k in (1, 2, 3))
    assert set(SEED_EYE_SUBJECTS) == set(range(1, 15)) - {6, 7}
    assert len(SEED_EYE_FEATURES) == N_SEED_EYE_FEATURES == 33
    means = []
    for s in (1, 2, 3):
        for session in (1, 2, 3):
            stored = load_pickle(folder / f"{s}_{session}")  # the restricted unpickler reads it
            assert set(stored) == {"train_data_eye", "test_data_eye"}
            clips = _stored_clips(seed_master, s, session)
            assert [len(c) for c in clips] == [3] * 15  # 12-14.x s clips: floor(T / 4) = 3
            assert stored["train_data_eye"].shape == (27, 33) and stored["test_data_eye"].shape == (18, 33)
            rows = np.concatenate(clips)
            assert not np.isinf(rows).any()
            means.append(np.nanmean(rows[:, SEED_EYE_FEATURES.index("pupil_x_mean")]))
    assert np.ptp(means) > 3.0  # subjects differ in scale


# --------------------------------------------------------------------------- SEED eye: reading


def test_seed_subjects_without_eye_left_out_only_when_eye_requested(seed_master, caplog):
    with caplog.at_level(logging.WARNING, logger="moodops.components.datasets.seed.seed"):
        assert Seed(seed_master).subjects() == [1, 2, 3, 4, 5, 6, 7]
        assert not caplog.records
        ds = Seed(seed_master, modalities=("eeg", "eye"))
        assert ds.subjects() == [1, 2, 3, 4, 5]
        (record,) = caplog.records
        message = record.getMessage()
        assert "SEED subjects 6, 7 left out (eye requested" in message and "6_1, 6_2, 6_3, 7_1" in message
        assert ds.subjects() == [1, 2, 3, 4, 5] and len(caplog.records) == 1  # warned once
    assert Seed(seed_master, subjects=[2, 7], modalities=("eye",)).subjects() == [2]
    with pytest.raises(DataError, match="no selected SEED subject has eye-movement files"):
        Seed(seed_master, subjects=[6, 7], modalities=("eye",)).subjects()
    with pytest.raises(DataError, match=r"SEED subject 6 has no complete eye data \(no 6_1, 6_2, 6_3\)"):
        Seed(seed_master, modalities=("eye",)).load_precomputed(6, "de_LDS")
    assert Seed.present_modalities(seed_master) == ("eeg", "raw_eeg", "eye")


def test_seed_eye_folder_found_beside_seed_eeg_or_given(seed_master, tmp_path):
    release = tmp_path / "SEED"
    (release / "SEED_EEG").mkdir(parents=True)
    for folder in ("Preprocessed_EEG", "ExtractedFeatures"):
        (release / "SEED_EEG" / folder).symlink_to(seed_master / folder)
    (release / "SEED_Multimodal").symlink_to(seed_master / "SEED_Multimodal")
    for root in (release, release / "SEED_EEG", release / "SEED_EEG" / "Preprocessed_EEG"):
        assert Seed(root, modalities=("eye",)).subjects() == [1, 2, 3, 4, 5]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "Preprocessed_EEG").symlink_to(seed_master / "Preprocessed_EEG")
    assert Seed.present_modalities(alone) == ("eeg", "raw_eeg")
    assert len(Seed(alone).load_subject(1)) == 45  # no eye requested: no eye folder needed
    with pytest.raises(DataError, match=r"SEED eye-movement folder not found") as info:
        Seed(alone, modalities=("eye",)).subjects()
    assert "\n" not in str(info.value)
    given = Seed(alone, modalities=("eye",), eye_dir=_eye_dir(seed_master))
    assert given.subjects() == [1, 2, 3, 4, 5]


def test_seed_eye_per_window_from_raw_and_precomputed(seed_master):
    clips = _stored_clips(seed_master, 3, 2)
    for window_s in (1.0, 2.0, 4.0):
        ds = Seed(seed_master, subjects=[3], modalities=("eye",), window_s=window_s)
        recordings = ds.load_subject(3)
        assert len(recordings) == 45
        for r in recordings:
            n = r.data.shape[1] // int(window_s * 200)
            assert r.extra["eye"].shape == (n, 33) and r.extra["eye"].dtype == np.float32
            assert r.labels == {"emotion": float(SEED_LABELS[r.trial - 1])}
        for r in recordings[15:30]:  # session 2
            rows = clips[r.trial - 1].astype(np.float32)
            per = int(4 / window_s)
            np.testing.assert_array_equal(r.extra["eye"][:per * len(rows)], np.repeat(rows, per, axis=0))
            assert np.isnan(r.extra["eye"][per * len(rows):]).all()
    for r in Seed(seed_master, modalities=("eye",), window_s=4.0).load_precomputed(3, "de_movingAve")[15:30]:
        assert r.extra["eye"].shape == (len(r.features), 33)  # the release's 1-s windows, whatever window_s
        rows = clips[r.trial - 1].astype(np.float32)
        np.testing.assert_array_equal(r.extra["eye"][::4][:len(rows)], rows)
    plain = Seed(seed_master).load_precomputed(3, "de_LDS")
    assert all(r.extra == {} for r in plain)
    ds = Seed(seed_master, modalities=("eye",))
    assert ds.options() == {"window_s": 1.0} and Seed(seed_master).options() == {}
    files = ds.source_files(3)
    assert [p.name for p in files if p.parent == _eye_dir(seed_master)] == ["3_1", "3_2", "3_3"]
    assert ds.fingerprint(3) != Seed(seed_master).fingerprint(3)


def test_eye_windows_follow_the_window_centres():
    rows = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0]])  # 4-s rows: [0, 4), [4, 8), [8, 12)
    np.testing.assert_array_equal(eye_windows(rows, 13, 1.0)[:, 0], [1] * 4 + [2] * 4 + [3] * 4 + [np.nan])
    np.testing.assert_array_equal(eye_windows(rows, 6, 2.0)[:, 0], [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(eye_windows(rows, 3, 4.0), rows.astype(np.float32))
    eight = eye_windows(rows, 2, 8.0)  # rows 0+1 in window 0 (nan-mean), row 2 in window 1
    np.testing.assert_array_equal(eight, np.array([[1.5, 10.0], [3.0, 30.0]], dtype=np.float32))
    np.testing.assert_array_equal(eye_windows(rows, 4, 3.0)[:, 0], [1, 2, 2, 3])  # centres 2, 6, 10
    assert eye_windows(rows[:0], 3, 1.0).shape == (3, 2) and np.isnan(eye_windows(rows[:0], 3, 1.0)).all()


def test_seed_eye_goes_through_build_features(seed_master):
    ds = Seed(seed_master, subjects=[1, 6], modalities=("eye",))
    pre = build_features(ds, FeatureConfig(kind="precomputed", method="de_LDS", extras=("eye",)), None)
    assert set(np.unique(pre.meta.column("subject").to_numpy())) == {1}  # subject 6 has no eye data
    assert pre.extra["eye"].shape == (len(pre.x), 33)
    ds = Seed(seed_master, subjects=[2], modalities=("eye",), window_s=2.0)
    de = build_features(ds, FeatureConfig(kind="de", window_s=2.0, extras=("eye",)), None)
    assert de.extra["eye"].shape == (len(de.x), 33) and de.x.shape[1:] == (62, 5)
    assert 0.0 < np.isnan(de.extra["eye"]).all(axis=1).mean() < 0.5


def test_seed_check_counts_missing_eye_values(seed_master):
    rows = {r["subject"]: r for r in Seed(seed_master, subjects=[1, 6]).check()}
    nan = np.isnan(np.concatenate([c for session in (1, 2, 3) for c in _stored_clips(seed_master, 1, session)]))
    assert rows[1]["missing"]["eye"] == {"values": nan.size, "missing": int(nan.sum()), "windows": len(nan),
                                         "windows_missing": int(nan.any(axis=1).sum())}
    assert 0 < nan.sum() and rows[1]["missing"]["eeg"] == "refused"
    assert rows[6]["missing"] == {"eeg": "refused"}  # no eye files: nothing to count


def _resave_eye(path: Path, change: dict | None = None, drop: tuple[str, ...] = ()) -> None:
    obj = load_pickle(path)
    obj.update(change or {})
    for key in drop:
        obj.pop(key)
    path.write_bytes(pickle.dumps(obj, protocol=4))


class _Evil:
    def __reduce__(self):
        return (print, ("this ran",))


def _eye(root: Path, session: int = 2) -> Path:
    return _eye_dir(root) / f"1_{session}"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: _eye(r).write_bytes(b"not a pickle at all"), r"1_2: corrupt pickle|1_2: truncated pickle"),
        (lambda r: _eye(r).write_bytes(_eye(r).read_bytes()[:400]), r"1_2: truncated pickle"),
        (lambda r: _eye(r).write_bytes(pickle.dumps([1, 2, 3])),
         r"1_2: holds a list, expected a dict with 'train_data_eye' and 'test_data_eye'"),
        (lambda r: _eye(r).write_bytes(pickle.dumps({"data": _Evil()})),
         r"1_2: refused to unpickle global 'builtins.print'"),
        (lambda r: _resave_eye(_eye(r), drop=("test_data_eye",)),
         r"1_2: missing key 'test_data_eye' \(keys: train_data_eye\)"),
        (lambda r: _resave_eye(_eye(r), {"train_data_eye": np.zeros((18, 31))}),
         r"1_2: 'train_data_eye' has shape \(18, 31\), expected \(windows, 33\)"),
        (lambda r: _resave_eye(_eye(r), {"test_data_eye": np.zeros((11, 33))}),
         r"1_2: 'test_data_eye' has 11 rows but clips 10-15 of \S*(Preprocessed_EEG|ExtractedFeatures)/1_\d{8}.mat "
         r"have 12 whole 4-s windows \(2\+2\+2\+2\+2\+2\)"),
        (lambda r: _resave_eye(_eye(r), {"test_data_eye": np.full((12, 33), -np.inf)}),
         r"1_2: 'test_data_eye' holds 396 infinite value\(s\), first -inf at index \(0, 0\)"),
        (lambda r: _resave_eye(_eye(r), {"train_data_eye": np.array(["text"] * 18)}),
         r"1_2: 'train_data_eye' holds <U4, expected a numeric array"),
        (lambda r: _eye(r, 3).unlink(), r"SEED subject 1 has no complete eye data \(no 1_3\)"),
    ],
)
def test_seed_eye_bad_files(small_seed, damage, message):
    damage(small_seed)
    for call in ("raw", "precomputed"):
        ds = Seed(small_seed, modalities=("eye",))
        with pytest.raises(DataError, match=message) as info:
            ds.load_subject(1) if call == "raw" else ds.load_precomputed(1, "de_LDS")
        assert "\n" not in str(info.value)
    assert len(Seed(small_seed).load_precomputed(1, "de_LDS")) == 45  # eye files untouched without eye


def test_seed_eye_nan_kept(small_seed):
    obj = load_pickle(_eye(small_seed))
    obj["train_data_eye"][3, 5] = np.nan
    _resave_eye(_eye(small_seed), obj)
    recordings = Seed(small_seed, modalities=("eye",), window_s=4.0).load_subject(1)
    assert np.isnan(recordings[15 + 1].extra["eye"][1, 5])  # clip 2 holds rows 2-3 of session 2


def test_seed_eye_options():
    with pytest.raises(ConfigError, match="'window_s' parameter must give at least 2 samples at 200 Hz"):
        Seed("/nonexistent", window_s=0.001)
    assert Seed("/nonexistent", window_s=None).window_s == 1.0
    assert Seed.option_names == ("window_s",) and "eye" in Seed.modalities


def test_synthetic_seed_eye_is_learnable(tmp_path):
    root = write_synthetic_seed(tmp_path / "seed", n_subjects=2, seconds=20, seed=1)
    ds = Seed(root, modalities=("eye",), window_s=4.0)
    scores = []
    for s in ds.subjects():
        recordings = ds.load_subject(s)
        for session in (1, 2, 3):
            trials = [(np.log(np.abs(r.extra["eye"]) + 1e-3), r.labels["emotion"])
                      for r in recordings if r.session == session]
            scores.append(_window_accuracy(trials[:9], trials[9:]))
    assert 0.45 < np.mean(scores) < 0.98, scores  # chance 1/3; weak effects, not a giveaway


def test_writer_without_eye_and_arguments(tmp_path):
    root = write_synthetic_seed(tmp_path / "plain", n_subjects=1, seconds=4, with_eye=False)
    assert not (root / "SEED_Multimodal").exists()
    assert Seed.present_modalities(root) == ("eeg", "raw_eeg")
    with pytest.raises(ConfigError, match="'eye_nan_rate'"):
        write_synthetic_seed(tmp_path / "x", n_subjects=1, seconds=4, eye_nan_rate=1.0)
    with pytest.raises(ConfigError, match="'raw_sfreq'"):
        write_synthetic_seed_iv(tmp_path / "y", n_subjects=1, with_raw=True, raw_sfreq=100.0)


# --------------------------------------------------------------------------- SEED-IV raw EEG


def _iv_raw(root: Path, session: int) -> Path:
    return next((root / "eeg_raw_data" / str(session)).glob("1_*.mat"))


def _mat(path: Path) -> dict:
    return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def test_synthetic_seed_iv_raw_layout(iv_master):
    for session in (1, 2, 3):
        names = sorted(p.name for p in (iv_master / "eeg_raw_data" / str(session)).iterdir())
        assert names == sorted(p.name for p in (iv_master / "eeg_feature_smooth" / str(session)).iterdir())
        raw = _mat(_iv_raw(iv_master, session))
        (prefix,) = {k.rsplit("_eeg", 1)[0] for k in raw}
        assert set(raw) == {f"{prefix}_eeg{k}" for k in range(1, 25)}
        de = _mat(iv_master / "eeg_feature_smooth" / str(session) / names[0])
        eye = _mat(iv_master / "eye_feature_smooth" / str(session) / names[0])
        for k in range(1, 25):
            x = raw[f"{prefix}_eeg{k}"]
            w = de[f"de_LDS{k}"].shape[1]
            assert x.shape == (62, w * 800 + 1) and x.dtype == np.float32
            assert eye[f"eye_{k}"].shape == (31, w)


def test_seed_iv_load_subject_preprocesses_to_200_hz(iv_master):
    ds = SeedIV(iv_master)
    assert ds.subjects() == [1]
    recordings = ds.load_subject(1)
    assert len(recordings) == 72
    assert [(r.session, r.trial) for r in recordings] == [(s, k) for s in (1, 2, 3) for k in range(1, 25)]
    stored = _mat(_iv_raw(iv_master, 2))
    for r in recordings:
        assert (r.subject, r.sfreq, r.ch_names, r.features, r.extra) == (1, 200.0, CHANNELS, None, {})
        assert r.data.dtype == np.float32 and r.data.shape[0] == 62
        assert r.labels == {"emotion": float(SEED_IV_SESSION_LABELS[r.session][r.trial - 1])}
    r = recordings[24 + 4]
    (x,) = [v for k, v in stored.items() if k.endswith("_eeg5")]
    as_stored = Recording(1, 2, 5, x, 200.0, CHANNELS, dict(r.labels))
    np.testing.assert_array_equal(r.data, preprocess(as_stored, Preprocess()).data)  # the shared preprocessing

    def mains(y):
        spectrum = np.abs(np.fft.rfft(y - y.mean(axis=1, keepdims=True), axis=1)) ** 2
        f = np.fft.rfftfreq(y.shape[1], 1 / 200)
        return spectrum[:, np.abs(f - 50) < 0.6].sum() / spectrum[:, (f > 20) & (f < 45)].sum()

    assert mains(r.data) < 0.3 * mains(x)  # the 50 Hz notch took out most of the synthetic mains


def test_seed_iv_raw_stored_at_1000_hz_is_resampled(tmp_path):
    root = write_synthetic_seed_iv(tmp_path / "iv", n_subjects=1, windows_per_trial=(1, 1), with_raw=True,
                                   raw_sfreq=1000.0)
    assert next(iter(_mat(_iv_raw(root, 1)).values())).shape == (62, 4001)
    ds = SeedIV(root, modalities=("eye",), raw_sfreq=1000.0, preprocessing=RAW_ONLY, window_s=2.0)
    recordings = ds.load_subject(1)
    for r in recordings:
        assert r.sfreq == 200.0 and r.data.shape == (62, 800)
        assert r.extra["eye"].shape == (2, 31)  # one 4-s eye row over two 2-s windows
    with pytest.raises(DataError, match=r"'[a-z]+_eeg1' has 5 whole 4-s windows at 200 Hz but its DE features "
                                        r"have 1 \(is raw_sfreq right\?\)"):
        SeedIV(root).check()  # read as if at the documented 200 Hz, the trials are five times too long
    with pytest.raises(ConfigError, match="raw EEG stored at 1000 Hz must be resampled to 200 Hz"):
        SeedIV(root, raw_sfreq=1000.0, preprocessing=None)


def test_seed_iv_raw_eye_windows(iv_root):
    ds = SeedIV(iv_root, modalities=("eeg", "eye"), preprocessing=None)
    eye = _mat(next((iv_root / "eye_feature_smooth" / "3").glob("1_*.mat")))
    for r in ds.load_subject(1):
        n = r.data.shape[1] // 200
        assert r.extra["eye"].shape == (n, N_EYE_FEATURES)
        if r.session == 3:
            np.testing.assert_array_equal(r.extra["eye"], np.repeat(eye[f"eye_{r.trial}"].T, 4, axis=0)
                                          .astype(np.float32))
    assert ds.options() == {"window_s": 1.0, "raw_sfreq": 200.0, "preprocessing": None}
    path = next((iv_root / "eye_feature_smooth" / "2").glob("1_*.mat"))
    arrays = _mat(path)
    arrays["eye_4"] = np.zeros((31, 5))
    scipy.io.savemat(path, arrays)
    with pytest.raises(DataError, match=r"eye_feature_smooth/2/1_\d+.mat: 'eye_4' has 5 windows but "
                                        r"\S*eeg_raw_data/2/1_\d+.mat '[a-z]+_eeg4' has [12] whole 4-s windows "
                                        r"\(at 200 Hz\)"):
        ds.load_subject(1)


def test_seed_iv_copies_with_and_without_raw(iv_root, tmp_path):
    features_only = Path(shutil.copytree(iv_root, tmp_path / "features"))
    shutil.rmtree(features_only / "eeg_raw_data")
    with pytest.raises(ConfigError, match="no raw EEG"):
        SeedIV(features_only).load_subject(1)
    assert SeedIV(features_only).options() == {}
    assert len(SeedIV(features_only).load_precomputed(1, "de_LDS")) == 72
    files = SeedIV(iv_root).source_files(1)
    assert len(files) == 9 and {p.parts[-3] for p in files} == {"eeg_feature_smooth", "eeg_raw_data",
                                                                 "eye_feature_smooth"}
    row = SeedIV(iv_root).check()[0]
    assert list(row)[:5] == ["subject", "sessions", "trials", "seconds", "windows"]
    assert row["seconds"] == pytest.approx(sum(r.data.shape[1] for r in SeedIV(iv_root, preprocessing=None)
                                               .load_subject(1)) / 200, abs=0.01)
    shutil.rmtree(iv_root / "eeg_feature_smooth")  # a copy of the raw EEG only
    for root in (iv_root, iv_root / "eeg_raw_data"):
        assert SeedIV(root).subjects() == [1]
    assert len(SeedIV(iv_root, preprocessing=None).load_subject(1)) == 72
    assert SeedIV(iv_root).check()[0]["windows"] == row["windows"]
    with pytest.raises(DataError, match="eeg_feature_smooth: folder missing"):
        SeedIV(iv_root).load_precomputed(1, "de_LDS")


def _resave(path: Path, change: dict | None = None, drop: tuple[str, ...] = ()) -> None:
    arrays = _mat(path)
    arrays.update(change or {})
    for key in drop:
        arrays.pop(key)
    scipy.io.savemat(path, arrays)


def _key(path: Path, k: int) -> str:
    return next(key for key in _mat(path) if key.endswith(f"_eeg{k}"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: _resave(p, {f"{k}_data": v for k, v in _mat(p).items()}, drop=tuple(_mat(p))),
         r"1_\d+.mat: no '<initials>_eeg<k>' keys \(keys: [a-z]+_eeg\d+_data"),
        (lambda p: _resave(p, drop=(_key(p, 7),)), r"1_\d+.mat: missing key '[a-z]+_eeg7'"),
        (lambda p: _resave(p, {"abc_eeg25": np.zeros((62, 900))}), r"key 'abc_eeg25' is trial 25, outside 1-24"),
        (lambda p: _resave(p, {_key(p, 3): np.zeros((61, 900))}),
         r"1_\d+.mat: '[a-z]+_eeg3' has shape \(61, 900\), expected \(62, samples\)"),
        (lambda p: _resave(p, {_key(p, 3): np.zeros((62, 150))}), r"'[a-z]+_eeg3' has 150 samples, fewer than 1 s"),
        (lambda p: _resave(p, {_key(p, 3): np.where(np.arange(900) == 7, np.nan, 1.0)[None].repeat(62, 0)}),
         r"'[a-z]+_eeg3' holds 62 non-finite value\(s\), first nan at index \(0, 7\)"),
        (lambda p: _resave(p, {_key(p, 3): np.full((62, 900), np.inf)}), r"'[a-z]+_eeg3' holds 55800 non-finite"),
        (lambda p: p.write_bytes(p.read_bytes()[:4000]), r"eeg_raw_data/2/1_\d+.mat: unreadable .mat file"),
        (lambda p: p.unlink(), r"eeg_raw_data/2: no file for subject 1 \(session 2\)"),
        (lambda p: shutil.rmtree(p.parent), r"eeg_raw_data/2: session folder missing"),
    ],
)
def test_seed_iv_raw_bad_files(iv_root, damage, message):
    damage(_iv_raw(iv_root, 2))
    with pytest.raises(DataError, match=message) as info:
        SeedIV(iv_root, preprocessing=None).load_subject(1)
    assert "\n" not in str(info.value)


def test_seed_iv_options_are_checked():
    with pytest.raises(ConfigError, match="'raw_sfreq' parameter must be a positive rate"):
        SeedIV("/nonexistent", raw_sfreq=0)
    with pytest.raises(ConfigError, match="'preprocessing' parameter must be a Preprocess or None"):
        SeedIV("/nonexistent", preprocessing={"sfreq": 200})
    with pytest.raises(ConfigError, match="'window_s'"):
        SeedIV("/nonexistent", window_s="x")
    assert SeedIV.option_names == ("window_s",) and (SeedIV.eeg_channels, SeedIV.eeg_sfreq) == (CHANNELS, 200.0)


def test_synthetic_seed_iv_raw_is_learnable(tmp_path):
    root = write_synthetic_seed_iv(tmp_path / "iv", n_subjects=2, windows_per_trial=(3, 4), seed=1, with_raw=True)
    ds = SeedIV(root, preprocessing=None)
    scores = []
    for s in ds.subjects():
        recordings = ds.load_subject(s)
        for session in (1, 2, 3):
            trials = [(differential_entropy(r.data, 200.0, BANDS, window_s=4.0, method="stft").reshape(-1, 310),
                       r.labels["emotion"]) for r in recordings if r.session == session]
            scores.append(_window_accuracy(trials[:16], trials[16:]))
    assert 0.4 < np.mean(scores) < 0.95, scores  # chance 1/4


# --------------------------------------------------------------------------- real data (when a copy is there)


def _real(*names: str) -> Path:
    for name in names:
        if (SHARED_DATA / name).is_dir():
            return SHARED_DATA / name
    pytest.skip(f"no {' or '.join(names)} under {SHARED_DATA}")


@pytest.mark.real_data
def test_real_seed_eye_files_fit_the_eeg():
    ds = Seed(_real("SEED", "seed"), subjects=[1], modalities=("eye",))
    row = ds.check()[0]
    assert row["missing"]["eye"]["values"] == row["missing"]["eye"]["windows"] * N_SEED_EYE_FEATURES


@pytest.mark.real_data
def test_real_seed_iv_raw_is_at_200_hz():
    ds = SeedIV(_real("SEED_IV", "SEED-IV", "seed_iv"), subjects=[1], preprocessing=None)
    if not ds.has_raw:
        pytest.skip("this SEED-IV copy has no eeg_raw_data/")
    ds.check()  # raw trial lengths agree with the DE windows at 200 Hz
