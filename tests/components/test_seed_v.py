"""The SEED-V adapter on its synthetic writer's files and on files built here in the release's layout."""
from __future__ import annotations

import io
import logging
import os
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from moodops.components.datasets.seed.seed_v import (
    CHANNELS,
    CLASS_NAMES,
    EEG_DIR,
    EYE_DIR,
    N_KEYS,
    SESSION_LABELS,
    DeLayoutWarning,
    SeedV,
    read_npz_pickles,
)
from moodops.components.datasets.seed.synthetic_seed_v import (
    SEED_V_EYE_FEATURES,
    synthesize_subject_seed_v,
    write_synthetic_seed_v,
)
from moodops.components.errors import ConfigError, DataError

WINDOWS = (3, 5)

# --------------------------------------------------------------------------- helpers: the release's layout


def _labels_of(k: int) -> int:
    return SESSION_LABELS[k // 15][k % 15]


def hand_de(n_windows=lambda k: 2 + k % 3, layout: str = "channel-major") -> tuple[dict, dict, dict]:
    """DE dicts built by hand: value = 10 - band + channel/1000 + window/1e5 + key/1e7 (falls with band).

    Returns (data {k: (W, 310)}, label {k: (W,)}, expected {k: (W, 62, 5)}).
    """
    data, label, expected = {}, {}, {}
    for k in range(N_KEYS):
        w = n_windows(k)
        cube = (10.0 - np.arange(5)[None, None, :] + np.arange(62)[None, :, None] / 1000
                + np.arange(w)[:, None, None] / 1e5 + k / 1e7)
        expected[k] = cube.astype(np.float32)
        flat = cube.reshape(w, 310) if layout == "channel-major" else cube.transpose(0, 2, 1).reshape(w, 310)
        data[k] = flat
        label[k] = np.full(w, _labels_of(k), dtype=np.int64)
    return data, label, expected


def save_npz(path: Path, container: str = "bytes", **members) -> Path:
    """Write members the way the release (bytes) or np.savez of a dict (object) does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, obj in members.items():
        if container == "bytes":
            arrays[name] = np.array(pickle.dumps(obj))
        else:
            holder = np.empty((), dtype=object)
            holder[()] = obj
            arrays[name] = holder
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def build_root(root: Path, subjects=(1,), container="bytes", eye=True, layout="channel-major",
               n_windows=lambda k: 2 + k % 3) -> Path:
    for s in subjects:
        data, label, _ = hand_de(n_windows, layout)
        save_npz(root / EEG_DIR / f"{s}_123.npz", container, data=data, label=label)
        if eye:
            eye_data = {k: np.full((len(v), 33), float(k), np.float64) for k, v in data.items()}
            save_npz(root / EYE_DIR / f"{s}_123.npz", container, data=eye_data, label=label)
    return root


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seed_v")
    assert write_synthetic_seed_v(root, n_subjects=2, windows_per_trial=WINDOWS, seed=0, effect=2.0) == root
    return root


@pytest.fixture
def hand_root(tmp_path) -> Path:
    return build_root(tmp_path / "seedv", subjects=(1, 2))


def _load(ds: SeedV, subject: int = 1):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeLayoutWarning)
        return ds.load_precomputed(subject, "de")


# --------------------------------------------------------------------------- contract


def test_class_contract():
    assert SeedV.name == "seed-v"
    assert SeedV.modalities == ("eeg", "raw_eeg", "eye") and SeedV.default_feature == "precomputed"
    assert SeedV.precomputed == ("de",) and SeedV.eye_window_s == 4.0
    assert SeedV.option_names == ("de_layout", "raw_time_scale")
    assert SeedV.label_names == SeedV.targets == ("emotion",)
    SeedV.check_target("emotion")
    with pytest.raises(ConfigError):
        SeedV.check_target("valence")


def test_constructor_checks_options_not_disk(tmp_path):
    SeedV(tmp_path / "nowhere")  # nothing read yet
    with pytest.raises(ConfigError, match="de_layout"):
        SeedV(tmp_path, de_layout="bands-first")
    with pytest.raises(ConfigError, match="face"):
        SeedV(tmp_path, modalities=("face",))


def test_no_raw_eeg_and_only_de(hand_root):
    assert SeedV.present_modalities(hand_root) == ("eeg", "eye")  # a features-only copy: no raw_eeg
    ds = SeedV(hand_root)
    with pytest.raises(ConfigError, match="features only"):
        ds.load_subject(1)
    with pytest.raises(ConfigError, match="de_LDS"):
        ds.load_precomputed(1, "de_LDS")


# --------------------------------------------------------------------------- synthetic files


def test_synthetic_round_trip(synthetic_root):
    ds = SeedV(synthetic_root, modalities=("eye",))
    assert ds.subjects() == [1, 2]
    recordings = _load(ds, 2)
    assert len(recordings) == 45
    assert [(r.session, r.trial) for r in recordings] == [(s, t) for s in (1, 2, 3) for t in range(1, 16)]
    raw = np.load(synthetic_root / EEG_DIR / "2_123.npz")  # the release's own way to read it (no allow_pickle)
    data, label = pickle.loads(raw["data"]), pickle.loads(raw["label"])
    eye = pickle.loads(np.load(synthetic_root / EYE_DIR / "2_123.npz")["data"])
    for k, rec in enumerate(recordings):
        assert rec.subject == 2 and rec.data is None and rec.sfreq == 0.25
        assert rec.ch_names == CHANNELS and len(CHANNELS) == 62
        assert WINDOWS[0] <= rec.features.shape[0] <= WINDOWS[1]
        assert rec.features.shape[1:] == (62, 5) and rec.features.dtype == np.float32
        np.testing.assert_array_equal(rec.features, data[k].reshape(-1, 62, 5).astype(np.float32))
        assert rec.labels == {"emotion": float(_labels_of(k))} == {"emotion": float(label[k][0])}
        assert rec.extra["eye"].shape == (rec.features.shape[0], 33) and rec.extra["eye"].dtype == np.float32
        np.testing.assert_array_equal(rec.extra["eye"], eye[k].astype(np.float32))
    # Each session has 3 clips per emotion.
    for session in (1, 2, 3):
        got = [int(r.labels["emotion"]) for r in recordings if r.session == session]
        assert sorted(got) == sorted(list(range(5)) * 3)


def test_eye_only_when_requested(synthetic_root):
    assert all("eye" not in r.extra for r in _load(SeedV(synthetic_root)))


def test_synthetic_is_deterministic_and_realistic(tmp_path):
    a, b = synthesize_subject_seed_v(3, (4, 6), seed=1), synthesize_subject_seed_v(3, (4, 6), seed=1)
    for k in range(N_KEYS):
        np.testing.assert_array_equal(a[0][k], b[0][k])
    de, eye, labels = synthesize_subject_seed_v(1, (20, 20), seed=0, effect=2.0)
    means = np.concatenate(list(de.values())).mean(axis=(0, 1))
    assert (np.diff(means) < 0).all()  # DE falls from delta to gamma
    assert all((np.nan_to_num(v) >= 0).all() and not np.isinf(v).any() for v in eye.values())
    assert 0 < np.mean([np.isnan(v).all(axis=1).mean() for v in eye.values()]) < 0.1  # windows lost to the tracker
    by_class = {c: [k for k in range(N_KEYS) if _labels_of(k) == c] for c in range(5)}

    def mean_of(values, c, index):
        return np.mean([np.nanmean(values[k][index]) for k in by_class[c]])

    gamma_temporal = (slice(None), [CHANNELS.index(c) for c in ("T7", "T8", "TP7", "TP8")], 4)
    pupil = (slice(None), SEED_V_EYE_FEATURES.index("pupil_x_mean"))
    # EEG: happy differs; disgust ~ fear (same EEG group). Eye: fear ~ neutral, both above disgust ~ sad.
    assert mean_of(de, 4, gamma_temporal) > max(mean_of(de, c, gamma_temporal) for c in range(4)) + 0.3
    assert abs(mean_of(de, 0, gamma_temporal) - mean_of(de, 1, gamma_temporal)) < 0.3
    assert min(mean_of(eye, 1, pupil), mean_of(eye, 3, pupil)) > max(mean_of(eye, 0, pupil), mean_of(eye, 2, pupil))
    with pytest.raises(ConfigError):
        write_synthetic_seed_v(tmp_path, n_subjects=1, windows_per_trial=(5, 2))
    with pytest.raises(ConfigError):
        write_synthetic_seed_v(tmp_path, n_subjects=1, layout="rows")
    with pytest.raises(ConfigError, match="'eye_nan_rate'"):
        write_synthetic_seed_v(tmp_path, n_subjects=1, eye_nan_rate=1.0)


def test_object_container_and_band_major_synthetic(tmp_path):
    root = write_synthetic_seed_v(tmp_path, n_subjects=1, windows_per_trial=(2, 3), layout="band-major",
                                  container="object")
    with zipfile.ZipFile(root / EEG_DIR / "1_123.npz") as zf:
        header = zf.read("data.npy")[:80]
    assert b"'descr': '|O'" in header
    expected = synthesize_subject_seed_v(1, (2, 3), seed=0)[0]
    recordings = _load(SeedV(root, de_layout="band-major"))
    for k, rec in enumerate(recordings):
        np.testing.assert_allclose(rec.features, expected[k], rtol=1e-6)


# --------------------------------------------------------------------------- hand-built files


@pytest.mark.parametrize("container", ["bytes", "object"])
def test_hand_built_channel_major(tmp_path, container):
    root = build_root(tmp_path, container=container)
    _, _, expected = hand_de()
    recordings = _load(SeedV(root, modalities=("eye",)))
    for k, rec in enumerate(recordings):
        np.testing.assert_array_equal(rec.features, expected[k])  # column c·5 + b → [c, b]
        assert rec.features.shape == (2 + k % 3, 62, 5)
        np.testing.assert_array_equal(rec.extra["eye"], np.full((2 + k % 3, 33), float(k), np.float32))
        assert rec.labels["emotion"] == _labels_of(k)


def test_hand_built_band_major(tmp_path):
    root = build_root(tmp_path, layout="band-major")
    _, _, expected = hand_de()
    for k, rec in enumerate(_load(SeedV(root, de_layout="band-major"))):
        np.testing.assert_array_equal(rec.features, expected[k])  # column b·62 + c → [c, b]


def test_wrong_layout_warns(tmp_path, caplog):
    root = build_root(tmp_path, layout="band-major", eye=False)
    with caplog.at_level(logging.WARNING), pytest.warns(DeLayoutWarning, match="band-major"):
        SeedV(root).load_precomputed(1, "de")
    assert "does not fall from delta to gamma" in caplog.text and "1_123.npz" in caplog.text
    with pytest.warns(DeLayoutWarning, match="channel-major"):
        SeedV(build_root(tmp_path / "cm", eye=False), de_layout="band-major").load_precomputed(1, "de")


def test_nan_in_eye_is_kept_inf_is_not(tmp_path):
    root = build_root(tmp_path)
    data, label, _ = hand_de()
    eye = {k: np.ones((len(v), 33)) for k, v in data.items()}
    eye[3][1, 5] = np.nan
    save_npz(root / EYE_DIR / "1_123.npz", data=eye)
    rec = _load(SeedV(root, modalities=("eye",)))[3]
    assert np.isnan(rec.extra["eye"][1, 5]) and np.isfinite(np.delete(rec.extra["eye"].ravel(), 38)).all()
    eye[3][1, 5] = np.inf
    path = save_npz(root / EYE_DIR / "1_123.npz", data=eye)
    with pytest.raises(DataError, match=rf"{path}.*'data'\[3\].*non-finite"):
        SeedV(root, modalities=("eye",)).load_precomputed(1, "de")


def test_source_files_fingerprint_and_check(hand_root):
    eeg, eye = hand_root / EEG_DIR / "1_123.npz", hand_root / EYE_DIR / "1_123.npz"
    assert SeedV(hand_root).source_files(1) == [eeg]
    assert SeedV(hand_root, modalities=("eye",)).source_files(1) == [eeg, eye]
    before = SeedV(hand_root, modalities=("eye",)).fingerprint(1)
    os.utime(eye, ns=(1, 1))
    assert SeedV(hand_root, modalities=("eye",)).fingerprint(1) != before
    assert SeedV(hand_root).options() == {"de_layout": "channel-major"}
    rows = SeedV(hand_root, modalities=("eye",)).check()
    assert [r["subject"] for r in rows] == [1, 2]
    row = rows[0]
    assert row["sessions"] == 3 and row["trials"] == 45
    assert row["windows"] == sum(2 + k % 3 for k in range(45))
    assert all(row[name] == 9 for name in CLASS_NAMES)
    assert row["missing"] == {"eeg": "refused", "eye": {"values": row["windows"] * 33, "missing": 0,
                                                        "windows": row["windows"], "windows_missing": 0}}
    assert SeedV(hand_root).check() == rows  # the eye folder is there: checked without asking for it


def test_check_counts_missing_eye_values(tmp_path):
    root = write_synthetic_seed_v(tmp_path / "seed_v", n_subjects=2, windows_per_trial=WINDOWS, seed=1)
    rng = np.random.default_rng(0)
    for subject in (1, 2):  # blank random eye values, whole windows and single values, as the release has
        path = root / EYE_DIR / f"{subject}_123.npz"
        members = read_npz_pickles(path, ("data", "label"))
        for k in range(0, N_KEYS, 3):
            eye = members["data"][k]
            eye[rng.random(len(eye)) < 0.5] = np.nan
            eye[rng.random(eye.shape) < 0.1] = np.nan
        save_npz(path, **members)
    rows = SeedV(root).check()
    for row in rows:
        eye = [r.extra["eye"] for r in SeedV(root, modalities=("eye",)).load_precomputed(row["subject"], "de")]
        nan = np.isnan(np.concatenate(eye))
        assert 0 < nan.sum() < nan.size
        assert row["missing"]["eye"] == {"values": nan.size, "missing": int(nan.sum()), "windows": len(nan),
                                         "windows_missing": int(nan.any(axis=1).sum())}
    assert SeedV(root, modalities=("eye",)).check() == rows
    shutil.rmtree(root / EYE_DIR)
    assert [row["missing"] for row in SeedV(root).check()] == [{"eeg": "refused"}] * 2


def test_make_targets():
    y, names = SeedV("x").make_targets({"emotion": np.array([0.0, 4.0, 2.0])}, "emotion")
    assert names == CLASS_NAMES == ("disgust", "fear", "sad", "neutral", "happy")
    assert y.tolist() == [0, 4, 2] and y.dtype == np.int64
    with pytest.raises(DataError):
        SeedV("x").make_targets({"emotion": np.array([5.0])}, "emotion")


def test_subject_selection(hand_root):
    assert SeedV(hand_root, subjects=[2]).subjects() == [2]
    with pytest.raises(DataError, match="subject"):
        SeedV(hand_root, subjects=[7]).subjects()
    with pytest.raises(DataError, match="subject 7"):
        SeedV(hand_root).load_precomputed(7, "de")


# --------------------------------------------------------------------------- bad inputs


def test_missing_root_folders_and_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        SeedV(tmp_path / "nowhere").subjects()
    with pytest.raises(DataError, match=EEG_DIR):
        SeedV(tmp_path).subjects()
    (tmp_path / EEG_DIR).mkdir()
    (tmp_path / EEG_DIR / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no SEED-V subject files"):
        SeedV(tmp_path).subjects()
    build_root(tmp_path, eye=False)
    assert SeedV(tmp_path).subjects() == [1]
    with pytest.raises(DataError, match=EYE_DIR):
        SeedV(tmp_path, modalities=("eye",)).subjects()
    (tmp_path / EYE_DIR).mkdir()
    with pytest.raises(DataError, match=r"1_123\.npz.*not found"):
        SeedV(tmp_path, modalities=("eye",)).load_precomputed(1, "de")


def _rewrite_eeg(root: Path, container="bytes", **members) -> Path:
    data, label, _ = hand_de()
    return save_npz(root / EEG_DIR / "1_123.npz", container, **{"data": data, "label": label, **members})


def _expect(root: Path, match: str, modalities=()):
    with pytest.raises(DataError, match=match) as info:
        SeedV(root, modalities=modalities).load_precomputed(1, "de")
    assert "\n" not in str(info.value)
    return info


def test_missing_keys(tmp_path):
    root = build_root(tmp_path)
    data, label, _ = hand_de()
    del data[44], data[3]
    path = _rewrite_eeg(root, data=data)
    _expect(root, rf"{path}: 'data' lacks trial key\(s\) 3, 44")
    data, _, _ = hand_de()
    data["x"] = data.pop(0)
    _rewrite_eeg(root, data=data)
    _expect(root, r"'data' has key 'x'")
    label = dict(hand_de()[1])
    label[45] = label[0]
    _rewrite_eeg(root, label=label)
    _expect(root, r"'label' has key 45")
    _rewrite_eeg(root, data=[1, 2, 3])
    _expect(root, r"'data' is a list")


def test_wrong_shapes(tmp_path):
    root = build_root(tmp_path)
    data, _, _ = hand_de()
    data[7] = data[7][:, :300]
    path = _rewrite_eeg(root, data=data)
    _expect(root, rf"{path}: 'data'\[7\] has shape \(3, 300\), expected \(n_windows, 310\)")
    data, _, _ = hand_de()
    data[2] = np.zeros((0, 310))
    _rewrite_eeg(root, data=data)
    _expect(root, r"'data'\[2\] has shape \(0, 310\)")
    data, _, _ = hand_de()
    data[2] = np.array(["a"] * 310, dtype=object).reshape(1, 310)
    _rewrite_eeg(root, data=data)
    _expect(root, r"'data'\[2\] is object, expected a numeric array")
    _rewrite_eeg(root)
    eye = {k: np.zeros((2 + k % 3, 32)) for k in range(45)}
    eye_path = save_npz(root / EYE_DIR / "1_123.npz", data=eye)
    _expect(root, rf"{eye_path}: 'data'\[0\] has shape \(2, 32\), expected \(n_windows, 33\)", ("eye",))


def test_non_finite_de(tmp_path):
    root = build_root(tmp_path)
    data, _, _ = hand_de()
    data[10][1, 17] = np.nan
    path = _rewrite_eeg(root, data=data)
    _expect(root, rf"{path}: 'data'\[10\] holds 1 non-finite value\(s\), first nan at window 1, column 17")


def test_bad_labels(tmp_path):
    root = build_root(tmp_path)
    _, label, _ = hand_de()
    label[5] = np.full_like(label[5], 5)
    path = _rewrite_eeg(root, label=label)
    _expect(root, rf"{path}: 'label'\[5\] has value 5, outside 0-4")
    _, label, _ = hand_de()
    label[6] = label[6].copy()
    label[6][-1] = (label[6][0] + 1) % 5
    _rewrite_eeg(root, label=label)
    _expect(root, r"'label'\[6\] is not constant")
    _, label, _ = hand_de()
    label[8] = label[8][:-1]
    _rewrite_eeg(root, label=label)
    _expect(root, r"'label'\[8\] has 3 windows but 'data'\[8\] has 4")
    _, label, _ = hand_de()
    label[1] = label[1].astype(float)[:, None]  # (W, 1) floats are fine
    _rewrite_eeg(root, label=label)
    assert SeedV(root).load_precomputed(1, "de")[1].labels == {"emotion": float(_labels_of(1))}


def test_eye_windows_must_match(tmp_path):
    root = build_root(tmp_path)
    eye = {k: np.zeros((2 + k % 3, 33)) for k in range(45)}
    eye[12] = np.zeros((9, 33))
    eye_path = save_npz(root / EYE_DIR / "1_123.npz", data=eye)
    eeg_path = root / EEG_DIR / "1_123.npz"
    _expect(root, rf"{eye_path}: 'data'\[12\] has 9 windows but {eeg_path} 'data'\[12\] has 2", ("eye",))
    # The eye file is opened only when eye is requested.
    assert len(SeedV(root).load_precomputed(1, "de")) == 45
    eye_path.write_bytes(b"garbage")
    assert len(SeedV(root).load_precomputed(1, "de")) == 45
    _expect(root, rf"{eye_path}: not a valid \.npz", ("eye",))


def test_members_missing_or_corrupt(tmp_path):
    root = build_root(tmp_path)
    data, _, _ = hand_de()
    path = save_npz(root / EEG_DIR / "1_123.npz", data=data)
    _expect(root, rf"{path}: member 'label' missing")
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    _expect(root, rf"{path}: not a valid \.npz")
    _rewrite_eeg(root)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _expect(root, rf"{path}")
    # A .npy member holding plain numbers, not a pickle.
    with path.open("wb") as f:
        np.savez(f, data=np.zeros((3, 310)), label=np.zeros(3))
    _expect(root, rf"{path}\[data\]: a float64 array of shape \(3, 310\), expected a pickled dict")
    # A member whose bytes are not a pickle.
    with path.open("wb") as f:
        np.savez(f, data=np.array(b"not a pickle"), label=np.array(b"x"))
    _expect(root, rf"{path}\[data\]: corrupt pickle")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _npy_object_stream(payload: bytes) -> bytes:
    """A .npy header declaring a 0-d object array followed by ``payload`` (the pickle)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buf.getvalue() + payload


@pytest.mark.parametrize("container", ["bytes", "object"])
def test_malicious_pickle_is_refused_and_never_run(tmp_path, container):
    root = build_root(tmp_path)
    marker = tmp_path / "pwned"
    _, label, _ = hand_de()
    evil = {k: _Evil(marker) for k in range(45)}
    path = root / EEG_DIR / "1_123.npz"
    if container == "bytes":
        save_npz(path, "bytes", data=evil, label=label)
    else:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array(pickle.dumps(label)))
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("data.npy", _npy_object_stream(pickle.dumps(evil, protocol=3)))
            zf.writestr("label.npy", buf.getvalue())
    with pytest.raises(DataError, match=rf"{path}\[data\]: refused to unpickle global '(posix|os)\.system'"):
        SeedV(root).load_precomputed(1, "de")
    assert not marker.exists()
    with pytest.raises(DataError, match="system"):
        read_npz_pickles(path, ("data",))
    assert not marker.exists()
    # The same payload is refused in the eye file too.
    save_npz(root / EEG_DIR / "1_123.npz", data=hand_de()[0], label=label)
    eye_path = save_npz(root / EYE_DIR / "1_123.npz", data=evil)
    with pytest.raises(DataError, match=rf"{eye_path}\[data\]: refused.*system"):
        SeedV(root, modalities=("eye",)).load_precomputed(1, "de")
    assert not marker.exists()


def test_feeds_the_feature_builder(synthetic_root):
    from moodops.components.features import FeatureConfig, build_features

    config = FeatureConfig(kind="precomputed", method="de", extras=("eye",))
    features = build_features(SeedV(synthetic_root, subjects=[1], modalities=("eye",)), config, None)
    assert features.x.shape[1:] == (62, 5) and features.extra["eye"].shape == (len(features.x), 33)
    first = _load(SeedV(synthetic_root, modalities=("eye",)))[0]
    n = len(first.features)
    np.testing.assert_array_equal(features.x[:n], first.features)
    np.testing.assert_array_equal(features.extra["eye"][:n], first.extra["eye"])
    assert set(features.column("session")) == {1, 2, 3} and features.column("emotion")[0] == _labels_of(0)
