"""SEED-V's raw EEG: the Neuroscan .cnt format (writer ↔ MNE's reader), the SeedV raw path on the
synthetic writer's EEG_raw/ layout and on small files built here, and every damaged-file error."""
from __future__ import annotations

import re
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from moodops.components.datasets.formats.cnt import CntFile, read_cnt, write_cnt
from moodops.components.datasets.seed.seed_v import (
    CHANNELS,
    EEG_DIR,
    EYE_DIR,
    RAW_DIR,
    SESSION_LABELS,
    TRIAL_SECONDS,
    DeLayoutWarning,
    SeedV,
    read_npz_pickles,
    time_scale_label,
    whole_windows,
)
from moodops.components.datasets.seed.synthetic_seed_v import CNT_CHANNELS, write_synthetic_seed_v
from moodops.components.errors import ConfigError, DataError
from moodops.components.features.spectral import differential_entropy

SCALE = 0.1  # the synthetic copy's timeline: sessions of 5-6 min, clips of 5-30 s
SFREQ = 250.0
TINY_SCALE = 0.01  # hand-built sessions of about 30 s


def one_line_error(excinfo, path: Path) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message, message
    return message


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    """A pristine synthetic SEED-V with EEG_raw/ (1 subject). Never modify it."""
    root = tmp_path_factory.mktemp("seed_v_raw")
    write_synthetic_seed_v(root, n_subjects=1, seed=0, effect=2.0, raw=True, raw_time_scale=SCALE, raw_sfreq=SFREQ)
    return root


@pytest.fixture(scope="module")
def raw_recordings(raw_root):
    """Subject 1 read with its eye features (read once for the module)."""
    return SeedV(raw_root, modalities=("eye",), raw_time_scale=SCALE).load_subject(1)


def _tiny_session(session: int, seconds: float | None = None, channels=None, label=None) -> tuple[np.ndarray, list]:
    """A 200-Hz session holding the scaled clip table: channel j of CHANNELS a 10-Hz sine of (j + 1) µV
    on a 100-µV offset; names in reverse order, some lower-case, with M1 and VEO among them."""
    end = TRIAL_SECONDS[session][-1][1] * TINY_SCALE
    n = int(round((seconds if seconds is not None else end + 2.0) * 200))
    t = np.arange(n) / 200
    names = list(channels if channels is not None else CHANNELS)
    rows = [(j + 1) * np.sin(2 * np.pi * 10 * t) + 100.0 for j in range(len(names))]
    names = [name.capitalize() if j % 3 == 0 else name for j, name in enumerate(names)] + ["M1", "VEO"]
    rows += [np.zeros(n), 50 * np.ones(n)]
    order = list(range(len(names)))[::-1]
    return np.array(rows)[order], [names[i] for i in order]


def build_tiny_root(root: Path, label: str | None = time_scale_label(TINY_SCALE), **session_kwargs) -> Path:
    for session in (1, 2, 3):
        data, names = _tiny_session(session, **session_kwargs)
        write_cnt(root / RAW_DIR / f"1_{session}_2018040{session}.cnt", data, 200, names, label=label or "")
    return root


# --------------------------------------------------------------------------- the .cnt format


