"""eegmmidb: EDF+ writer, synthetic layout, checksum verification before parsing, preprocessing, segments."""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import mne
import numpy as np
import pytest

from moodops.components.datasets import DATASETS
from moodops.components.datasets.eegmmidb import eegmmidb as eegmmidb_module
from moodops.components.datasets.formats.edf import write_edf
from moodops.components.datasets.eegmmidb.eegmmidb import (
    CHANNELS,
    EDF_LABELS,
    Eegmmidb,
    Preprocess,
    preprocess,
    segments,
)
from moodops.components.datasets.eegmmidb.synthetic_eegmmidb import write_synthetic_eegmmidb
from moodops.components.errors import ConfigError, DataError
from moodops.components.types import Recording

# The same place tests/conftest.py looks (it skips real_data tests when this folder is absent).
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL = SHARED_DATA / "eegmmidb"
DAMAGED = SHARED_DATA / "eegmmidb-damaged"
MOODOPS = str(Path(sys.executable).with_name("moodops"))
SECONDS = 20
RUNS = (3, 4, 5)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    """Two synthetic subjects (S901, S902), runs 3–5, 20 s each. Never modify it."""
    return write_synthetic_eegmmidb(tmp_path_factory.mktemp("eegmmidb"), subjects=2, runs=RUNS,
                                    seconds=SECONDS, seed=0)


def tampered_root(synthetic_root: Path, tmp_path: Path) -> Path:
    """A synthetic run saved under a published name (S001/S001R03.edf)."""
    (tmp_path / "S001").mkdir()
    shutil.copy(synthetic_root / "S901" / "S901R03.edf", tmp_path / "S001" / "S001R03.edf")
    return tmp_path


def recording(data: np.ndarray, sfreq: float, subject: int = 1, run: int = 3, ch_names=None) -> Recording:
    names = tuple(ch_names or [f"E{i}" for i in range(len(data))])
    return Recording(subject=subject, session=1, trial=run, data=data.astype(np.float32), sfreq=sfreq,
                     ch_names=names, labels={"run": float(run)})


# --------------------------------------------------------------------------- EDF+ writer


