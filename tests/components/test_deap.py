"""The DEAP adapter on synthetic data in DEAP's real on-disk format."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from moodops.components.datasets import DATASETS, get_dataset
from moodops.components.datasets.deap.deap import (
    BASELINE_S,
    EEG_CHANNELS,
    LABEL_NAMES,
    QUADRANTS,
    SFREQ,
    Deap,
)
from moodops.components.errors import ConfigError, DataError, UnknownNameError

N_SUBJECTS, N_TRIALS, SECONDS = 3, 6, 8
N_BASE = int(BASELINE_S * SFREQ)  # 384
N_STIM = int(SECONDS * SFREQ)  # 1024


def _file(root, subject=1):
    return root / "data_preprocessed_python" / f"s{subject:02d}.dat"


def _raw(root, subject=1):
    with _file(root, subject).open("rb") as f:
        return pickle.load(f, encoding="latin1")


# --------------------------------------------------------------------------- reading


def test_registry_knows_deap():
    assert get_dataset("deap") is Deap
    assert "deap" in DATASETS
    with pytest.raises(UnknownNameError, match="Did you mean 'deap'"):
        get_dataset("deep")


def test_subjects_lists_every_file(deap_master):
    assert Deap(deap_master).subjects() == [1, 2, 3]
    # The data folder itself is accepted as root too.
    assert Deap(deap_master / "data_preprocessed_python").subjects() == [1, 2, 3]
    assert Deap(deap_master, subjects=[3, 1, 3]).subjects() == [1, 3]


def test_load_subject_shapes_and_metadata(deap_master):
    recordings = Deap(deap_master).load_subject(2)
    assert len(recordings) == N_TRIALS
    raw = _raw(deap_master, 2)
    for t, rec in enumerate(recordings):
        assert rec.subject == 2
        assert rec.session == 1
        assert rec.trial == t + 1
        assert rec.sfreq == SFREQ
        assert rec.data.shape == (32, N_STIM)
        assert rec.data.dtype == np.float32
        assert rec.extra["baseline"].shape == (32, N_BASE)
        assert rec.extra["peripheral"].shape == (8, N_BASE + N_STIM)
        assert tuple(rec.ch_names) == EEG_CHANNELS
        assert len(EEG_CHANNELS) == 32
        assert set(rec.labels) == set(LABEL_NAMES)
        assert len(rec.labels) == 4
        # The parts are the right slices of the file.
        np.testing.assert_array_equal(rec.data, raw["data"][t, :32, N_BASE:])
        np.testing.assert_array_equal(rec.extra["baseline"], raw["data"][t, :32, :N_BASE])
        np.testing.assert_array_equal(rec.extra["peripheral"], raw["data"][t, 32:, :])
        assert [rec.labels[k] for k in LABEL_NAMES] == pytest.approx(raw["labels"][t].tolist())
        assert all(1.0 <= v <= 9.0 for v in rec.labels.values())


def test_files_are_readable_by_plain_pickle(deap_master):
    for s in range(1, N_SUBJECTS + 1):
        raw = _raw(deap_master, s)
        assert set(raw) == {"data", "labels"}
        assert raw["data"].dtype == np.float32
        assert raw["data"].shape == (N_TRIALS, 40, N_BASE + N_STIM)
        assert raw["labels"].shape == (N_TRIALS, 4)
        assert np.isfinite(raw["data"]).all()
        assert ((raw["labels"] >= 1) & (raw["labels"] <= 9)).all()


def test_subjects_differ(deap_master):
    a, b = _raw(deap_master, 1), _raw(deap_master, 2)
    assert not np.array_equal(a["data"], b["data"])
    assert not np.array_equal(a["labels"], b["labels"])


def test_check_returns_one_row_per_subject(deap_master):
    rows = Deap(deap_master).check()
    assert [r["subject"] for r in rows] == [1, 2, 3]
    for row in rows:
        raw = _raw(deap_master, row["subject"])
        assert row["file"] == f"s{row['subject']:02d}.dat"
        assert row["trials"] == N_TRIALS
        assert row["channels"] == 40
        assert row["seconds"] == pytest.approx(BASELINE_S + SECONDS)
        assert row["dtype"] == "float32"
        for k, name in enumerate(LABEL_NAMES):
            assert row[f"{name}_high"] == pytest.approx(float((raw["labels"][:, k] > 5.0).mean()))
            assert 0.0 <= row[f"{name}_high"] <= 1.0


def test_check_respects_subject_selection(deap_master):
    rows = Deap(deap_master, subjects=[2]).check()
    assert [r["subject"] for r in rows] == [2]


def test_check_uses_comparison(deap_root, rewrite_subject):
    labels = np.full((N_TRIALS, 4), 5.0)
    labels[0] = 6.0
    rewrite_subject(deap_root, 1, labels=labels)
    assert Deap(deap_root, [1]).check()[0]["valence_high"] == pytest.approx(1 / N_TRIALS)
    assert Deap(deap_root, [1], comparison=">=").check()[0]["valence_high"] == pytest.approx(1.0)


def test_float64_data_is_accepted_as_float32(deap_root, rewrite_subject):
    raw = _raw(deap_root, 1)
    rewrite_subject(deap_root, 1, data=raw["data"].astype(np.float64))
    recordings = Deap(deap_root).load_subject(1)
    assert recordings[0].data.dtype == np.float32
    np.testing.assert_array_equal(recordings[0].data, raw["data"][0, :32, N_BASE:])


# --------------------------------------------------------------------------- bad roots


def test_missing_root(tmp_path):
    root = tmp_path / "does-not-exist"
    with pytest.raises(DataError) as info:
        Deap(root).subjects()
    assert str(root) in str(info.value)
    assert "does not exist" in str(info.value)


def test_root_is_a_file(tmp_path):
    root = tmp_path / "deap.zip"
    root.write_bytes(b"PK")
    with pytest.raises(DataError) as info:
        Deap(root).subjects()
    assert str(root) in str(info.value)
    assert "not a directory" in str(info.value)


@pytest.mark.parametrize("nested", [True, False])
def test_folder_without_subject_files(tmp_path, nested):
    root = tmp_path / "deap"
    folder = root / "data_preprocessed_python" if nested else root
    folder.mkdir(parents=True)
    (folder / "s1.dat").write_bytes(b"")  # wrong name pattern
    (folder / "readme.txt").write_text("hi")
    (folder / "s05.dat").mkdir()  # a folder, not a file
    with pytest.raises(DataError) as info:
        Deap(root).subjects()
    assert str(folder) in str(info.value)
    assert "sXX.dat" in str(info.value)


def test_requesting_missing_subject_names_it(deap_master):
    with pytest.raises(DataError) as info:
        Deap(deap_master, subjects=[1, 7]).subjects()
    message = str(info.value)
    assert str(deap_master) in message
    assert "7" in message.split("not found")[0]
    assert "1-3" in message  # lists what is available


# --------------------------------------------------------------------------- bad files


def _load_error(root, subject=1) -> str:
    with pytest.raises(DataError) as info:
        Deap(root).load_subject(subject)
    message = str(info.value)
    assert str(_file(root, subject)) in message
    return message


def test_truncated_subject_file(deap_root):
    path = _file(deap_root)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    message = _load_error(deap_root)
    assert "truncated" in message or "corrupt" in message


def test_garbage_subject_file(deap_root):
    _file(deap_root, 2).write_bytes(np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    _load_error(deap_root, 2)
    # The other subjects still load.
    assert len(Deap(deap_root).load_subject(1)) == N_TRIALS


def test_subject_file_holding_a_list(deap_root):
    _file(deap_root).write_bytes(pickle.dumps([np.zeros(3)], protocol=2))
    message = _load_error(deap_root)
    assert "list" in message


def test_subject_file_missing_labels(deap_root, rewrite_subject):
    rewrite_subject(deap_root, 1, drop=("labels",))
    message = _load_error(deap_root)
    assert "'labels'" in message


def test_subject_file_missing_data(deap_root, rewrite_subject):
    rewrite_subject(deap_root, 1, drop=("data",))
    message = _load_error(deap_root)
    assert "'data'" in message


def test_data_with_39_channels(deap_root, rewrite_subject):
    data = _raw(deap_root)["data"][:, :39]
    rewrite_subject(deap_root, 1, data=data)
    message = _load_error(deap_root)
    assert str((N_TRIALS, 39, N_BASE + N_STIM)) in message


def test_data_too_short_for_baseline(deap_root, rewrite_subject):
    data = _raw(deap_root)["data"][:, :, : N_BASE + 10]
    rewrite_subject(deap_root, 1, data=data)
    message = _load_error(deap_root)
    assert str(N_BASE + 10) in message


@pytest.mark.parametrize("shape", [(N_TRIALS, 3), (N_TRIALS - 1, 4), (N_TRIALS * 4,)])
def test_labels_with_wrong_shape(deap_root, rewrite_subject, shape):
    rewrite_subject(deap_root, 1, labels=np.full(shape, 5.0))
    message = _load_error(deap_root)
    assert str(shape) in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
def test_non_finite_data(deap_root, rewrite_subject, bad):
    data = _raw(deap_root)["data"].copy()
    data[2, 5, 100] = bad
    rewrite_subject(deap_root, 1, data=data)
    message = _load_error(deap_root)
    assert str(np.float32(bad)) in message  # 'nan', 'inf' or '-inf'
    assert "non-finite" in message
    assert "trial 3" in message and "channel 5" in message and "sample 100" in message


@pytest.mark.parametrize(
    ("trial", "column", "value"),
    [(0, 0, 9.5), (3, 0, 0.0), (1, 2, 9.01), (5, 3, -1.0), (4, 1, np.nan)],
)
def test_label_out_of_range(deap_root, rewrite_subject, trial, column, value):
    labels = _raw(deap_root)["labels"].copy()
    labels[trial, column] = value
    rewrite_subject(deap_root, 1, labels=labels)
    message = _load_error(deap_root)
    assert f"'{LABEL_NAMES[column]}'" in message
    assert f"trial {trial + 1}" in message
    assert str(value) in message


def test_label_bounds_are_inclusive(deap_root, rewrite_subject):
    labels = _raw(deap_root)["labels"].copy()
    labels[0] = [1.0, 9.0, 1.0, 9.0]
    rewrite_subject(deap_root, 1, labels=labels)
    assert Deap(deap_root).load_subject(1)[0].labels == {
        "valence": 1.0, "arousal": 9.0, "dominance": 1.0, "liking": 9.0,
    }


@pytest.mark.parametrize("dtype", [np.float16, np.int16])
def test_data_with_unsupported_dtype(deap_root, rewrite_subject, dtype):
    rewrite_subject(deap_root, 1, data=_raw(deap_root)["data"].astype(dtype))
    message = _load_error(deap_root)
    assert str(np.dtype(dtype)) in message


def test_check_reports_a_bad_file(deap_root, rewrite_subject):
    labels = _raw(deap_root, 3)["labels"].copy()
    labels[0, 1] = 10.0
    rewrite_subject(deap_root, 3, labels=labels)
    with pytest.raises(DataError) as info:
        Deap(deap_root).check()
    assert str(_file(deap_root, 3)) in str(info.value)
    assert "'arousal'" in str(info.value) and "10.0" in str(info.value)


# --------------------------------------------------------------------------- targets


def _labels(**columns):
    base = {name: np.full(len(next(iter(columns.values()))), 5.0) for name in LABEL_NAMES}
    base.update({k: np.asarray(v, dtype=np.float64) for k, v in columns.items()})
    return base


def test_threshold_comparison_gt(deap_master):
    ds = Deap(deap_master)
    y, names = ds.make_targets(_labels(valence=[1.0, 4.99, 5.0, 5.01, 9.0]), "valence")
    assert y.dtype == np.int64
    assert y.tolist() == [0, 0, 0, 1, 1]
    assert names == ("low_valence", "high_valence")


def test_threshold_comparison_ge(deap_master):
    ds = Deap(deap_master, comparison=">=")
    y, _ = ds.make_targets(_labels(arousal=[1.0, 4.99, 5.0, 5.01, 9.0]), "arousal")
    assert y.tolist() == [0, 0, 1, 1, 1]


def test_custom_threshold(deap_master):
    y, _ = Deap(deap_master, threshold=3.0).make_targets(_labels(liking=[2.0, 3.0, 3.5]), "liking")
    assert y.tolist() == [0, 0, 1]


@pytest.mark.parametrize("comparison", [">", ">="])
def test_quadrants(deap_master, comparison):
    valence = [2.0, 2.0, 8.0, 8.0, 5.0, 5.0]
    arousal = [2.0, 8.0, 2.0, 8.0, 5.0, 9.0]
    y, names = Deap(deap_master, comparison=comparison).make_targets(_labels(valence=valence, arousal=arousal), "quadrant")
    assert names == QUADRANTS == ("LVLA", "LVHA", "HVLA", "HVHA")
    tie = [0, 1] if comparison == ">" else [3, 3]
    assert y.tolist() == [0, 1, 2, 3, *tie]
    assert [names[k] for k in y[:4]] == ["LVLA", "LVHA", "HVLA", "HVHA"]


def test_invalid_comparison():
    with pytest.raises(ConfigError) as info:
        Deap("/nonexistent", comparison="=>")
    message = str(info.value)
    assert "'>'" in message and "'>='" in message
    assert "'=>'" in message


@pytest.mark.parametrize("threshold", [0.5, 9.5])
def test_invalid_threshold(threshold):
    with pytest.raises(ConfigError, match=str(threshold)):
        Deap("/nonexistent", threshold=threshold)


def test_unknown_target_suggests_closest(deap_master):
    with pytest.raises(ConfigError) as info:
        Deap(deap_master).make_targets(_labels(valence=[5.0]), "valance")
    assert "Did you mean 'valence'?" in str(info.value)
    assert "'valance'" in str(info.value)
    with pytest.raises(ConfigError):
        Deap.check_target("valance")
    Deap.check_target("quadrant")  # valid targets pass


def test_targets_from_real_file_labels(deap_master):
    ds = Deap(deap_master)
    raw = _raw(deap_master, 1)["labels"]
    labels = {name: raw[:, k] for k, name in enumerate(LABEL_NAMES)}
    y, _ = ds.make_targets(labels, "dominance")
    assert y.tolist() == (raw[:, 2] > 5.0).astype(int).tolist()
    q, _ = ds.make_targets(labels, "quadrant")
    assert q.tolist() == (2 * (raw[:, 0] > 5) + (raw[:, 1] > 5)).tolist()


def test_fingerprint_changes_with_file(deap_root):
    import os

    ds = Deap(deap_root)
    before = ds.fingerprint(1)
    assert before == Deap(deap_root).fingerprint(1)
    assert before != ds.fingerprint(2)
    st = _file(deap_root).stat()
    os.utime(_file(deap_root), ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert Deap(deap_root).fingerprint(1) != before


def test_labels_that_are_not_numbers(deap_root):
    import pickle

    path = deap_root / "data_preprocessed_python" / "s02.dat"
    raw = _raw(deap_root, 2)
    path.write_bytes(pickle.dumps({"data": raw["data"], "labels": raw["labels"].astype(str)}, protocol=2))
    with pytest.raises(DataError, match=r"s02\.dat: 'labels' has dtype <U\d+, expected numbers"):
        Deap(deap_root).load_subject(2)


def test_subject_files_that_cannot_be_read_are_named_not_skipped_quietly(tmp_path, caplog):
    import logging
    import os

    from moodops.components.datasets import Deap
    from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap

    write_synthetic_deap(tmp_path, 2, 2, 4.0, 0, 1.0)
    folder = tmp_path / "data_preprocessed_python"
    os.symlink(folder / "s03.dat", folder / "s03.dat")  # a link to itself
    os.symlink(folder / "gone.dat", folder / "s04.dat")
    (folder / "s05.dat").mkdir()
    with caplog.at_level(logging.WARNING):
        assert sorted(Deap(tmp_path).available_subjects()) == [1, 2]
    text = caplog.text
    assert f"{folder / 's03.dat'}: skipped, a symbolic link that loops" in text
    assert f"{folder / 's04.dat'}: skipped, a broken symbolic link (to {folder / 'gone.dat'})" in text
    assert f"{folder / 's05.dat'}: skipped, a directory, not a file" in text


def test_synthetic_networks_couple_with_affect_and_keep_their_power():
    """The DFCN's feature (time-domain Pearson per window) finds affect in the synthetic copy: the frontal
    network's coupling rises with valence and the parieto-occipital one's with arousal; channels outside
    them do not follow either; the coupling leaves the channels' band power as it was."""
    from moodops.components.datasets.deap.deap import EEG_CHANNELS
    from moodops.components.datasets.deap.synthetic_deap import _COUPLING, synthesize_subject
    from moodops.components.features import pearson_connectivity

    data, labels = synthesize_subject(4, n_trials=24, seconds=30.0)
    eeg = data[:, :32, 3 * 128:]
    c = pearson_connectivity(eeg, 128.0, window_s=3.0).mean(axis=1)  # (trials, 32, 32)
    index = {ch: i for i, ch in enumerate(EEG_CHANNELS)}

    def network_mean(channels):
        idx = [index[ch] for ch in channels]
        block = c[:, idx][:, :, idx]
        return (block.sum(axis=(1, 2)) - len(idx)) / (len(idx) * (len(idx) - 1))

    frontal, posterior = (network_mean(chs) for _, chs in _COUPLING)
    outside = network_mean(("T7", "T8", "C3", "C4", "CP5", "CP6"))
    valence, arousal = labels[:, 0], labels[:, 1]
    assert np.corrcoef(frontal, valence)[0, 1] > 0.6 and np.corrcoef(posterior, arousal)[0, 1] > 0.6
    assert abs(np.corrcoef(frontal, arousal)[0, 1]) < 0.45 and abs(np.corrcoef(outside, valence)[0, 1]) < 0.45
    assert frontal.mean() > outside.mean() + 0.1  # a coupled network, not a few strong pairs
    # the power of a coupled channel without a band-power effect (Fz) does not follow valence: same RMS
    fz = eeg[:, index["Fz"]].std(axis=-1)
    assert abs(np.corrcoef(fz, valence)[0, 1]) < 0.45
