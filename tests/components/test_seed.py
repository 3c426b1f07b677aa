"""The SEED and SEED-IV adapters on synthetic data and on hand-built files in the real layouts."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from moodops.components.datasets.seed.seed import (
    BANDS,
    CHANNELS,
    N_EYE_FEATURES,
    SEED_CLASSES,
    SEED_IV_CLASSES,
    SEED_IV_SESSION_LABELS,
    Seed,
    SeedIV,
)
from moodops.components.datasets.seed.synthetic_seed import (
    SEED_IV_EYE_FEATURES,
    SEED_LABELS,
    lds_smooth,
    moving_average,
    write_synthetic_seed,
    write_synthetic_seed_iv,
)
from moodops.components.errors import ConfigError, DataError
from moodops.components.features.spectral import differential_entropy

SECONDS = 5
IV_WINDOWS = (3, 6)
FILE_RE = re.compile(r"^(\d+)_(\d{8})\.mat$")
TEMPORAL = [CHANNELS.index(c) for c in ("FT7", "FT8", "T7", "T8", "TP7", "TP8", "C5", "C6")]
OCCIPITAL = [CHANNELS.index(c) for c in ("PO7", "PO3", "POZ", "PO4", "PO8", "O1", "OZ", "O2")]
ALPHA, BETA, GAMMA = 2, 3, 4


@pytest.fixture(scope="module")
def seed_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine synthetic SEED root (2 subjects, ~5-s trials). Never modify it."""
    return write_synthetic_seed(tmp_path_factory.mktemp("seed"), n_subjects=2, seconds=SECONDS, seed=0, effect=3.0)


@pytest.fixture(scope="module")
def seed_iv_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine synthetic SEED-IV root (3 subjects, 3–6 windows per trial). Never modify it."""
    return write_synthetic_seed_iv(tmp_path_factory.mktemp("seed_iv"), n_subjects=3, windows_per_trial=IV_WINDOWS,
                                   seed=0, effect=2.0)


@pytest.fixture
def seed_iv_root(seed_iv_master: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic SEED-IV root that a test may damage."""
    return Path(shutil.copytree(seed_iv_master, tmp_path / "seed_iv"))


def _mat(path: Path) -> dict:
    return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def _subject_files(folder: Path, subject: int) -> list[Path]:
    """A subject's session files in date order."""
    files = [p for p in folder.iterdir() if (m := FILE_RE.match(p.name)) and int(m.group(1)) == subject]
    return sorted(files, key=lambda p: p.name.split("_")[1])


def _rows(recordings, attr: str = "features"):
    x = np.concatenate([getattr(r, attr) for r in recordings])
    y = np.concatenate([np.full(len(getattr(r, attr)), r.labels["emotion"]) for r in recordings])
    return x, y


# --------------------------------------------------------------------------- hand-built files

SEED_DATES = ("20131027", "20131103", "20131110")  # deliberately not the session order of the names below


def build_seed(root: Path, subjects=(1, 10), samples: int = 450, de_windows: int = 2,
               features: bool = True, rng_seed: int = 0) -> Path:
    """SEED's layout written with savemat directly: 3 sessions × 15 trials of (62, samples) per subject."""
    rng = np.random.default_rng(rng_seed)
    raw, feat = root / "Preprocessed_EEG", root / "ExtractedFeatures"
    raw.mkdir(parents=True)
    scipy.io.savemat(raw / "label.mat", {"label": np.array([SEED_LABELS], dtype=np.int16)})
    (raw / "readme.txt").write_text("not a subject file")
    if features:
        feat.mkdir()
        scipy.io.savemat(feat / "label.mat", {"label": np.array([SEED_LABELS], dtype=np.int16)})
    for s in subjects:
        prefix = "djc" if s == 1 else f"x{s}y"
        # Names written out of date order: the session comes from the date.
        for date in (SEED_DATES[2], SEED_DATES[0], SEED_DATES[1]):
            trials = {f"{prefix}_eeg{k}": rng.normal(0, 10, (62, samples)) for k in range(1, 16)}
            trials["session_date"] = np.array([[float(date)]])  # an unrelated variable, ignored
            scipy.io.savemat(raw / f"{s}_{date}.mat", trials)
            if features:
                arrays = {f"de_LDS{k}": rng.normal(size=(62, de_windows, 5)) for k in range(1, 16)}
                arrays.update({f"de_movingAve{k}": rng.normal(size=(62, de_windows, 5)) for k in range(1, 16)})
                arrays.update({f"psd_LDS{k}": rng.normal(size=(62, de_windows, 5)) for k in range(1, 16)})
                scipy.io.savemat(feat / f"{s}_{date}.mat", arrays)
    return root


def build_seed_iv(root: Path, subjects=(1, 2), windows: int = 3, rng_seed: int = 0) -> Path:
    """SEED-IV's layout written with savemat directly: eeg/eye_feature_smooth/{1,2,3}/{s}_{date}.mat."""
    rng = np.random.default_rng(rng_seed)
    (root / "eeg_feature_smooth").mkdir(parents=True)
    (root / "ReadMe.txt").write_text("labels …")
    for session in (1, 2, 3):
        for kind in ("eeg_feature_smooth", "eye_feature_smooth"):
            (root / kind / str(session)).mkdir(parents=True)
        for s in subjects:
            name = f"{s}_2016050{session}.mat"
            arrays = {}
            for k in range(1, 25):
                arrays[f"de_LDS{k}"] = rng.normal(size=(62, windows + k % 2, 5))
                arrays[f"de_movingAve{k}"] = arrays[f"de_LDS{k}"] + 1.0
                arrays[f"psd_movingAve{k}"] = rng.normal(size=(62, windows + k % 2, 5))
            scipy.io.savemat(root / "eeg_feature_smooth" / str(session) / name, arrays)
            eye = {f"eye_{k}": rng.normal(size=(31, windows + k % 2)) for k in range(1, 25)}
            scipy.io.savemat(root / "eye_feature_smooth" / str(session) / name, eye)
    return root