def test_edf_writer_round_trips_through_mne(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(0, 30, (3, 128 * 5))
    data[2] = 7.5  # a flat channel still gets a valid physical range
    annotations = [(0.0, 4.2, "T0"), (2.5, 0.0, "marker"), (4.2, 0.8, "T1")]
    path = write_edf(tmp_path / "x.edf", data, 128, ["Fc5.", "Cz..", "Iz.."], annotations)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.edf"]  # no temporary file left behind

    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert raw.ch_names == ["Fc5.", "Cz..", "Iz.."]
    assert raw.info["sfreq"] == 128 and raw.n_times == data.shape[1]
    got = sorted(zip(raw.annotations.onset, raw.annotations.duration, raw.annotations.description))
    assert [g[2] for g in got] == [a[2] for a in sorted(annotations)]
    np.testing.assert_allclose([g[:2] for g in got], [a[:2] for a in sorted(annotations)])
    step = (data.max(axis=1) - data.min(axis=1)) / 65535
    np.testing.assert_array_less(np.abs(raw.get_data() * 1e6 - data).max(axis=1), step / 2 + 1e-3)


def test_edf_writer_pads_a_partial_second_and_refuses_bad_input(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        path = write_edf(tmp_path / "pad.edf", np.ones((1, 150)), 100, ["A"])
    assert "padded with zeros" in caplog.text
    assert mne.io.read_raw_edf(path, verbose="error").n_times == 200
    with pytest.raises(ConfigError, match="whole sampling rate"):
        write_edf(tmp_path / "bad.edf", np.ones((1, 100)), 99.5, ["A"])
    with pytest.raises(ConfigError, match="2 channel names for 1 channels"):
        write_edf(tmp_path / "bad.edf", np.ones((1, 100)), 100, ["A", "B"])
    with pytest.raises(ConfigError, match="non-finite"):
        write_edf(tmp_path / "bad.edf", np.full((1, 100), np.nan), 100, ["A"])
    with pytest.raises(ConfigError, match="TAL separators"):
        write_edf(tmp_path / "bad.edf", np.ones((1, 100)), 100, ["A"], [(0.0, 1.0, "a\x14b")])
    assert not (tmp_path / "bad.edf").exists()


# --------------------------------------------------------------------------- synthetic round trip


def test_synthetic_layout_loads_with_normalised_names_and_annotations(synthetic_root):
    assert sorted(p.name for p in (synthetic_root / "S901").iterdir()) == [f"S901R0{r}.edf" for r in RUNS]
    assert mne.io.read_raw_edf(synthetic_root / "S901" / "S901R03.edf", verbose="error").ch_names == list(EDF_LABELS)

    dataset = DATASETS.get("eegmmidb")(synthetic_root)
    assert dataset.subjects() == [901, 902]
    recs = dataset.load_subject(901)
    assert [r.trial for r in recs] == list(RUNS)
    for r in recs:
        assert (r.subject, r.session, r.labels) == (901, 1, {"run": float(r.trial)})
        assert r.data.dtype == np.float32 and r.data.shape == (64, SECONDS * 160) and r.sfreq == 160.0
        assert 5 < float(r.data.std()) < 60  # microvolts, not volts
        assert r.ch_names == CHANNELS
    assert {"FC5", "CZ", "FP1", "T10", "IZ"} <= set(CHANNELS) and "Fc5." not in CHANNELS
    for r in recs:
        onsets, durations, descriptions = zip(*r.annotations)
        assert onsets == pytest.approx((0.0, 4.2, 8.3, 12.5, 16.6))
        assert durations == pytest.approx((4.2, 4.1, 4.2, 4.1, 3.4))  # the last one cut at the end
        assert descriptions[::2] == ("T0",) * 3 and sorted(descriptions[1::2]) == ["T1", "T2"]


def test_synthetic_writer_is_deterministic(tmp_path):
    a = write_synthetic_eegmmidb(tmp_path / "a", subjects=1, runs=[4], seconds=4, seed=3)
    b = write_synthetic_eegmmidb(tmp_path / "b", subjects=1, runs=[4], seconds=4, seed=3)
    c = write_synthetic_eegmmidb(tmp_path / "c", subjects=1, runs=[4], seconds=4, seed=4)
    read = lambda root: (root / "S901" / "S901R04.edf").read_bytes()  # noqa: E731
    assert read(a) == read(b) != read(c)
    with pytest.raises(ConfigError, match="'runs'"):
        write_synthetic_eegmmidb(tmp_path / "d", runs=[15])


def test_run_selection_missing_runs_and_bad_roots(synthetic_root, tmp_path):
    recs = Eegmmidb(synthetic_root, subjects=[902], runs=[5, 3]).load_subject(902)
    assert [r.trial for r in recs] == [3, 5]
    with pytest.raises(DataError, match=r"S901R07\.edf: run 7 of subject 901 is missing \(runs present: 3-5\)"):
        Eegmmidb(synthetic_root, runs=[3, 7]).load_subject(901)
    with pytest.raises(ConfigError, match="'runs' parameter must be run numbers in 1-14"):
        Eegmmidb(synthetic_root, runs=[0, 3])
    with pytest.raises(ConfigError, match="'verify' parameter"):
        Eegmmidb(synthetic_root, verify="no")
    with pytest.raises(DataError, match="root does not exist"):
        Eegmmidb(tmp_path / "nowhere").subjects()
    with pytest.raises(DataError, match="no eegmmidb subject folders"):
        Eegmmidb(tmp_path).subjects()
    with pytest.raises(DataError, match=r"subject\(s\) 5 not found"):
        Eegmmidb(synthetic_root, subjects=[5]).subjects()


def test_unlabelled_corpus_refuses_targets_and_checks(synthetic_root):
    dataset = Eegmmidb(synthetic_root)
    with pytest.raises(ConfigError, match="unlabelled pretraining corpus.*pretrain --corpus eegmmidb"):
        dataset.make_targets({"run": np.array([3.0])}, "run")
    rows = dataset.check()
    assert rows == [{"subject": s, "runs": "3-5", "seconds": 3.0 * SECONDS, "sfreq": "160", "channels": "64",
                     "verified": "unlisted"} for s in (901, 902)]
    assert Eegmmidb(synthetic_root, verify=False).check()[0]["verified"] == "skipped"


# --------------------------------------------------------------------------- integrity


def test_tampered_listed_file_is_refused_before_mne_reads_it(synthetic_root, tmp_path, monkeypatch):
    root = tampered_root(synthetic_root, tmp_path)

    def must_not_parse(*args, **kwargs):
        pytest.fail("a file that failed its checksum was handed to the EDF reader")

    monkeypatch.setattr(mne.io, "read_raw_edf", must_not_parse)
    with pytest.raises(DataError) as error:
        Eegmmidb(root, runs=[3]).load_subject(1)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'S001' / 'S001R03.edf'}: SHA-256 ")
    assert "does not match the published checksum 3427c8d01bff…" in message and "--no-verify" in message


def test_verify_off_reads_a_tampered_file_with_a_warning(synthetic_root, tmp_path, caplog):
    root = tampered_root(synthetic_root, tmp_path)
    with caplog.at_level(logging.WARNING, logger="moodops.components.datasets.eegmmidb.eegmmidb"):
        recs = Eegmmidb(root, runs=[3], verify=False).load_subject(1)
    assert len(recs) == 1 and recs[0].data.shape == (64, SECONDS * 160)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "without checking their published SHA-256" in warnings[0].getMessage()


def test_each_file_is_hashed_once_per_dataset_object(synthetic_root, tmp_path, monkeypatch):
    root = tampered_root(synthetic_root, tmp_path)
    calls = []
    real = eegmmidb_module.sha256_file
    monkeypatch.setattr(eegmmidb_module, "sha256_file", lambda path: calls.append(path) or real(path))
    dataset = Eegmmidb(root)
    for _ in range(2):
        with pytest.raises(DataError, match="does not match"):
            dataset.load_subject(1)
    assert len(calls) == 1


def test_truncated_file_is_refused_with_a_size_error(synthetic_root, tmp_path):
    (tmp_path / "S901").mkdir()
    data = (synthetic_root / "S901" / "S901R03.edf").read_bytes()
    (tmp_path / "S901" / "S901R03.edf").write_bytes(data[:-1000])
    with pytest.raises(DataError, match="bytes, but its EDF header describes .* truncated or damaged"):
        Eegmmidb(tmp_path).load_subject(901)


# --------------------------------------------------------------------------- preprocessing and segments


def test_preprocess_resamples_and_removes_line_noise():
    sfreq, seconds = 160.0, 20
    t = np.arange(int(sfreq * seconds)) / sfreq
    rng = np.random.default_rng(1)
    data = rng.normal(0, 5, (4, len(t))) + 20 * np.sin(2 * np.pi * 50 * t) + 10 * np.sin(2 * np.pi * 10 * t)
    rec = recording(data, sfreq)

    def amplitude(r: Recording, hz: float) -> float:
        x = r.data[:, int(2 * r.sfreq):-int(2 * r.sfreq)]  # away from the filter's edges
        spectrum = np.abs(np.fft.rfft(x, axis=1)) / x.shape[1] * 2
        freqs = np.fft.rfftfreq(x.shape[1], 1 / r.sfreq)
        return float(spectrum[:, np.argmin(np.abs(freqs - hz))].mean())

    out = preprocess(rec, Preprocess())
    assert out.sfreq == 200.0 and out.data.shape == (4, 200 * seconds) and out.data.dtype == np.float32
    assert out.annotations == rec.annotations and rec.data.shape == (4, len(t))  # the input is untouched
    kept = preprocess(rec, Preprocess(notch=None))
    assert amplitude(kept, 50) > 15
    assert amplitude(out, 50) < amplitude(kept, 50) / 30  # > 30 dB down
    assert amplitude(out, 10) == pytest.approx(10, rel=0.1)


def test_preprocess_clips_h_freq_above_nyquist_and_refuses_bad_configs(caplog):
    rec = recording(np.random.default_rng(2).normal(0, 5, (2, 128 * 8)), 128.0)
    with caplog.at_level(logging.WARNING):
        out = preprocess(rec, Preprocess(l_freq=1.0, h_freq=70.0, notch=60.0, sfreq=None))
    assert "at or above the Nyquist frequency" in caplog.text and out.sfreq == 128.0
    for kwargs, match in [({"l_freq": 40, "h_freq": 30}, "l_freq < h_freq"),
                          ({"notch": 55}, "Allowed values are '50.0', '60.0', 'None'"),
                          ({"sfreq": -200}, "'sfreq' parameter must be a positive frequency"),
                          ({"h_freq": "high"}, "'h_freq' parameter must be a positive frequency"),
                          ({"h_freq": 120}, "h_freq < sfreq / 2")]:
        with pytest.raises(ConfigError, match=match):
            Preprocess(**kwargs)
    assert Preprocess(notch=None).notch is None and Preprocess(notch=60).notch == 60.0


def test_segments_shapes_zscore_and_mismatches():
    rng = np.random.default_rng(3)
    recs = [recording(rng.normal(5, 3, (3, 200 * 10 + 50)), 200.0, run=3),
            recording(rng.normal(-2, 8, (3, 200 * 8)), 200.0, run=4)]
    recs[1].data[2] = 1.0  # a flat channel
    x, index = segments(recs, segment_s=4.0)
    assert x.shape == (2 + 2, 3, 800) and x.dtype == np.float32 and index.dtype == np.int64
    assert index.tolist() == [[1, 3, 0], [1, 3, 800], [1, 4, 0], [1, 4, 800]]
    assert np.abs(x[2:, :2].mean()) < 0.1 and x[2:, :2].std() == pytest.approx(1, rel=0.1)
    assert not x[2:, 2].any()  # zero std guarded: zeros, not NaN
    raw, _ = segments(recs, segment_s=4.0, normalize=None)
    np.testing.assert_array_equal(raw[1], recs[0].data[:, 800:1600])

    with pytest.raises(DataError, match="subject 1 run 4: channels"):
        segments([recs[0], recording(recs[1].data, 200.0, run=4, ch_names=["X", "Y", "Z"])])
    with pytest.raises(DataError, match="subject 1 run 4: 160 Hz"):
        segments([recs[0], recording(recs[1].data, 160.0, run=4)])
    with pytest.raises(ConfigError, match="'normalize' parameter"):
        segments(recs, normalize="minmax")
    with pytest.raises(ConfigError, match="'segment_s' parameter"):
        segments(recs, segment_s=0.0)


# --------------------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_s001_runs_verify_and_load():
    dataset = Eegmmidb(REAL)
    recs = dataset.load_subject(1)
    assert [r.trial for r in recs] == list(range(3, 15))
    for r in recs:
        assert r.data.shape[0] == 64 and r.sfreq == 160.0 and r.ch_names == CHANNELS
        assert {a[2] for a in r.annotations} == {"T0", "T1", "T2"}
        assert 5 < float(np.std(r.data)) < 500  # µV
    assert dataset.check() == [{"subject": 1, "runs": "3-14", "seconds": 1500.0, "sfreq": "160",
                                "channels": "64", "verified": "yes"}]


@pytest.mark.real_data
@pytest.mark.parametrize("run", [1, 2])
def test_real_damaged_runs_are_refused_with_and_without_verification(run, monkeypatch):
    path = DAMAGED / "S001" / f"S001R{run:02d}.edf"

    def must_not_parse(*args, **kwargs):
        pytest.fail("a file that failed its checksum was handed to the EDF reader")

    with monkeypatch.context() as patch:
        patch.setattr(mne.io, "read_raw_edf", must_not_parse)
        with pytest.raises(DataError, match=r"SHA-256 .* does not match the published checksum"):
            Eegmmidb(DAMAGED, runs=[run]).load_subject(1)
    with pytest.raises(DataError) as error:
        Eegmmidb(DAMAGED, runs=[run], verify=False).load_subject(1)
    message = str(error.value)
    assert message.startswith(f"{path}: unreadable EDF file") and "\n" not in message
    assert "latin1" not in message


def moodops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MOODOPS, *args], capture_output=True, text=True, timeout=120)


def test_cli_data_synth_and_check_eegmmidb(tmp_path):
    proc = moodops("data", "synth", "eegmmidb", "--out", str(tmp_path), "--subjects", "2", "--seconds", "4")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["S901", "S902", "moodops-synthetic.json"]
    proc = moodops("data", "check", "eegmmidb", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [line.split() for line in proc.stdout.splitlines()[:3]] == [
        ["subject", "runs", "seconds", "sfreq", "channels", "verified"],
        ["901", "3-14", "48.00", "160", "64", "unlisted"],
        ["902", "3-14", "48.00", "160", "64", "unlisted"],
    ]


@pytest.mark.real_data
def test_cli_data_check_on_real_and_damaged_eegmmidb():
    proc = moodops("data", "check", "eegmmidb", "--root", str(REAL))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split() == ["1", "3-14", "1500.00", "160", "64", "yes"]
    proc = moodops("data", "check", "eegmmidb", "--root", str(DAMAGED))
    assert proc.returncode != 0 and "does not match the published checksum" in proc.stderr