@pytest.mark.parametrize("data_format", ["int32", "int16"])
def test_write_cnt_reads_back_through_mne(tmp_path, data_format):
    import mne

    rng = np.random.default_rng(0)
    names = ["FP1", "Fpz", "CB2", "M1", "VEO", "HEO"]
    data = rng.normal(0.0, 20.0, (6, 3001))
    data[3] = 0.0  # a flat channel
    data[4] += 250.0  # an offset
    path = write_cnt(tmp_path / "a.cnt", data, 1000, names, data_format=data_format, label="moodops test")
    raw = mne.io.read_raw_cnt(path, preload=True, verbose="error")
    assert raw.ch_names == names and raw.info["sfreq"] == 1000.0 and raw.n_times == 3001
    assert raw.info["description"] == "moodops test" and raw.info["bads"] == []
    bits = 32 if data_format == "int32" else 16
    resolution = np.maximum(np.abs(data).max(axis=1), 1e-12) / (2 ** (bits - 1) - 1)
    error = np.abs(raw.get_data() * 1e6 - data)
    assert (error <= resolution[:, None] * 0.5 + 1e-6 * np.abs(data) + 1e-9).all()
    cnt = CntFile(path)
    assert (cnt.sfreq, cnt.ch_names, cnt.n_samples, cnt.n_bytes) == (1000.0, tuple(names), 3001, bits // 8)
    np.testing.assert_allclose(cnt.read(), raw.get_data() * 1e6, rtol=1e-6, atol=1e-6)
    # Channels by name, case ignored, in the order asked; the file's spelling comes back.
    picked = read_cnt(path, channels=["fpz", "HEO", "fp1"], start=10, stop=20)
    assert picked.ch_names == ("Fpz", "HEO", "FP1") and picked.sfreq == 1000.0
    assert picked.data.dtype == np.float32 and picked.data.shape == (3, 10)
    np.testing.assert_allclose(picked.data, raw.get_data()[[1, 5, 0], 10:20] * 1e6, rtol=1e-5, atol=1e-4)


def test_write_cnt_is_atomic_and_refuses_what_it_cannot_store(tmp_path):
    good = np.zeros((2, 10))
    write_cnt(tmp_path / "a.cnt", good, 200, ["C3", "C4"])
    assert [p.name for p in tmp_path.iterdir()] == ["a.cnt"]  # no temporary file left
    bad = [
        dict(data_uV=np.full((2, 10), np.nan)),
        dict(sfreq=200.5),
        dict(ch_names=["C3", "c3"]),
        dict(ch_names=["C3", "TOOLONGNAME"]),
        dict(ch_names=["C3"]),
        dict(data_format="float32"),
        dict(label="x" * 20),
    ]
    for change in bad:
        kwargs = dict(data_uV=good, sfreq=200, ch_names=["C3", "C4"], **{})
        kwargs.update(change)
        with pytest.raises(ConfigError):
            write_cnt(tmp_path / "b.cnt", **kwargs)
    assert not (tmp_path / "b.cnt").exists()


def _damage(path: Path, kind: str) -> None:
    content = bytearray(path.read_bytes())
    if kind == "truncated":
        content = content[:len(content) // 2]
    elif kind == "cut-in-header":
        content = content[:600]
    elif kind == "garbled-channel-count":
        struct.pack_into("<H", content, 370, 60000)
    elif kind == "garbled-label":
        content[900:910] = b"\xff" * 10
    elif kind == "event-table-before-data":
        struct.pack_into("<I", content, 886, 100)
    elif kind == "event-table-garbled":
        content[-9] = 7
    elif kind == "not-cnt":
        content = bytearray(b"0       X X X X" + b" " * 2000)
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("kind,message", [
    ("truncated", "truncated"),
    ("cut-in-header", "shorter than the 900-byte"),
    ("garbled-channel-count", "60000 channels"),
    ("garbled-label", "label of channel 1"),
    ("event-table-before-data", "event table at byte 100"),
    ("event-table-garbled", "type 7"),
    ("not-cnt", "not a Neuroscan"),
])
def test_damaged_cnt_is_one_data_error_naming_the_file(tmp_path, kind, message):
    path = write_cnt(tmp_path / "x.cnt", np.ones((3, 400)), 200, ["C3", "CZ", "C4"])
    _damage(path, kind)
    with pytest.raises(DataError) as excinfo:
        read_cnt(path)
    assert message in one_line_error(excinfo, path)


def test_sample_width_without_a_sample_count(tmp_path):
    data = np.arange(3 * 400, dtype=np.float64).reshape(3, 400)
    path = write_cnt(tmp_path / "x.cnt", data, 200, ["C3", "CZ", "C4"], data_format="int16")
    content = bytearray(path.read_bytes())
    struct.pack_into("<I", content, 864, 0)  # NumSamples left empty: ContinousSeconds tells 16 bits
    path.write_bytes(bytes(content))
    assert CntFile(path).n_bytes == 2
    np.testing.assert_allclose(read_cnt(path).data, data, atol=0.02)  # 16 bits: 0.037 µV steps
    struct.pack_into("<f", content, 890, 0.0)
    path.write_bytes(bytes(content))
    with pytest.raises(DataError) as excinfo:
        CntFile(path)
    assert "pass data_format='int16' or 'int32'" in one_line_error(excinfo, path)
    np.testing.assert_allclose(read_cnt(path, data_format="int16").data, data, atol=0.02)


def test_missing_file_and_missing_channels(tmp_path):
    with pytest.raises(DataError) as excinfo:
        read_cnt(tmp_path / "none.cnt")
    assert "file not found" in one_line_error(excinfo, tmp_path / "none.cnt")
    path = write_cnt(tmp_path / "x.cnt", np.ones((2, 400)), 200, ["C3", "C4"])
    with pytest.raises(DataError) as excinfo:
        read_cnt(path, channels=["C3", "CZ", "PZ"])
    assert "lacks 2 of the 3 channels needed (CZ, PZ)" in one_line_error(excinfo, path)
    with pytest.raises(DataError, match="samples 0-500"):
        CntFile(path).read(stop=500)


# --------------------------------------------------------------------------- SeedV on the synthetic layout


def test_synthetic_raw_layout(raw_root):
    files = sorted((raw_root / RAW_DIR).iterdir())
    names = [p.name for p in files]
    assert [re.fullmatch(r"1_(\d)_(\d{8})\.cnt", n).group(1) for n in names] == ["1", "2", "3"]
    dates = [n.split("_")[2] for n in names]
    assert dates == sorted(dates) and len(set(dates)) == 3
    for session, path in enumerate(files, start=1):
        cnt = CntFile(path)
        assert cnt.ch_names == CNT_CHANNELS and len(CNT_CHANNELS) == 66 and cnt.sfreq == SFREQ
        assert cnt.label == time_scale_label(SCALE) and cnt.n_bytes == 4
        assert cnt.duration_s > TRIAL_SECONDS[session][-1][1] * SCALE
        raw = cnt.read(["VEO", "FP1", "O1"])
        assert np.abs(raw).max() > 150  # blinks and DC offsets: a messy signal
    # The features were computed from this EEG: one 4-s window per whole 4 s of each clip.
    members = read_npz_pickles(raw_root / EEG_DIR / "1_123.npz", ("data",))
    eye = read_npz_pickles(raw_root / EYE_DIR / "1_123.npz", ("data",))
    for k in range(45):
        session, trial = divmod(k, 15)
        start, end = TRIAL_SECONDS[session + 1][trial]
        assert len(members["data"][k]) == len(eye["data"][k]) == whole_windows((end - start) * SCALE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeLayoutWarning)
        assert len(SeedV(raw_root, raw_time_scale=SCALE).load_precomputed(1, "de")) == 45


def test_raw_recordings_are_the_15_clips_of_each_session(raw_root, raw_recordings):
    assert [(r.session, r.trial) for r in raw_recordings] == [(s, t) for s in (1, 2, 3) for t in range(1, 16)]
    eye = read_npz_pickles(raw_root / EYE_DIR / "1_123.npz", ("data",))["data"]
    for k, rec in enumerate(raw_recordings):
        assert rec.subject == 1 and rec.sfreq == 200.0 and rec.ch_names == CHANNELS
        assert rec.labels == {"emotion": float(SESSION_LABELS[rec.session - 1][rec.trial - 1])}
        assert rec.data.dtype == np.float32 and rec.data.shape[0] == 62
        # With the eye modality a clip keeps its eye windows' 4 s each: 4-s DE windows line up with them.
        np.testing.assert_array_equal(rec.extra["eye"], eye[k].astype(np.float32))
        assert rec.data.shape[1] == 800 * len(rec.extra["eye"])
        assert differential_entropy(rec.data, rec.sfreq, window_s=4.0).shape[0] == len(rec.extra["eye"])
    for session in (1, 2, 3):
        got = sorted(int(r.labels["emotion"]) for r in raw_recordings if r.session == session)
        assert got == sorted(list(range(5)) * 3)


def test_preprocessing_removed_offsets_drift_and_mains(raw_root, raw_recordings):
    rec = raw_recordings[5]  # session 1 clip 6: 25.8 s
    assert abs(rec.data.mean(axis=1)).max() < 10.0  # DC offsets of up to ±300 µV are gone
    spectrum = np.abs(np.fft.rfft(rec.data - rec.data.mean(axis=1, keepdims=True), axis=1)) ** 2
    freqs = np.fft.rfftfreq(rec.data.shape[1], 1 / rec.sfreq)
    mains = spectrum[:, np.abs(freqs - 50) < 0.3].mean()
    beside = spectrum[:, (np.abs(freqs - 50) > 2) & (np.abs(freqs - 50) < 5)].mean()
    assert mains < 3 * beside  # the 50-Hz line is notched out
    assert spectrum[:, freqs > 75].mean() < 0.05 * spectrum[:, (freqs > 20) & (freqs < 60)].mean()


def test_raw_de_separates_the_emotions(raw_recordings):
    """Per-subject protocol on the synthetic raw EEG: DE of 1-s windows, clips 1-9 train, 10-15 test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs, ys, train = [], [], []
    for rec in raw_recordings:
        de = differential_entropy(rec.data, rec.sfreq, window_s=1.0, method="stft")
        xs.append(de.reshape(len(de), -1))
        ys += [int(rec.labels["emotion"])] * len(de)
        train += [rec.trial <= 9] * len(de)
    x, y, train = np.concatenate(xs), np.array(ys), np.array(train)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x[train], y[train])
    accuracy = model.score(x[~train], y[~train])
    # EEG tells apart three groups of the five emotions (at most 0.6); chance is 0.2.
    assert 0.35 < accuracy <= 0.7, accuracy


def test_time_scale_must_match_the_files(raw_root, tmp_path):
    path = raw_root / RAW_DIR / sorted(p.name for p in (raw_root / RAW_DIR).iterdir())[0]
    with pytest.raises(DataError) as excinfo:
        SeedV(raw_root).load_subject(1)
    assert "pass raw_time_scale=0.1" in one_line_error(excinfo, path)
    with pytest.raises(DataError, match="pass raw_time_scale=0.1"):
        SeedV(raw_root, raw_time_scale=0.2).load_subject(1)
    unmarked = build_tiny_root(tmp_path, label="")
    with pytest.raises(DataError) as excinfo:
        SeedV(unmarked, raw_time_scale=TINY_SCALE).load_subject(1)
    assert "carries no mark" in one_line_error(excinfo, unmarked / RAW_DIR / "1_1_20180401.cnt")
    for bad in (0.0, 1.5, "x"):
        with pytest.raises(ConfigError, match="raw_time_scale"):
            SeedV(raw_root, raw_time_scale=bad)
    assert SeedV(raw_root, raw_time_scale=SCALE).options() == {"de_layout": "channel-major", "raw_time_scale": SCALE}


def test_writer_checks_raw_options(tmp_path):
    with pytest.raises(ConfigError, match="raw_time_scale"):
        write_synthetic_seed_v(tmp_path, n_subjects=1, raw=True, raw_time_scale=0.05)
    with pytest.raises(ConfigError, match="raw_sfreq"):
        write_synthetic_seed_v(tmp_path, n_subjects=1, raw=True, raw_time_scale=SCALE, raw_sfreq=150)
    with pytest.raises(ConfigError, match="raw_format"):
        write_synthetic_seed_v(tmp_path, n_subjects=1, raw=True, raw_time_scale=SCALE, raw_format="int8")


# --------------------------------------------------------------------------- SeedV on small hand-built files


def test_channels_by_name_in_seed_order_and_clip_lengths(tmp_path):
    root = build_tiny_root(tmp_path)
    ds = SeedV(root, raw_time_scale=TINY_SCALE)
    assert ds.subjects() == [1]  # a copy with raw recordings only
    recordings = ds.load_subject(1)
    assert len(recordings) == 45
    for rec in recordings:
        start, end = TRIAL_SECONDS[rec.session][rec.trial - 1]
        assert rec.data.shape == (62, int(round((end - start) * TINY_SCALE * 200)))
    # Channel j of CHANNELS is the (j + 1)-µV sine, whatever the file's order and case.
    rms = np.sqrt((recordings[6].data ** 2).mean(axis=1))
    np.testing.assert_allclose(rms, (np.arange(62) + 1) / np.sqrt(2), rtol=0.05)
    rows = ds.check()
    assert rows[0]["trials"] == 45 and rows[0]["raw_sessions"] == 3 and rows[0]["raw_sfreq"] == "200"
    assert ds.source_files(1) == sorted((root / RAW_DIR).iterdir())


def test_recording_shorter_than_the_last_clip(tmp_path):
    build_tiny_root(tmp_path, seconds=20.0)
    path = tmp_path / RAW_DIR / "1_1_20180401.cnt"
    with pytest.raises(DataError) as excinfo:
        SeedV(tmp_path, raw_time_scale=TINY_SCALE).load_subject(1)
    message = one_line_error(excinfo, path)
    assert "lasts 20 s" in message and "33.59 s at which clip 15 of session 1 ends" in message


def test_fewer_channels_than_needed(tmp_path):
    build_tiny_root(tmp_path, channels=CHANNELS[:40])
    with pytest.raises(DataError) as excinfo:
        SeedV(tmp_path, raw_time_scale=TINY_SCALE).load_subject(1)
    message = one_line_error(excinfo, tmp_path / RAW_DIR / "1_1_20180401.cnt")
    assert "lacks 22 of the 62 channels needed (TP8, P7," in message


@pytest.mark.parametrize("kind,message", [("truncated", "truncated"), ("garbled-label", "label of channel 1"),
                                          ("garbled-channel-count", "60000 channels")])
def test_damaged_session_file(tmp_path, kind, message):
    build_tiny_root(tmp_path)
    path = tmp_path / RAW_DIR / "1_2_20180402.cnt"
    _damage(path, kind)
    with pytest.raises(DataError) as excinfo:
        SeedV(tmp_path, raw_time_scale=TINY_SCALE).load_subject(1)
    assert message in one_line_error(excinfo, path)


def test_session_files_missing_or_doubled(tmp_path):
    root = build_tiny_root(tmp_path)
    (root / RAW_DIR / "1_3_20180403.cnt").unlink()
    with pytest.raises(DataError, match=r"subject 1 lacks the recording of session\(s\) 3"):
        SeedV(root, raw_time_scale=TINY_SCALE).load_subject(1)
    shutil.copy(root / RAW_DIR / "1_2_20180402.cnt", root / RAW_DIR / "1_2_20180409.cnt")
    with pytest.raises(DataError, match="two files of subject 1 session 2"):
        SeedV(root, raw_time_scale=TINY_SCALE).load_subject(1)


def test_eye_windows_must_fit_the_clip(raw_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(raw_root, root)
    from moodops.components.datasets.seed.synthetic_seed_v import write_pickle_npz

    path = root / EYE_DIR / "1_123.npz"
    members = read_npz_pickles(path, ("data", "label"))
    members["data"][7] = np.ones((3, 33))  # session 1 clip 8 lasts 6.9 s: room for one 4-s window
    write_pickle_npz(path, members)
    with pytest.raises(DataError) as excinfo:
        SeedV(root, modalities=("eye",), raw_time_scale=SCALE).load_subject(1)
    assert "'data'[7] has 3 4-s windows" in one_line_error(excinfo, path)
