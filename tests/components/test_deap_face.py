"""DEAP's face modality: OpenFace CSVs per presentation trial, mapped to the .dat rows and averaged per window."""
from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from moodops.components.datasets.deap.deap import (
    FACE_AUS,
    FACE_FEATURES,
    FACE_GAZE,
    FACE_POSE,
    Deap,
    face_window_means,
)
from moodops.components.datasets.formats.legacy_pickle import dump_py2
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
from moodops.components.errors import ConfigError, DataError

SFREQ = 128
N_BASE = 3 * SFREQ
N_SUBJECTS, N_TRIALS, SECONDS, FPS = 3, 4, 6, 5
AU12 = FACE_FEATURES.index("AU12_r")

# --------------------------------------------------------------------------- helpers


def write_dat(root: Path, subject: int, n_trials: int, seconds: float, labels: np.ndarray | None = None) -> None:
    folder = root / "data_preprocessed_python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(subject)
    data = rng.standard_normal((n_trials, 40, N_BASE + int(seconds * SFREQ))).astype(np.float32)
    if labels is None:
        labels = np.round(rng.uniform(1, 9, (n_trials, 4)), 2)
    with (folder / f"s{subject:02d}.dat").open("wb") as f:
        dump_py2({"data": data, "labels": labels}, f)


