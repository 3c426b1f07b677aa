"""`moodops data check`: missing values per subject and modality, counted exactly, and how runs handle them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from moodops.components.datasets.seed.seed import SeedIV
from moodops.components.datasets.seed.synthetic_seed import write_synthetic_seed_iv
from moodops.orchestrator.datacmd import MISSING_HANDLING, CheckReport, MissingValues, check

MOODOPS = str(Path(sys.executable).with_name("moodops"))


def moodops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([MOODOPS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def seed_iv_nan(tmp_path_factory) -> Path:
    """Synthetic SEED-IV, 3 subjects, a fifth of the windows without blink statistics (NaN)."""
    return write_synthetic_seed_iv(tmp_path_factory.mktemp("seed_iv_nan"), n_subjects=3, windows_per_trial=(3, 6),
                                   seed=2, eye_nan_rate=0.2)


def eye_nan(root: Path, subject: int) -> np.ndarray:
    """The NaN mask (windows, 31) of one subject's eye features, as the loader gives them."""
    recordings = SeedIV(root, modalities=("eye",)).load_precomputed(subject, "de_LDS")
    return np.isnan(np.concatenate([r.extra["eye"] for r in recordings]))


def test_check_report_counts_missing_eye_values(seed_iv_nan):
    report = check("seed-iv", seed_iv_nan, "1,3")
    masks = {s: eye_nan(seed_iv_nan, s) for s in (1, 3)}
    assert [r["subject"] for r in report.rows] == [1, 3]
    for row in report.rows:
        nan = masks[row["subject"]]
        assert "missing" not in row
        assert row["eye_nan"] == int(nan.sum()) > 0
        assert row["eye_nan_win"] == f"{nan.any(axis=1).mean():.1%}"
    both = np.concatenate(list(masks.values()))
    assert report.missing == (MissingValues("eye", (1, 3), values=both.size, missing=int(both.sum()),
                                            windows=len(both), windows_missing=int(both.any(axis=1).sum())),)
    assert report.nan_refused == ("eeg",)


def test_summary_lines():
    report = CheckReport([{"subject": 1}, {"subject": 2}],
                         (MissingValues("face", (2,), values=40_000, missing=1_234, windows=5_000,
                                        windows_missing=812),
                          MissingValues("eye", (1, 2), values=9_000, missing=3, windows=300, windows_missing=1)),
                         ("eeg", "peripheral"))
    assert report.summary_lines() == [
        f"missing values ({MISSING_HANDLING}):",
        "  face (1 of 2 subjects): 1,234 of 40,000 values missing (3.1%) in 812 of 5,000 windows (16.2%)",
        "  eye: 3 of 9,000 values missing (<0.1%) in 1 of 300 windows (0.3%)",
        "  eeg, peripheral: none (the loader refuses NaN there; a file holding one fails this check)",
    ]
    assert MISSING_HANDLING == "imputed with the training part's mean, per fold"
    assert CheckReport([{"subject": 1}]).summary_lines() == []


def test_cli_prints_missing_values_per_subject_and_summary(seed_iv_nan, tmp_path):
    proc = moodops("data", "check", "seed-iv", "--root", str(seed_iv_nan), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table, summary = proc.stdout.strip().split("\n\n")
    header, *rows = table.splitlines()
    assert header.split()[-2:] == ["eye_nan", "eye_nan_win"]
    masks = [eye_nan(seed_iv_nan, s) for s in (1, 2, 3)]
    assert [r.split()[-2:] for r in rows] == [[str(m.sum()), f"{m.any(axis=1).mean():.1%}"] for m in masks]
    both = np.concatenate(masks)
    values, missing = both.size, int(both.sum())
    windows, windows_missing = len(both), int(both.any(axis=1).sum())
    assert summary.splitlines() == [
        "missing values (imputed with the training part's mean, per fold):",
        f"  eye: {missing:,} of {values:,} values missing ({missing / values:.1%}) "
        f"in {windows_missing:,} of {windows:,} windows ({windows_missing / windows:.1%})",
        "  eeg: none (the loader refuses NaN there; a file holding one fails this check)",
        "3 subject file(s) OK",
    ]
    assert all(len(line) <= 120 for line in proc.stdout.splitlines())


def test_cli_infinite_eye_value_is_one_line_error(seed_iv_nan, tmp_path):
    root = Path(shutil.copytree(seed_iv_nan, tmp_path / "seed_iv"))
    path = next((root / "eye_feature_smooth" / "2").glob("3_*.mat"))
    arrays = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    arrays["eye_5"][0, 1] = np.inf
    scipy.io.savemat(path, arrays)
    proc = moodops("data", "check", "seed-iv", "--root", str(root), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"moodops: error: {path}: 'eye_5' holds 1 infinite value(s), first inf at index (0, 1)"]


def test_a_synthetic_dataset_killed_while_written_fails_the_check_in_one_line(tmp_path):
    """`moodops data synth` killed after its first subject file: the files written so far are valid, but
    the manifest (written whole only after the last file) says the dataset is incomplete."""
    import signal
    import time

    out = tmp_path / "deap"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([MOODOPS, "data", "synth", "deap", "--out", str(out), "--subjects", "32"], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "data_preprocessed_python" / "s02.dat").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(list((out / "data_preprocessed_python").glob("s*.dat")))
    assert 1 <= written < 32
    checked = moodops("data", "check", "deap", "--root", str(out), cwd=tmp_path)
    assert checked.returncode == 2
    assert checked.stderr.strip().splitlines() == [
        f"moodops: error: {out / 'moodops-synthetic.json'}: this synthetic deap was cut short while it was "
        "written (32 subjects were asked for); write it again with moodops data synth"]