def _raw(root: Path, session: int, subject: int = 1) -> Path:
    """The hand-built SEED raw file of a session (1-3)."""
    return root / "Preprocessed_EEG" / f"{subject}_{SEED_DATES[session - 1]}.mat"


def _features(root: Path, session: int, subject: int = 1) -> Path:
    return root / "ExtractedFeatures" / f"{subject}_{SEED_DATES[session - 1]}.mat"


def _resave(path: Path, change: dict | None = None, drop: tuple[str, ...] = ()) -> None:
    arrays = _mat(path)
    arrays.update(change or {})
    for key in drop:
        arrays.pop(key)
    scipy.io.savemat(path, arrays)


# --------------------------------------------------------------------------- SEED: synthetic files


def test_synthetic_seed_layout(seed_master):
    raw, feat = seed_master / "Preprocessed_EEG", seed_master / "ExtractedFeatures"
    names = sorted(p.name for p in raw.iterdir())
    assert "label.mat" in names and (feat / "label.mat").is_file()
    subject_files = [n for n in names if FILE_RE.match(n)]
    assert len(subject_files) == 2 * 3
    assert sorted(p.name for p in feat.iterdir() if FILE_RE.match(p.name)) == subject_files
    assert not [p for p in raw.iterdir() if p.name.startswith(".")]  # no temporary files left
    np.testing.assert_array_equal(_mat(raw / "label.mat")["label"].ravel(), SEED_LABELS)
    prefixes = set()
    for s in (1, 2):
        for path in _subject_files(raw, s):
            arrays = _mat(path)
            assert len(arrays) == 15
            (prefix,) = {k.rsplit("_eeg", 1)[0] for k in arrays}
            prefixes.add(prefix)
            assert set(arrays) == {f"{prefix}_eeg{k}" for k in range(1, 16)}
            for x in arrays.values():
                assert x.shape[0] == 62 and 0.85 * SECONDS * 200 <= x.shape[1] <= 1.2 * SECONDS * 200
                assert x.dtype in (np.float32, np.float64)
            feats = _mat(feat / path.name)
            assert set(feats) == {f"de_{m}{k}" for m in ("LDS", "movingAve") for k in range(1, 16)}
            for k in range(1, 16):
                assert feats[f"de_LDS{k}"].shape == (62, arrays[f"{prefix}_eeg{k}"].shape[1] // 200, 5)
    assert len(prefixes) == 2  # initials differ between subjects


def test_seed_load_subject(seed_master):
    ds = Seed(seed_master)
    assert ds.subjects() == [1, 2]
    recordings = ds.load_subject(2)
    assert len(recordings) == 45
    files = _subject_files(seed_master / "Preprocessed_EEG", 2)
    for r in recordings:
        assert (r.subject, r.sfreq, r.ch_names, r.features) == (2, 200.0, CHANNELS, None)
        assert r.data.dtype == np.float32 and r.data.shape[0] == 62
        assert r.labels == {"emotion": float(SEED_LABELS[r.trial - 1])}
        assert r.extra == {}
    assert [(r.session, r.trial) for r in recordings] == [(s, k) for s in (1, 2, 3) for k in range(1, 16)]
    stored = _mat(files[1])
    (key,) = [k for k in stored if k.endswith("_eeg4")]
    np.testing.assert_array_equal(recordings[15 + 3].data, stored[key])


def test_seed_load_precomputed(seed_master):
    ds = Seed(seed_master)
    stored = _mat(_subject_files(seed_master / "ExtractedFeatures", 1)[2])
    raw = ds.load_subject(1)
    for name in ("de_LDS", "de_movingAve"):
        recordings = ds.load_precomputed(1, name)
        assert len(recordings) == 45
        for r, r_raw in zip(recordings, raw):
            assert r.data is None and r.sfreq == 1.0 and r.ch_names == CHANNELS
            assert r.features.dtype == np.float32
            assert r.features.shape == (r_raw.data.shape[1] // 200, 62, 5)
            assert (r.session, r.trial, r.labels) == (r_raw.session, r_raw.trial, r_raw.labels)
        np.testing.assert_allclose(recordings[30 + 6].features, stored[f"{name}7"].transpose(1, 0, 2), rtol=1e-6)
    with pytest.raises(ConfigError, match="'precomputed'.*got 'de_lds'"):
        ds.load_precomputed(1, "de_lds")


def test_synthetic_seed_features_are_the_de_of_the_eeg(seed_master):
    ds = Seed(seed_master, subjects=[1])
    raw = ds.load_subject(1)[:3]
    lds = ds.load_precomputed(1, "de_LDS")[:3]
    ma = ds.load_precomputed(1, "de_movingAve")[:3]
    for r, r_lds, r_ma in zip(raw, lds, ma):
        de = differential_entropy(r.data, 200.0, BANDS, window_s=1.0, method="stft")
        np.testing.assert_allclose(r_ma.features, moving_average(de), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r_lds.features, lds_smooth(de), rtol=1e-5, atol=1e-5)


def test_synthetic_seed_has_label_dependent_signal(seed_master):
    x, y = _rows(Seed(seed_master).load_precomputed(1, "de_movingAve"))
    gamma_temporal = {c: x[y == c][:, TEMPORAL, GAMMA].mean() for c in (-1, 0, 1)}
    alpha_occipital = {c: x[y == c][:, OCCIPITAL, ALPHA].mean() for c in (-1, 0, 1)}
    assert gamma_temporal[1] > gamma_temporal[0] + 0.5 > gamma_temporal[-1] + 0.5
    assert alpha_occipital[-1] > alpha_occipital[0] + 0.5
    assert abs(alpha_occipital[1] - alpha_occipital[0]) < 0.5


def test_synthetic_seed_is_deterministic(tmp_path, seed_master):
    again = write_synthetic_seed(tmp_path / "a", n_subjects=1, seconds=SECONDS, seed=0, effect=3.0)
    other = write_synthetic_seed(tmp_path / "b", n_subjects=1, seconds=SECONDS, seed=1, effect=3.0)
    for folder in ("Preprocessed_EEG", "ExtractedFeatures"):
        names = sorted(p.name for p in (again / folder).iterdir())
        assert names == sorted(p.name for p in (seed_master / folder).iterdir() if not p.name.startswith("2_"))
        for name in names:
            a, b = _mat(again / folder / name), _mat(seed_master / folder / name)
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    a = Seed(again).load_subject(1)[0].data
    b = Seed(other).load_subject(1)[0].data
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_seed_check(seed_master):
    rows = Seed(seed_master).check()
    assert [r["subject"] for r in rows] == [1, 2]
    recordings = Seed(seed_master).load_subject(1)
    row = rows[0]
    assert list(row) == ["subject", "sessions", "trials", "seconds", "windows", "features",
                         "negative_share", "neutral_share", "positive_share", "missing"]
    assert row["missing"]["eeg"] == "refused"  # the synthetic SEED has eye files: their NaN are counted
    assert row["missing"]["eye"]["values"] == row["missing"]["eye"]["windows"] * 33
    assert (row["sessions"], row["trials"], row["features"]) == (3, 45, "de_LDS+de_movingAve")
    assert row["windows"] == sum(r.data.shape[1] // 200 for r in recordings)
    assert row["seconds"] == pytest.approx(sum(r.data.shape[1] for r in recordings) / 200, abs=0.01)
    assert sum(row[f"{c}_share"] for c in SEED_CLASSES) == pytest.approx(1.0, abs=0.01)
    assert Seed(seed_master, subjects=[2]).check()[0]["subject"] == 2


def test_seed_targets():
    ds = Seed("/nonexistent")
    idx, names = ds.make_targets({"emotion": np.array([-1.0, 0.0, 1.0, 1.0])}, "emotion")
    assert names == ("negative", "neutral", "positive")
    np.testing.assert_array_equal(idx, [0, 1, 2, 2])
    assert idx.dtype == np.int64
    with pytest.raises(DataError, match="holds 2.0"):
        ds.make_targets({"emotion": np.array([2.0])}, "emotion")
    with pytest.raises(ConfigError, match="'label'"):
        ds.make_targets({"emotion": np.array([1.0])}, "valence")
    assert (Seed.modalities, Seed.precomputed, Seed.label_names, Seed.targets) == (
        ("eeg", "raw_eeg", "eye"), ("de_LDS", "de_movingAve"), ("emotion",), ("emotion",))
    with pytest.raises(ConfigError, match="no modality face"):
        Seed("/nonexistent", modalities=("eeg", "face"))


# --------------------------------------------------------------------------- SEED: hand-built files


def test_seed_hand_built_files(tmp_path):
    root = build_seed(tmp_path / "SEED")
    ds = Seed(root)
    assert ds.subjects() == [1, 10]
    recordings = ds.load_subject(10)
    assert [r.trial for r in recordings] == list(range(1, 16)) * 3
    by_session = {r.session: r for r in recordings if r.trial == 2}
    for session, date in enumerate(SEED_DATES, start=1):  # session order = date order
        stored = _mat(root / "Preprocessed_EEG" / f"10_{date}.mat")["x10y_eeg2"]
        np.testing.assert_allclose(by_session[session].data, stored, rtol=1e-6)
    assert all(r.data.shape == (62, 450) and r.data.dtype == np.float32 for r in recordings)
    assert [r.labels["emotion"] for r in recordings[:15]] == [float(v) for v in SEED_LABELS]
    features = ds.load_precomputed(1, "de_LDS")
    assert [r.features.shape for r in features] == [(2, 62, 5)] * 45
    np.testing.assert_allclose(features[15].features, _mat(_features(root, 2))["de_LDS1"].transpose(1, 0, 2),
                               rtol=1e-6)
    # The data folder itself is accepted as the root too.
    assert Seed(root / "Preprocessed_EEG").subjects() == [1, 10]
    assert len(Seed(root / "Preprocessed_EEG").load_precomputed(1, "de_movingAve")) == 45


def test_seed_features_only_release(tmp_path):
    root = build_seed(tmp_path / "SEED", subjects=(3,))
    shutil.rmtree(root / "Preprocessed_EEG")
    ds = Seed(root)
    assert ds.subjects() == [3]
    assert len(ds.load_precomputed(3, "de_movingAve")) == 45  # labels from ExtractedFeatures/label.mat
    row = ds.check()[0]
    assert (row["seconds"], row["windows"]) == ("-", 45 * 2)
    with pytest.raises(DataError, match="Preprocessed_EEG: folder missing"):
        ds.load_subject(3)


def test_seed_source_files_and_fingerprint(tmp_path):
    root = build_seed(tmp_path / "SEED")
    ds = Seed(root)
    files = ds.source_files(1)
    assert len(files) == 3 + 3 + 1
    assert root / "Preprocessed_EEG" / "label.mat" in files
    assert {p.parent.name for p in files} == {"Preprocessed_EEG", "ExtractedFeatures"}
    before = ds.fingerprint(1)
    assert before == Seed(root).fingerprint(1) and before != ds.fingerprint(10)
    _resave(_features(root, 1), drop=("psd_LDS3",))
    assert Seed(root).fingerprint(1) != before


@pytest.mark.parametrize(
    "damage, call, message",
    [
        # the root and its folders
        (lambda r: shutil.rmtree(r), "subjects", r"SEED root does not exist"),
        (lambda r: [shutil.rmtree(r / d) for d in ("Preprocessed_EEG", "ExtractedFeatures")], "subjects",
         r"no Preprocessed_EEG/ or ExtractedFeatures/ folder"),
        (lambda r: [p.unlink() for d in ("Preprocessed_EEG", "ExtractedFeatures") for p in (r / d).glob("*_*.mat")],
         "subjects", r"no SEED subject files"),
        (lambda r: (_raw(r, 2)).unlink(), "load",
         r"Preprocessed_EEG: subject 1 has 2 session file\(s\) \(1_20131027.mat, 1_20131110.mat\), expected 3"),
        (lambda r: shutil.copy(_raw(r, 2), r / "Preprocessed_EEG" / "1_20131201.mat"),
         "load", r"subject 1 has 4 session file"),
        # trial keys
        (lambda r: _resave(_raw(r, 1), drop=("djc_eeg7",)), "load",
         r"1_20131027.mat: missing key 'djc_eeg7'"),
        (lambda r: _resave(_raw(r, 1), drop=tuple(f"djc_eeg{k}" for k in range(1, 16))),
         "load", r"1_20131027.mat: no '<initials>_eeg<k>' keys \(keys: session_date\)"),
        (lambda r: _resave(_raw(r, 1), {"abc_eeg3": np.zeros((62, 450))}), "load",
         r"keys '(abc|djc)_eeg3' and '(abc|djc)_eeg3' both hold trial 3"),
        (lambda r: _resave(_raw(r, 1), {"djc_eeg16": np.zeros((62, 450))}), "load",
         r"key 'djc_eeg16' is trial 16, outside 1-15"),
        # arrays
        (lambda r: _resave(_raw(r, 1), {"djc_eeg5": np.zeros((61, 450))}), "load",
         r"1_20131027.mat: 'djc_eeg5' has shape \(61, 450\), expected \(62, samples\)"),
        (lambda r: _resave(_raw(r, 1), {"djc_eeg5": np.zeros((450, 62))}), "load",
         r"'djc_eeg5' has shape \(450, 62\)"),
        (lambda r: _resave(_raw(r, 1), {"djc_eeg5": np.zeros((62, 100))}), "load",
         r"'djc_eeg5' has 100 samples, fewer than 1 s at 200 Hz"),
        (lambda r: _resave(_raw(r, 1),
                           {"djc_eeg5": np.where(np.arange(450) == 9, np.nan, 1.0)[None].repeat(62, 0)}), "load",
         r"'djc_eeg5' holds 62 non-finite value\(s\), first nan at index \(0, 9\)"),
        (lambda r: _resave(_raw(r, 1), {"djc_eeg5": np.array(["text"])}), "load",
         r"'djc_eeg5' holds <U4, expected a numeric array"),
        # labels
        (lambda r: (r / "Preprocessed_EEG" / "label.mat").unlink(), "load", r"label.mat: label file missing"),
        (lambda r: scipy.io.savemat(r / "Preprocessed_EEG" / "label.mat", {"labels": np.zeros(15)}), "load",
         r"label.mat: missing key 'label' \(keys: labels\)"),
        (lambda r: scipy.io.savemat(r / "Preprocessed_EEG" / "label.mat", {"label": np.zeros((1, 14))}), "load",
         r"label.mat: 'label' has 14 values \(shape \(1, 14\)\), expected 15"),
        (lambda r: scipy.io.savemat(r / "Preprocessed_EEG" / "label.mat", {"label": np.array([[1] * 14 + [2]])}),
         "load",
         r"label.mat: 'label' of trial 15 is 2.0, expected -1, 0 or 1"),
        (lambda r: scipy.io.savemat(r / "Preprocessed_EEG" / "label.mat", {"label": np.array([[0.5] * 15])}), "load",
         r"'label' of trial 1 is 0.5"),
        # damaged files
        (lambda r: (_raw(r, 3)).write_bytes(b"not a mat file" * 20), "load",
         r"1_20131110.mat: unreadable .mat file"),
        (lambda r: (_raw(r, 3)).write_bytes(
            (_raw(r, 3)).read_bytes()[:5000]), "load",
         r"1_20131110.mat: unreadable .mat file"),
        (lambda r: (_raw(r, 3)).write_bytes(b""), "load",
         r"1_20131110.mat: unreadable .mat file \(MatReadError"),
        (lambda r: (r / "Preprocessed_EEG" / "label.mat").write_bytes(b"\x00" * 10), "load", r"label.mat: unreadable"),
        # precomputed features
        (lambda r: _resave(_features(r, 2), {"de_LDS9": np.zeros((62, 2, 4))}),
         "precomputed", r"1_20131103.mat: 'de_LDS9' has shape \(62, 2, 4\), expected \(62, windows, 5\)"),
        (lambda r: _resave(_features(r, 2), {"de_LDS9": np.zeros((2, 62, 5))}),
         "precomputed", r"'de_LDS9' has shape \(2, 62, 5\)"),
        (lambda r: _resave(_features(r, 2), drop=("de_LDS15",)),
         "precomputed", r"1_20131103.mat: missing key 'de_LDS15'"),
        (lambda r: _resave(_features(r, 2), {"de_LDS2": np.full((62, 2, 5), np.inf)}),
         "precomputed", r"'de_LDS2' holds 620 non-finite"),
        (lambda r: shutil.rmtree(r / "ExtractedFeatures"), "precomputed", r"ExtractedFeatures: folder missing"),
    ],
)
def test_seed_bad_files(tmp_path, damage, call, message):
    root = build_seed(tmp_path / "SEED", subjects=(1,))
    damage(root)
    ds = Seed(root)
    with pytest.raises(DataError, match=message) as info:
        if call == "subjects":
            ds.subjects()
        elif call == "load":
            ds.load_subject(1)
        else:
            ds.load_precomputed(1, "de_LDS")
    assert "\n" not in str(info.value)


def test_seed_damaged_other_feature_set_does_not_matter(tmp_path):
    root = build_seed(tmp_path / "SEED", subjects=(1,))
    _resave(_features(root, 2), {"de_LDS9": np.zeros((62, 2, 4))})
    assert len(Seed(root).load_precomputed(1, "de_movingAve")) == 45
    with pytest.raises(DataError, match="de_LDS9"):
        Seed(root).check()


# --------------------------------------------------------------------------- SEED-IV: synthetic files


def test_synthetic_seed_iv_layout(seed_iv_master):
    for kind in ("eeg_feature_smooth", "eye_feature_smooth"):
        assert sorted(p.name for p in (seed_iv_master / kind).iterdir()) == ["1", "2", "3"]
    for session in (1, 2, 3):
        eeg_names = sorted(p.name for p in (seed_iv_master / "eeg_feature_smooth" / str(session)).iterdir())
        assert eeg_names == sorted(p.name for p in (seed_iv_master / "eye_feature_smooth" / str(session)).iterdir())
        assert len(eeg_names) == 3 and all(FILE_RE.match(n) for n in eeg_names)
    path = next((seed_iv_master / "eeg_feature_smooth" / "2").glob("1_*.mat"))
    eeg, eye = _mat(path), _mat(seed_iv_master / "eye_feature_smooth" / "2" / path.name)
    assert set(eeg) == {f"de_{m}{k}" for m in ("LDS", "movingAve") for k in range(1, 25)}
    assert set(eye) == {f"eye_{k}" for k in range(1, 25)}
    for k in range(1, 25):
        w = eeg[f"de_LDS{k}"].shape[1]
        assert IV_WINDOWS[0] <= w <= IV_WINDOWS[1]
        assert eeg[f"de_LDS{k}"].shape == eeg[f"de_movingAve{k}"].shape == (62, w, 5)
        assert eye[f"eye_{k}"].shape == (31, w)
    # Session dates increase with the session folder.
    dates = [next((seed_iv_master / "eeg_feature_smooth" / str(s)).glob("2_*.mat")).name for s in (1, 2, 3)]
    assert dates == sorted(dates)


def test_seed_iv_load_precomputed(seed_iv_master):
    ds = SeedIV(seed_iv_master)
    assert ds.subjects() == [1, 2, 3]
    for name in ("de_LDS", "de_movingAve"):
        recordings = ds.load_precomputed(3, name)
        assert len(recordings) == 72
        assert [(r.session, r.trial) for r in recordings] == [(s, k) for s in (1, 2, 3) for k in range(1, 25)]
        for r in recordings:
            assert (r.subject, r.data, r.sfreq, r.ch_names, r.extra) == (3, None, 0.25, CHANNELS, {})
            assert r.features.dtype == np.float32
            assert r.features.shape[1:] == (62, 5) and IV_WINDOWS[0] <= r.features.shape[0] <= IV_WINDOWS[1]
            assert r.labels == {"emotion": float(SEED_IV_SESSION_LABELS[r.session][r.trial - 1])}
        path = next((seed_iv_master / "eeg_feature_smooth" / "3").glob("3_*.mat"))
        np.testing.assert_allclose(recordings[48 + 9].features, _mat(path)[f"{name}10"].transpose(1, 0, 2), rtol=1e-6)
    with pytest.raises(ConfigError, match="no raw EEG"):
        ds.load_subject(1)
    with pytest.raises(ConfigError, match="'precomputed'"):
        ds.load_precomputed(1, "psd_LDS")


def test_seed_iv_eye_only_when_requested(seed_iv_master):
    plain = SeedIV(seed_iv_master, subjects=[1]).load_precomputed(1, "de_LDS")
    assert all("eye" not in r.extra for r in plain)
    with_eye = SeedIV(seed_iv_master, subjects=[1], modalities=("eeg", "eye")).load_precomputed(1, "de_LDS")
    path = next((seed_iv_master / "eye_feature_smooth" / "1").glob("1_*.mat"))
    stored = _mat(path)
    for r, p in zip(with_eye, plain):
        np.testing.assert_array_equal(r.features, p.features)
        assert r.extra["eye"].dtype == np.float32
        assert r.extra["eye"].shape == (len(r.features), N_EYE_FEATURES)
        if r.session == 1:
            np.testing.assert_allclose(r.extra["eye"], stored[f"eye_{r.trial}"].T, rtol=1e-6)


def test_synthetic_seed_iv_modalities_are_each_partly_informative(seed_iv_master):
    recordings = SeedIV(seed_iv_master, modalities=("eeg", "eye")).load_precomputed(2, "de_movingAve")
    x, y = _rows(recordings)
    eye = np.concatenate([r.extra["eye"] for r in recordings])
    neutral, sad, fear, happy = range(4)
    # EEG: sad (occipital alpha) and happy (temporal gamma) stand out; fear looks like neutral.
    alpha = {c: x[y == c][:, OCCIPITAL, ALPHA].mean() for c in range(4)}
    gamma = {c: x[y == c][:, TEMPORAL, GAMMA].mean() for c in range(4)}
    assert alpha[sad] > alpha[neutral] + 0.3 and gamma[happy] > gamma[neutral] + 0.3
    assert abs(alpha[fear] - alpha[neutral]) < 0.15 and abs(gamma[fear] - gamma[neutral]) < 0.15
    # Eye: fear (pupil) and happy (pupil, gaze dispersion) stand out; sad looks like neutral.
    def log_mean(name):
        return {c: np.nanmean(np.log(eye[y == c, SEED_IV_EYE_FEATURES.index(name)])) for c in range(4)}

    pupil, dispersion = log_mean("pupil_x_mean"), log_mean("dispersion_x_mean")
    assert pupil[fear] > pupil[happy] > pupil[neutral] + 0.05
    assert dispersion[happy] > max(dispersion[c] for c in (neutral, sad, fear)) + 0.2
    assert abs(pupil[sad] - pupil[neutral]) < 0.05 and abs(dispersion[sad] - dispersion[neutral]) < 0.2


def test_synthetic_seed_iv_is_deterministic_and_nan_option(tmp_path, seed_iv_master):
    again = write_synthetic_seed_iv(tmp_path / "a", n_subjects=1, windows_per_trial=IV_WINDOWS, seed=0, effect=2.0)
    for kind in ("eeg_feature_smooth", "eye_feature_smooth"):
        path = next((seed_iv_master / kind / "3").glob("1_*.mat"))
        a, b = _mat(again / kind / "3" / path.name), _mat(path)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    calls = []
    nan_root = write_synthetic_seed_iv(tmp_path / "n", n_subjects=2, windows_per_trial=(20, 20), seed=5,
                                       eye_nan_rate=0.3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
    eye = np.concatenate([r.extra["eye"] for r in SeedIV(nan_root, modalities=("eye",)).load_precomputed(1, "de_LDS")])
    assert 0.22 < np.isnan(eye).all(axis=1).mean() < 0.38 and not np.isinf(eye).any()  # windows lost to the tracker
    # By default a few percent of the windows are lost, and the loader keeps their NaN.
    default = np.concatenate([r.extra["eye"] for r in SeedIV(seed_iv_master, modalities=("eye",))
                              .load_precomputed(1, "de_LDS")])
    assert 0.0 < np.isnan(default).all(axis=1).mean() < 0.1


def test_seed_iv_check(seed_iv_master):
    rows = SeedIV(seed_iv_master, subjects=[1, 3]).check()
    assert [r["subject"] for r in rows] == [1, 3]
    recordings = SeedIV(seed_iv_master).load_precomputed(1, "de_LDS")
    row = rows[0]
    assert list(row) == ["subject", "sessions", "trials", "windows",
                         "neutral_share", "sad_share", "fear_share", "happy_share", "missing"]
    assert (row["sessions"], row["trials"]) == (3, 72)
    assert row["missing"]["eeg"] == "refused"
    assert (row["missing"]["eye"]["windows"], row["missing"]["eye"]["values"]) == (row["windows"],
                                                                                   row["windows"] * N_EYE_FEATURES)
    assert row["windows"] == sum(len(r.features) for r in recordings)
    assert sum(row[f"{c}_share"] for c in SEED_IV_CLASSES) == pytest.approx(1.0, abs=0.01)


def test_seed_iv_check_counts_missing_eye_values(tmp_path):
    root = write_synthetic_seed_iv(tmp_path / "seed_iv", n_subjects=2, windows_per_trial=IV_WINDOWS, seed=3,
                                   eye_nan_rate=0.25)
    rows = SeedIV(root).check()  # the eye folder is there: checked without asking for it
    for row in rows:
        eye = [r.extra["eye"] for r in SeedIV(root, modalities=("eye",)).load_precomputed(row["subject"], "de_LDS")]
        nan = np.isnan(np.concatenate(eye))
        assert nan.sum() > 0
        assert row["missing"]["eye"] == {"values": nan.size, "missing": int(nan.sum()), "windows": len(nan),
                                         "windows_missing": int(nan.any(axis=1).sum())}
        assert row["missing"]["eye"]["windows"] == row["windows"]
        assert row["missing"]["eeg"] == "refused"


def test_seed_iv_targets_and_attributes():
    ds = SeedIV("/nonexistent")
    idx, names = ds.make_targets({"emotion": np.array([3.0, 0.0, 2.0])}, "emotion")
    np.testing.assert_array_equal(idx, [3, 0, 2])
    assert names == ("neutral", "sad", "fear", "happy")
    with pytest.raises(DataError, match="holds -1.0"):
        ds.make_targets({"emotion": np.array([-1.0])}, "emotion")
    assert (SeedIV.modalities, SeedIV.precomputed, SeedIV.targets, SeedIV.default_feature) == (
        ("eeg", "raw_eeg", "eye"), ("de_LDS", "de_movingAve"), ("emotion",), "precomputed")
    assert SeedIV.present_modalities("/nonexistent") == ("eeg",)  # raw EEG and eye only where their folders are
    with pytest.raises(ConfigError, match="no modality face"):
        SeedIV("/nonexistent", modalities=("face",))
    for labels in SEED_IV_SESSION_LABELS.values():
        assert np.bincount(labels).tolist() == [6, 6, 6, 6]


# --------------------------------------------------------------------------- SEED-IV: hand-built files


def test_seed_iv_hand_built_files(tmp_path):
    root = build_seed_iv(tmp_path / "SEED_IV")
    ds = SeedIV(root, modalities=("eeg", "eye"))
    assert ds.subjects() == [1, 2]
    recordings = ds.load_precomputed(2, "de_movingAve")
    assert [r.features.shape[0] for r in recordings[:4]] == [4, 3, 4, 3]
    stored = _mat(root / "eeg_feature_smooth" / "2" / "2_20160502.mat")
    np.testing.assert_allclose(recordings[24].features, stored["de_movingAve1"].transpose(1, 0, 2), rtol=1e-6)
    eye = _mat(root / "eye_feature_smooth" / "2" / "2_20160502.mat")["eye_1"]
    np.testing.assert_allclose(recordings[24].extra["eye"], eye.T, rtol=1e-6)
    assert [r.labels["emotion"] for r in recordings[48:]] == [float(v) for v in SEED_IV_SESSION_LABELS[3]]
    assert SeedIV(root / "eeg_feature_smooth").subjects() == [1, 2]  # the EEG folder as root
    files = ds.source_files(1)
    assert len(files) == 6 and {p.parts[-3] for p in files} == {"eeg_feature_smooth", "eye_feature_smooth"}
    before = ds.fingerprint(1)
    _resave(root / "eye_feature_smooth" / "3" / "1_20160503.mat", drop=("eye_24",))
    assert SeedIV(root).fingerprint(1) != before


def test_seed_iv_eye_nan_allowed_inf_rejected(tmp_path):
    root = build_seed_iv(tmp_path / "SEED_IV", subjects=(1,))
    path = root / "eye_feature_smooth" / "1" / "1_20160501.mat"
    eye = _mat(path)["eye_3"]
    eye[5, 1] = np.nan
    _resave(path, {"eye_3": eye})
    recordings = SeedIV(root, modalities=("eye",)).load_precomputed(1, "de_LDS")
    assert np.isnan(recordings[2].extra["eye"][1, 5])
    eye[7, 0] = -np.inf
    _resave(path, {"eye_3": eye})
    message = r"1_20160501.mat: 'eye_3' holds 1 infinite value\(s\), first -inf at index \(7, 0\)"
    with pytest.raises(DataError, match=message):
        SeedIV(root, modalities=("eye",)).load_precomputed(1, "de_LDS")


def test_seed_iv_eye_files_opened_only_when_requested(tmp_path):
    root = build_seed_iv(tmp_path / "SEED_IV", subjects=(1,))
    (root / "eye_feature_smooth" / "2" / "1_20160502.mat").write_bytes(b"garbage")
    assert len(SeedIV(root).load_precomputed(1, "de_LDS")) == 72
    with pytest.raises(DataError, match=r"eye_feature_smooth/2/1_20160502.mat: unreadable .mat file"):
        SeedIV(root, modalities=("eeg", "eye")).load_precomputed(1, "de_LDS")
    shutil.rmtree(root / "eye_feature_smooth")
    assert len(SeedIV(root).load_precomputed(1, "de_LDS")) == 72
    assert SeedIV(root).check()[0]["missing"] == {"eeg": "refused"}
    with pytest.raises(DataError, match=r"eye_feature_smooth: folder missing"):
        SeedIV(root, modalities=("eye",)).load_precomputed(1, "de_LDS")


def _iv(session: int, subject: int = 1, kind: str = "eeg") -> str:
    return f"{kind}_feature_smooth/{session}/{subject}_2016050{session}.mat"


@pytest.mark.parametrize(
    "damage, call, message",
    [
        (lambda r: shutil.rmtree(r), "subjects", r"SEED-IV root does not exist"),
        (lambda r: shutil.rmtree(r / "eeg_feature_smooth"), "subjects", r"eeg_feature_smooth: folder missing"),
        (lambda r: shutil.rmtree(r / "eeg_feature_smooth" / "3"), "subjects",
         r"eeg_feature_smooth/3: session folder missing"),
        (lambda r: shutil.rmtree(r / "eye_feature_smooth" / "2"), "eye",
         r"eye_feature_smooth/2: session folder missing"),
        (lambda r: [p.unlink() for p in (r / "eeg_feature_smooth" / "2").iterdir()], "subjects",
         r"eeg_feature_smooth/2: no SEED-IV subject files"),
        (lambda r: (r / _iv(2, 2)).unlink(), "load2", r"eeg_feature_smooth/2: no file for subject 2 \(session 2\)"),
        (lambda r: (r / _iv(3, 2, "eye")).unlink(), "eye2",
         r"eye_feature_smooth/3: no file for subject 2 \(session 3\)"),
        (lambda r: shutil.copy(r / _iv(1), r / "eeg_feature_smooth" / "1" / "1_20160601.mat"), "subjects",
         r"eeg_feature_smooth/1: 2 files for subject 1"),
        (lambda r: _resave(r / _iv(2), drop=("de_LDS17",)), "load", r"1_20160502.mat: missing key 'de_LDS17'"),
        (lambda r: _resave(r / _iv(2), {"de_LDS017": np.zeros((62, 4, 5))}), "load",
         r"keys 'de_LDS017' and 'de_LDS17' both hold trial 17|keys 'de_LDS17' and 'de_LDS017' both hold trial 17"),
        (lambda r: _resave(r / _iv(2), {"de_LDS5": np.zeros((62, 4))}), "load",
         r"1_20160502.mat: 'de_LDS5' has shape \(62, 4\), expected \(62, windows, 5\)"),
        (lambda r: _resave(r / _iv(2), {"de_LDS5": np.zeros((32, 4, 5))}), "load", r"'de_LDS5' has shape \(32, 4, 5\)"),
        (lambda r: _resave(r / _iv(2), {"de_LDS5": np.full((62, 4, 5), np.nan)}), "load",
         r"'de_LDS5' holds 1240 non-finite value\(s\)"),
        (lambda r: (r / _iv(3)).write_bytes((r / _iv(3)).read_bytes()[:3000]), "load",
         r"eeg_feature_smooth/3/1_20160503.mat: unreadable .mat file"),
        (lambda r: _resave(r / _iv(1, kind="eye"), drop=("eye_20",)), "eye", r"1_20160501.mat: missing key 'eye_20'"),
        (lambda r: _resave(r / _iv(1, kind="eye"), {"eye_4": np.zeros((30, 3))}), "eye",
         r"'eye_4' has shape \(30, 3\), expected \(31, windows\)"),
        (lambda r: _resave(r / _iv(1, kind="eye"), {"eye_4": np.zeros((31, 5))}), "eye",
         r"eye_feature_smooth/1/1_20160501.mat: 'eye_4' has 5 windows but \S*eeg_feature_smooth/1/1_20160501.mat "
         r"'de_LDS4' has 3"),
    ],
)
def test_seed_iv_bad_files(tmp_path, damage, call, message):
    root = build_seed_iv(tmp_path / "SEED_IV")
    damage(root)
    ds = SeedIV(root, modalities=("eeg", "eye") if call.startswith("eye") else ("eeg",))
    subject = 2 if call.endswith("2") else 1
    with pytest.raises(DataError, match=message) as info:
        if call == "subjects":
            ds.subjects()
        else:
            ds.load_precomputed(subject, "de_LDS")
    assert "\n" not in str(info.value)


def test_seed_iv_check_validates_eye_files(seed_iv_root):
    path = next((seed_iv_root / "eye_feature_smooth" / "3").glob("2_*.mat"))
    _resave(path, {"eye_24": np.zeros((31, 99))})
    assert len(SeedIV(seed_iv_root, subjects=[2]).load_precomputed(2, "de_LDS")) == 72
    with pytest.raises(DataError, match="'eye_24' has 99 windows"):
        SeedIV(seed_iv_root, subjects=[2]).check()


# --------------------------------------------------------------------------- writers and smoothers


def test_smoothers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3, 2))
    for smooth in (moving_average, lds_smooth):
        np.testing.assert_allclose(smooth(np.full((7, 2), 4.0)), 4.0)
        y = smooth(x)
        assert y.shape == x.shape
        assert y.std() < 0.8 * x.std()
    np.testing.assert_allclose(moving_average(np.arange(5.0), width=3), [0.5, 1, 2, 3, 3.5])
    np.testing.assert_allclose(moving_average(x, axis=1), np.moveaxis(moving_average(np.moveaxis(x, 1, 0)), 0, 1))
    assert lds_smooth(np.ones((1, 4))).shape == (1, 4)


def test_writer_arguments(tmp_path):
    with pytest.raises(ConfigError, match="'subjects'"):
        write_synthetic_seed(tmp_path, n_subjects=0)
    with pytest.raises(ConfigError, match="'seconds'"):
        write_synthetic_seed(tmp_path, n_subjects=1, seconds=1.0)
    with pytest.raises(ConfigError, match="'windows_per_trial'"):
        write_synthetic_seed_iv(tmp_path, n_subjects=1, windows_per_trial=(5, 2))
    with pytest.raises(ConfigError, match="'eye_nan_rate'"):
        write_synthetic_seed_iv(tmp_path, n_subjects=1, eye_nan_rate=1.0)
    calls = []
    write_synthetic_seed(tmp_path / "s", n_subjects=1, seconds=2.0, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)]
    assert len(Seed(tmp_path / "s").load_precomputed(1, "de_LDS")) == 45