def write_ratings(path: Path, rows: list[tuple[int, int, int]], columns=None) -> Path:
    """rows: (participant, presentation trial, experiment id)."""
    columns = columns or ["Participant_id", "Trial", "Experiment_id", "Start_time", "Valence", "Arousal",
                          "Dominance", "Liking", "Familiarity"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for p, t, e in rows:
            full = {"Participant_id": p, "Trial": t, "Experiment_id": e, "Start_time": 0, "Valence": 5,
                    "Arousal": 5, "Dominance": 5, "Liking": 5, "Familiarity": ""}
            w.writerow([full[c] for c in columns])
    return path


def write_face_csv(path: Path, frames: list[tuple[float, float, int, float]], drop: str | None = None) -> Path:
    """frames: (timestamp, confidence, success, value); every feature column gets ``value``
    except AU12_r, which gets ``value + 100`` (so columns are told apart)."""
    columns = ["frame", "face_id", "timestamp", "confidence", "success", *FACE_GAZE, *FACE_POSE, *FACE_AUS, "AU12_c"]
    if drop:
        columns.remove(drop)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [", ".join(columns)]  # OpenFace writes ", " between names: leading spaces
    for i, (ts, conf, ok, value) in enumerate(frames):
        cells = {"frame": i + 1, "face_id": 0, "timestamp": ts, "confidence": conf, "success": ok, "AU12_c": 1}
        row = [cells.get(c, value + 100 if c == "AU12_r" else value) for c in columns]
        lines.append(", ".join(str(v) for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


# presentation order of the hand-built subject 1: Trial 1 showed video 3, Trial 2 video 1, Trial 3 video 2
ORDER = {1: 3, 2: 1, 3: 2}


@pytest.fixture
def hand_root(tmp_path) -> Path:
    """Subject 1 (3 trials of 4 s) with face CSVs; in each, every good frame of window k of presentation
    trial t has value 10·t + k (so row r of .dat must get 10·t + k with video r + 1 shown as trial t)."""
    root = tmp_path / "deap"
    write_dat(root, 1, 3, 4)
    write_ratings(root / "participant_ratings.csv", [(1, t, e) for t, e in ORDER.items()])
    for t in ORDER:
        frames = [(k + f / 4, 0.95, 1, 10 * t + k) for k in range(4) for f in range(4)]
        write_face_csv(root / "face" / "s01" / f"s01_trial{t:02d}.csv", frames)
    return root


@pytest.fixture(scope="module")
def face_master(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deap_face")
    write_synthetic_deap(root, n_subjects=N_SUBJECTS, n_trials=N_TRIALS, seconds=SECONDS, seed=0, effect=3.0,
                         with_face=True, face_fps=FPS, face_layout="complete")
    return root


@pytest.fixture
def face_root(face_master, tmp_path) -> Path:
    root = tmp_path / "deap"
    shutil.copytree(face_master, root)
    return root


# --------------------------------------------------------------------------- contract


def test_contract_and_options(tmp_path):
    assert Deap.modalities == ("eeg", "raw_eeg", "peripheral", "face")
    assert "window_s" in Deap.option_names
    assert Deap(tmp_path).options() == {}
    assert Deap(tmp_path, modalities=("face",), window_s=3.0).options() == {
        "window_s": 3.0, "face_confidence": 0.8, "face_offset_s": 0.0}
    assert Deap(tmp_path, window_s=None).window_s == 1.0
    with pytest.raises(ConfigError, match="window_s"):
        Deap(tmp_path, window_s=0.01)
    with pytest.raises(ConfigError, match="face_confidence"):
        Deap(tmp_path, face_confidence=1.5)


# --------------------------------------------------------------------------- hand-built files


def test_presentation_order_maps_to_dat_rows(hand_root):
    recordings = Deap(hand_root, modalities=("face",)).load_subject(1)
    assert len(recordings) == 3
    shown_as = {e: t for t, e in ORDER.items()}  # video → presentation trial
    for row, rec in enumerate(recordings):
        face = rec.extra["face"]
        assert face.shape == (4, len(FACE_FEATURES)) == (4, 29) and face.dtype == np.float32
        t = shown_as[row + 1]
        expected = np.array([10 * t + k for k in range(4)], np.float32)
        np.testing.assert_array_equal(face[:, 0], expected)
        np.testing.assert_array_equal(face[:, AU12], expected + 100)
    # EEG, labels and the rest are untouched by the face.
    plain = Deap(hand_root).load_subject(1)
    assert "face" not in plain[0].extra
    np.testing.assert_array_equal(plain[2].data, recordings[2].data)


def test_window_average_by_hand(hand_root):
    path = hand_root / "face" / "s01" / "s01_trial02.csv"  # video 1 → .dat row 0
    write_face_csv(path, [
        (0.0, 0.90, 1, 1.0),
        (0.5, 0.95, 1, 3.0),     # window 0: mean of 1 and 3 = 2
        (0.7, 0.50, 1, 50.0),    # low confidence: ignored
        (0.9, 0.99, 0, 70.0),    # success 0: ignored
        (1.0, 0.80, 1, 4.0),     # exactly on the boundary: window 1, and 0.8 is good enough
        (1.99, 0.81, 1, 6.0),    # window 1: mean of 4 and 6 = 5
        (2.5, 0.30, 1, 9.0),     # window 2 has no good frame: NaN
        (3.2, 0.90, 1, 7.0),     # window 3: 7
        (4.0, 0.90, 1, 99.0),    # after the 4-s stimulus: ignored
    ])
    face = Deap(hand_root, modalities=("face",)).load_subject(1)[0].extra["face"]
    np.testing.assert_array_equal(face[[0, 1, 3], 0], [2.0, 5.0, 7.0])
    np.testing.assert_array_equal(face[[0, 1, 3], AU12], [102.0, 105.0, 107.0])
    assert np.isnan(face[2]).all()
    # 2-s windows: [0, 2) averages 1, 3, 4, 6 → 3.5; [2, 4) only 7.
    face2 = Deap(hand_root, modalities=("face",), window_s=2.0).load_subject(1)[0].extra["face"]
    np.testing.assert_array_equal(face2[:, 0], [3.5, 7.0])
    # A stricter threshold drops the 0.80 and 0.81 frames; an offset shifts the windows.
    strict = Deap(hand_root, modalities=("face",), face_confidence=0.85).load_subject(1)[0].extra["face"]
    np.testing.assert_array_equal(strict[[0, 3], 0], [2.0, 7.0])
    assert np.isnan(strict[1]).all()
    shifted = Deap(hand_root, modalities=("face",), face_offset_s=1.0).load_subject(1)[0].extra["face"]
    np.testing.assert_array_equal(shifted[[0, 2], 0], [5.0, 7.0])  # t - 1: window 0 holds 4, 6


def test_window_means_function():
    frames = np.array([[0.0, 0.9, 1], [0.4, 0.9, 1], [1.5, 0.9, 1], [2.9, 0.9, 1]])
    values = np.array([[1.0, np.nan], [3.0, 2.0], [5.0, 5.0], [8.0, 8.0]])
    out = face_window_means(frames, values, n_windows=2, window_len=1.5)
    np.testing.assert_array_equal(out, np.array([[2.0, 2.0], [6.5, 6.5]], np.float32))


def test_windows_follow_window_s_like_the_eeg(hand_root):
    # 4-s trials: 3-s windows → 1 window; 1.5 s → 2 (samples [0, 192), [192, 384)).
    assert Deap(hand_root, modalities=("face",), window_s=3.0).load_subject(1)[0].extra["face"].shape == (1, 29)
    face = Deap(hand_root, modalities=("face",), window_s=1.5).load_subject(1)[1].extra["face"]
    # row 1 = video 2 = presentation trial 3: frames of window 0 ([0,1): 30, [1,1.5): 31) and window 1.
    np.testing.assert_allclose(face[:, 0], [(30 * 4 + 31 * 2) / 6, (31 * 2 + 32 * 4) / 6], rtol=1e-6)
    with pytest.raises(ConfigError, match="fewer than one"):
        Deap(hand_root, modalities=("face",), window_s=5.0).load_subject(1)


def test_missing_column_is_an_error(hand_root):
    path = write_face_csv(hand_root / "face" / "s01" / "s01_trial03.csv", [(0.0, 0.9, 1, 1.0)], drop="AU12_r")
    with pytest.raises(DataError, match=rf"{path}: face CSV has no column 'AU12_r'"):
        Deap(hand_root, modalities=("face",)).load_subject(1)
    write_face_csv(path, [(0.0, 0.9, 1, 1.0)], drop="confidence")
    with pytest.raises(DataError, match="no column 'confidence'"):
        Deap(hand_root, modalities=("face",)).load_subject(1)
    write_face_csv(path, [(0.0, 0.9, 1, 1.0)])
    path.write_text(path.read_text().splitlines()[0] + "\n1, 0, x, 0.9\n")
    with pytest.raises(DataError, match=rf"{path}: face CSV has a non-numeric or short row"):
        Deap(hand_root, modalities=("face",)).load_subject(1)


def test_header_only_csv_gives_nan_windows(hand_root):
    path = hand_root / "face" / "s01" / "s01_trial01.csv"  # video 3 → row 2
    path.write_text(path.read_text().splitlines()[0] + "\n")
    face = Deap(hand_root, modalities=("face",)).load_subject(1)[2].extra["face"]
    assert face.shape == (4, 29) and np.isnan(face).all()


def test_ratings_file_problems(hand_root):
    ratings = hand_root / "participant_ratings.csv"
    ratings.unlink()
    with pytest.raises(DataError, match=rf"{ratings}: DEAP's participant_ratings.csv not found"):
        Deap(hand_root, modalities=("face",)).subjects()
    assert Deap(hand_root).subjects() == [1]  # not needed without face
    # DEAP's zip puts it in metadata_csv/.
    write_ratings(hand_root / "metadata_csv" / "participant_ratings.csv", [(1, t, e) for t, e in ORDER.items()])
    assert Deap(hand_root, modalities=("face",)).subjects() == [1]
    shutil.rmtree(hand_root / "metadata_csv")
    write_ratings(ratings, [(1, 1, 3)], columns=["Participant_id", "Trial", "Valence"])
    with pytest.raises(DataError, match=rf"{ratings}: ratings file has no column 'Experiment_id'"):
        Deap(hand_root, modalities=("face",)).subjects()
    write_ratings(ratings, [(1, 1, 3), (1, 2, 1)])  # video 2 (row 1) has no presentation trial
    with pytest.raises(DataError, match=rf"{ratings}: participant 1 has no row with Experiment_id 2"):
        Deap(hand_root, modalities=("face",)).load_subject(1)
    write_ratings(ratings, [(1, 1, 3), (1, 2, 3)])
    with pytest.raises(DataError, match="Experiment_id 3 twice"):
        Deap(hand_root, modalities=("face",)).subjects()


def test_data_folder_as_root_finds_face_beside_it(hand_root):
    ds = Deap(hand_root / "data_preprocessed_python", modalities=("face",))
    assert ds.load_subject(1)[0].extra["face"].shape == (4, 29)


# --------------------------------------------------------------------------- subjects without face data


def test_subjects_without_face_are_left_out_only_with_face(face_root, caplog):
    shutil.rmtree(face_root / "face" / "s02")
    (face_root / "face" / "s03" / "s03_trial02.csv").unlink()
    assert Deap(face_root).subjects() == [1, 2, 3]
    assert "face" not in Deap(face_root).load_subject(2)[0].extra
    with caplog.at_level(logging.WARNING, logger="moodops.components.datasets.deap.deap"):
        ds = Deap(face_root, modalities=("face",))
        assert ds.subjects() == [1]
        assert ds.subjects() == [1]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # once per subject, not per call
    assert "subject 2" in messages[0] and "face" in messages[0] and "s02" in messages[0]
    assert "subject 3" in messages[1] and "s03_trial02.csv" in messages[1]
    assert Deap(face_root, subjects=[2, 3, 1], modalities=("face",)).subjects() == [1]
    with pytest.raises(DataError, match="subject 2 has no complete face data"):
        Deap(face_root, modalities=("face",)).load_subject(2)
    with pytest.raises(DataError, match="no selected DEAP subject has complete face data"):
        Deap(face_root, subjects=[2, 3], modalities=("face",)).subjects()


def test_unreadable_or_unlisted_subject_is_left_out(face_root, caplog):
    (face_root / "face" / "s01" / "s01_trial01.csv").write_bytes(b"")
    (face_root / "face" / "s02" / "s02_trial03.csv").write_bytes(b"\xff\xfe\x00garbage")
    with caplog.at_level(logging.WARNING):
        assert Deap(face_root, modalities=("face",)).subjects() == [3]
    assert "s01_trial01.csv (empty)" in caplog.text and "s02_trial03.csv" in caplog.text
    rows = [r for r in csv.reader((face_root / "participant_ratings.csv").open()) if r[0] != "3"]
    with (face_root / "participant_ratings.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DataError, match="no selected DEAP subject"):
        Deap(face_root, modalities=("face",)).subjects()


# --------------------------------------------------------------------------- synthetic files


def _ratings(root: Path) -> list[dict[str, str]]:
    with (root / "participant_ratings.csv").open() as f:
        return list(csv.DictReader(f))


def test_synthetic_face_files_and_ratings(face_master):
    rows = _ratings(face_master)
    assert len(rows) == N_SUBJECTS * N_TRIALS
    for s in range(1, N_SUBJECTS + 1):
        mine = [r for r in rows if int(r["Participant_id"]) == s]
        assert sorted(int(r["Trial"]) for r in mine) == list(range(1, N_TRIALS + 1))
        assert sorted(int(r["Experiment_id"]) for r in mine) == list(range(1, N_TRIALS + 1))
        labels = Deap(face_master).read_arrays(s)[1]
        for r in mine:  # the ratings of a presentation trial are the .dat labels of its video
            np.testing.assert_allclose([float(r[k]) for k in ("Valence", "Arousal", "Dominance", "Liking")],
                                       labels[int(r["Experiment_id"]) - 1])
    orders = [[int(r["Experiment_id"]) for r in rows if int(r["Participant_id"]) == s] for s in (1, 2, 3)]
    assert len({tuple(o) for o in orders}) > 1  # each subject has its own order
    text = (face_master / "face" / "s01" / "s01_trial01.csv").read_text().splitlines()
    assert text[0].startswith("frame, face_id, timestamp, confidence, success, gaze_0_x")
    table = np.loadtxt(text[1:], delimiter=",")
    assert len(table) == SECONDS * FPS
    assert (table[:, 4] == 0).any() and (table[:, 3] < 0.8).any()


def test_synthetic_dat_unchanged_by_faces(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_synthetic_deap(a, n_subjects=1, n_trials=2, seconds=2, seed=5)
    write_synthetic_deap(b, n_subjects=1, n_trials=2, seconds=2, seed=5, with_face=True, face_fps=4)
    assert (a / "data_preprocessed_python" / "s01.dat").read_bytes() == \
        (b / "data_preprocessed_python" / "s01.dat").read_bytes()
    assert not (a / "face").exists() and not (a / "participant_ratings.csv").exists()


def test_synthetic_face_loads_and_follows_the_csv(face_master):
    ds = Deap(face_master, modalities=("face",), window_s=2.0)
    assert ds.subjects() == [1, 2, 3]
    recordings = ds.load_subject(2)
    trial_of = {int(r["Experiment_id"]): int(r["Trial"]) for r in _ratings(face_master)
                if r["Participant_id"] == "2"}
    for row, rec in enumerate(recordings):
        assert rec.extra["face"].shape == (SECONDS // 2, 29)
        # Recompute window 1 of AU12_r from the CSV of the presentation trial that showed this video.
        path = face_master / "face" / "s02" / f"s02_trial{trial_of[row + 1]:02d}.csv"
        with path.open() as f:
            reader = csv.reader(f)
            names = [h.strip() for h in next(reader)]
            frames = [dict(zip(names, map(float, r))) for r in reader]
        good = [fr["AU12_r"] for fr in frames
                if fr["success"] == 1 and fr["confidence"] >= 0.8 and 2.0 <= fr["timestamp"] < 4.0]
        assert rec.extra["face"][1, AU12] == pytest.approx(np.mean(good), rel=1e-5)
    files = ds.source_files(2)
    assert files[0].name == "s02.dat" and files[1].name == "participant_ratings.csv"
    assert len(files) == 2 + N_TRIALS
    assert Deap(face_master).source_files(2) == files[:1]
    rows = ds.check()
    assert [r["subject"] for r in rows] == [1, 2, 3]
    assert all(r["missing"]["face"]["windows"] == N_TRIALS * SECONDS // 2 for r in rows)


def _lose_tracking(path: Path, start: float, stop: float, column: str | None = None) -> None:
    """Frames with timestamp in [start, stop): success 0 (OpenFace lost the face), or only ``column`` NaN."""
    header, *lines = path.read_text().splitlines()
    names = [h.strip() for h in header.split(",")]
    t, target = names.index("timestamp"), names.index(column or "success")
    out = [header]
    for line in lines:
        cells = line.split(", ")
        if start <= float(cells[t]) < stop:
            cells[target] = "nan" if column else "0"
        out.append(", ".join(cells))
    path.write_text("\n".join(out) + "\n")


def test_check_counts_missing_face_values(face_root, caplog):
    _lose_tracking(face_root / "face" / "s01" / "s01_trial02.csv", 1.0, 3.0)  # windows 1 and 2: all NaN
    _lose_tracking(face_root / "face" / "s01" / "s01_trial04.csv", 0.0, 6.0)  # the whole trial
    _lose_tracking(face_root / "face" / "s03" / "s03_trial01.csv", 2.0, 4.0, "AU12_r")  # one column
    rows = Deap(face_root).check()  # the face folder is there: checked without asking for it
    assert [r["missing"]["eeg"] for r in rows] == ["refused"] * N_SUBJECTS
    for row in rows:
        face = [r.extra["face"] for r in Deap(face_root, modalities=("face",)).load_subject(row["subject"])]
        nan = np.isnan(np.stack(face))
        assert row["missing"]["face"] == {"values": nan.size, "missing": int(nan.sum()),
                                          "windows": nan.shape[0] * nan.shape[1],
                                          "windows_missing": int(nan.any(axis=-1).sum())}
    assert rows[0]["missing"]["face"]["windows_missing"] >= 2 + SECONDS
    assert rows[2]["missing"]["face"]["missing"] >= 2 and rows[2]["missing"]["face"]["windows_missing"] >= 2
    assert rows[1]["missing"]["face"]["missing"] == 0
    (face_root / "face" / "s02" / "s02_trial03.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="moodops.components.datasets.deap.deap"):
        rows = Deap(face_root).check()
    assert [r["subject"] for r in rows] == [1, 2, 3] and "face" not in rows[1]["missing"]
    assert "subject 2 has no complete face data" in caplog.text and "s02_trial03.csv" in caplog.text
    shutil.rmtree(face_root / "face")
    assert all(r["missing"] == {"eeg": "refused", "peripheral": "refused"} for r in Deap(face_root).check())


def test_synthetic_face_carries_valence(tmp_path):
    write_synthetic_deap(tmp_path, n_subjects=1, n_trials=16, seconds=2, seed=1, effect=3.0, with_face=True,
                         face_fps=5)
    recordings = Deap(tmp_path, modalities=("face",)).load_subject(1)
    valence = [r.labels["valence"] for r in recordings]
    au12 = [np.nanmean(r.extra["face"][:, AU12]) for r in recordings]
    assert np.corrcoef(valence, au12)[0, 1] > 0.5


def test_face_rows_feed_the_feature_builder(hand_root):
    from moodops.components.features import FeatureConfig, build_features

    features = build_features(Deap(hand_root, modalities=("face",), window_s=1.0),
                              FeatureConfig(window_s=1.0, extras=("face",)), None)
    assert features.extra["face"].shape == (len(features.x), 29) == (12, 29)
    # Rows follow the .dat rows; row 0 is video 1 = presentation trial 2 → 20, 21, 22, 23.
    np.testing.assert_array_equal(features.extra["face"][:4, 0], [20, 21, 22, 23])


def test_synthetic_faces_follow_the_release_and_leave_the_papers_18(tmp_path, caplog):
    """DEAP has face video for participants 1-22, and 3, 5, 11, 14 miss their last trial(s): with face
    requested, the loader's completeness rule keeps the 18 subjects Zheng et al. 2023 ran on, and says why."""
    write_synthetic_deap(tmp_path, n_subjects=24, n_trials=4, seconds=2, seed=0, with_face=True, face_fps=4)
    assert sorted(int(p.name[1:]) for p in (tmp_path / "face").iterdir()) == list(range(1, 23))
    assert len(list((tmp_path / "face" / "s11").glob("*.csv"))) == 1  # 4 trials, the last 3 missing
    ratings = _ratings(tmp_path)
    assert {int(r["Participant_id"]) for r in ratings} == set(range(1, 25))  # ratings exist for everyone
    with caplog.at_level("WARNING"):
        kept = Deap(tmp_path, modalities=("face",), window_s=1.0).subjects()
    assert kept == [1, 2, 4, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22]
    for subject, why in ((3, "1 face CSV(s) missing"), (11, "3 face CSV(s) missing"), (23, "no face folder")):
        assert any(f"subject {subject} left out (face requested): {why}" in r.getMessage() for r in caplog.records)
    assert Deap(tmp_path).subjects() == list(range(1, 25))  # EEG alone: every subject
    with pytest.raises(ConfigError, match="face_layout"):
        write_synthetic_deap(tmp_path / "x", n_subjects=1, n_trials=2, seconds=2, with_face=True, face_layout="all")
